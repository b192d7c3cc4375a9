"""What the report says across questions: the six answers and the table of headline numbers (each
question's result gives its own rows)."""

from __future__ import annotations

import pandas as pd

from .text import NA

COLUMNS = ["result", "this report", "the assignment"]


def table(results: list) -> pd.DataFrame:
    """One row per headline number of ``results`` (question 1's first), with the assignment's
    figure where it printed one (no such column where it printed none for this dataset)."""
    frame = pd.DataFrame([row for result in results for row in result.headlines()], columns=COLUMNS)
    if (frame[COLUMNS[-1]] == "").all():  # the assignment printed nothing for this dataset
        frame = frame.drop(columns=COLUMNS[-1])
    return frame.replace("", NA)


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def answers(results: list) -> str:
    """The report's opening: one numbered answer per question, each from its result's ``answer()``."""
    items = [r.answer() for r in results]
    return "## Answers\n\n" + "\n".join(f"{i}. {text}" for i, text in enumerate(items, start=1))

