"""What the report says across questions: the six answers, the table of headline numbers (each
question's result gives its own rows) and the LeNet figures of every section side by side."""

from __future__ import annotations

import pandas as pd

from ..data import train_images
from .text import NA, captioned, pm

COLUMNS = ["result", "this report", "the assignment"]


def table(results: list) -> pd.DataFrame:
    """One row per headline number of ``results`` (question 1's first), with the assignment's
    figure where it printed one."""
    frame = pd.DataFrame([row for result in results for row in result.headlines()], columns=COLUMNS)
    return frame.replace("", NA)


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def answers(q1, q2, study, q3, q4, q5, q6) -> str:
    """The report's opening: one numbered answer per question, each from its result's ``answer()``."""
    items = [q1.answer(), q2.answer(study), q3.answer(), q4.answer(), q5.answer(),
             q6.answer()]
    return "## Answers\n\n" + "\n".join(f"{i}. {text}" for i, text in enumerate(items, start=1))


def lenet_figures(q1, q2, q3, q4, q6) -> pd.DataFrame:
    """Every LeNet accuracy the report gives, with what sets it apart: recipe, epochs, training images."""
    m = q4.models.loc["lenet"]
    assignment = "Adam, learning rate 0.001, batch size 64"
    rows = [("1", assignment, q1.epochs, train_images(q1.train_subset, q1.validation),
             len(q1.seeds), pm(q1.last.test_acc, q1.test_acc_std)),
            ("2, chosen setting; 3", q2.best.label, q2.epochs, q3.cnn.train_images, len(q3.cnn_accs),
             pm(q3.cnn.test_acc, q3.cnn.test_acc_std)),
            ("4", assignment, q4.epochs, train_images(q4.train_subset, q4.validation), int(m["count"]),
             pm(m["mean"], m["std"]))]
    best, large = q6.best_recipe, q6.sizes[-1]
    if best != "assignment":
        t = q6.table_frame.set_index(["recipe", "model", "size"]).loc[(best, "lenet", large)]
        epochs = int(q6.runs.loc[(q6.runs.recipe == best) & (q6.runs.model == "lenet"), "epochs"].max())
        rows.append((f"6, {best} recipe", f"the {best} recipe of section 6", epochs, large, int(t["count"]),
                     pm(t["mean"], t["std"])))
    frame = pd.DataFrame(rows, columns=["section", "recipe", "epochs", "training images", "seeds",
                                        "test accuracy, mean ± std"])
    frame = frame.assign(**{"training images": frame["training images"].map("{:,}".format)})
    return captioned(frame, "Every LeNet accuracy of this report, with the recipe, epochs and training set behind it.")
