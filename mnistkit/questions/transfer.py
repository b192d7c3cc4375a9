"""Whether the study's conclusions transfer: each question's headline conclusion, read from two builds'
summary.json files (the reference, such as MNIST, and this one, such as Fashion-MNIST), set side by side
with its number, its interval and whether the verdict held, reversed or became "no detectable difference".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .. import stats
from .text import NA, PARAMETER_NAMES, captioned, pct

CHANGES = {("better", "worse"): "reversed", ("worse", "better"): "reversed"}
WORDS = {"better": "ahead", "worse": "behind", "level": "level"}  # a difference's verdict, beside its number


@dataclass(frozen=True)
class Conclusion:
    """One conclusion of one build: its number in words, and its verdict where it is a comparison."""

    key: str  # the same conclusion of two builds has the same key
    question: str  # "1" ... "6"
    claim: str  # what is measured, in words
    value: str  # the number, with its interval where it has one
    verdict: str | None  # "better", "worse", "level", a name, or None (a level, not a comparison)


def _difference(key: str, question: str, claim: str, diff: float, ci: list | None, note: str = "") -> Conclusion:
    lo, hi = (math.nan, math.nan) if ci is None or None in ci else ci
    value = f"{100 * diff:+.2f} points" + ("" if math.isnan(lo) else f" [{100 * lo:+.2f}, {100 * hi:+.2f}]") + note
    return Conclusion(key, question, claim, value, stats.verdict(lo, hi))


def conclusions(summary: dict) -> list[Conclusion]:
    """The headline conclusion of each question a build's summary holds (a question not built is left out)."""
    found = []
    if "q1" in summary:
        q = summary["q1"]
        found.append(Conclusion("lenet", "1", f"LeNet's test accuracy after {q['epochs']} epochs",
                                pct(q["test_acc_mean"]), None))
    if "q2" in summary:
        q = summary["q2"]
        first = q.get("importance_first_probability", {})
        top = max(first, key=first.get) if first else None
        if top is not None:
            name = PARAMETER_NAMES.get(top, top)
            found.append(Conclusion("leaders", "2", "the hyperparameter ranked first most often (fANOVA, resampled)",
                                    f"{name} ({pct(first[top], 0)} of the resamples)", name))
    if "q3" in summary:
        q = summary["q3"]
        found.append(_difference("cnn_minus_bovw", "3", "the best CNN minus SIFT-BoVW-SVM", q["cnn_minus_bovw"],
                                 q["cnn_minus_bovw_ci95"]))
    if "q4" in summary:
        q = summary["q4"]
        found.append(_difference("double_minus_lenet", "4", "doubled-conv LeNet minus LeNet", q["double_minus_lenet"],
                                 q["double_minus_lenet_ci95"]))
    if "q5" in summary:
        means = {int(k): v for k, v in summary["q5"]["equal_epochs"]["test_acc_mean"].items()}
        sizes = sorted(means)
        flat = stats.saturates(sizes, [means[s] for s in sizes])
        found.append(Conclusion("sizes", "5", f"LeNet from {sizes[0]:,} to {sizes[-1]:,} images (equal epochs)",
                                f"{pct(means[sizes[0]])} → {pct(means[sizes[-1]])}, "
                                + ("saturating" if flat else "not saturating"),
                                "saturates" if flat else "does not saturate"))
    if "q6" in summary:
        q = summary["q6"]
        for size in sorted(int(s) for s in q["train_images"]["vit"]):
            key = f"vit_minus_lenet_{size}"
            found.append(_difference(key, "6", f"ViT minus LeNet on {size:,} images (the better recipe)", q[key],
                                     q.get(f"{key}_ci95"), f", {q['recipe']} recipe"))
    return found


def change(before: str | None, after: str | None) -> str:
    """How a verdict fared on the second build: held, reversed, became no detectable difference, became a
    difference, or (a name, such as the leading hyperparameters) changed."""
    if before is None or after is None:
        return NA
    if before == after:
        return "held"
    if after == "level":
        return "became no detectable difference"
    if before == "level":
        return "became a difference"
    return CHANGES.get((before, after), "changed")


def _cell(c: Conclusion | None) -> str:
    if c is None:
        return NA
    return f"{c.value} ({WORDS[c.verdict]})" if c.verdict in WORDS else c.value


def table(reference: dict, summary: dict, names: tuple[str, str]) -> pd.DataFrame:
    """Each conclusion of ``reference`` beside the same one of ``summary``, with how its verdict fared;
    ``names`` are the two builds' datasets, in words."""
    if names[0] == names[1]:  # two builds of one dataset: the columns still need two names
        names = (f"{names[0]}, reference", f"{names[1]}, this build")
    theirs = {c.key: c for c in conclusions(summary)}
    rows = []
    for c in conclusions(reference):
        other = theirs.get(c.key)
        rows.append({"question": c.question, "compared": c.claim, names[0]: _cell(c), names[1]: _cell(other),
                     "verdict": change(c.verdict, other.verdict if other else None)})
    return captioned(pd.DataFrame(rows),
                     f"The study's conclusions on {names[0]} beside the same ones on {names[1]}: each difference "
                     "with its 95% interval over the seeds, and whether its verdict held.")
