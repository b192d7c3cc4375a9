"""What the report says across questions: the answers and the table of headline numbers (each
question's result gives its own rows)."""

from __future__ import annotations

import pandas as pd

from .text import NA

COLUMNS = ["result", "this report", "the assignment"]


def table(numbered: list) -> pd.DataFrame:
    """One row per headline number of each ``(question number, result)`` in ``numbered``, labelled with its
    number, with the assignment's figure where it printed one (no such column where it printed none for
    this dataset)."""
    frame = pd.DataFrame([(f"{number}. {label}", *rest) for number, result in numbered
                          for label, *rest in result.headlines()], columns=COLUMNS)
    if (frame[COLUMNS[-1]] == "").all():  # the assignment printed nothing for this dataset
        frame = frame.drop(columns=COLUMNS[-1])
    return frame.replace("", NA)


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def answers(numbered: list) -> str:
    """The report's opening: one answer per ``(question number, result)``, each from its result's ``answer()``."""
    return "## Answers\n\n" + "\n".join(f"{number}. {result.answer()}" for number, result in numbered)

