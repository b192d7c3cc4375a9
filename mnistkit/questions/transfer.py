"""Whether the study's conclusions transfer: each comparison of two builds' summary.json files (the reference,
such as MNIST, and this one, such as Fashion-MNIST) tested as a change, (B - A here) - (B - A there), with its
own interval and verdict (``stats.change``); like is compared with like (question 6 per recipe); question 5
compares what the last tenfold of data still gains, question 2 the ranking with its uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .. import data, stats
from .text import NA, PARAMETER_NAMES, captioned, margin_words, pct, points, say

# what a change's verdict says of the difference it tests
CHANGE_WORDS = {"ahead": "rose", "behind": "fell", "equivalent": "unchanged", "undecided": "undecided"}


@dataclass(frozen=True)
class Row:
    """One comparison of both builds: each side in words, and the change between them where it is tested."""

    question: str  # "1" ... "6"
    compared: str  # what is compared, in words
    reference: str  # the reference build's number, interval and verdict, in words
    here: str  # this build's
    change: stats.Difference | None  # here minus reference, with its interval; None: not a difference of two
    verdict: str  # the change's verdict in words, or how a named answer fared
    same: bool = False  # whether both builds reach the same verdict on the comparison itself


def _difference(record: dict | None) -> stats.Difference | None:
    """A difference as a summary records it (``text.record``); None where the summary has no record."""
    if not record:
        return None
    lo, hi = (math.nan, math.nan) if None in record["ci95"] else record["ci95"]
    number = (lambda v: math.nan if v is None else float(v))
    return stats.Difference(math.nan, math.nan, float(record["diff"]), lo, hi, *record["n"], number(record["se"]),
                            number(record["dof"]), number(record["margin"]))


def _side(record: dict | None) -> str:
    if not record:
        return NA
    d = _difference(record)
    interval = "" if math.isnan(d.lo) else f" [{points(d.lo)}, {points(d.hi)}]"
    return f"{points(d.diff)}{interval}: {record['verdict']}"


def _verdict(change: stats.Difference | None) -> str:
    if change is None or math.isnan(change.lo):
        return NA
    word = CHANGE_WORDS[change.verdict]
    if change.verdict == "equivalent":
        word += f" within {margin_words(change.margin)}"
    elif change.negligible:
        word += f", by less than {margin_words(change.margin)}"
    return word


def margin(reference: dict, summary: dict) -> float:
    """The margin a change is judged by: the larger of the two studies' (the change is no more precise than
    the coarser study); NaN where neither summary states one."""
    found = [s["margin"] for s in (reference, summary) if s.get("margin") is not None]
    return max(found) if found else math.nan


def _compare(question: str, compared: str, ours: dict | None, theirs: dict | None, m: float) -> Row:
    here, there = _difference(ours), _difference(theirs)
    change = stats.change(here, there).with_margin(m) if here is not None and there is not None else None
    same = bool(ours and theirs and ours.get("verdict") == theirs.get("verdict"))
    return Row(question, compared, _side(theirs), _side(ours), change, _verdict(change), same)


def _leader(summary: dict) -> tuple[str, str] | None:
    """Question 2's first-ranked hyperparameter and its share of the resamples, in words."""
    first = summary.get("q2", {}).get("importance_first_probability") or {}
    if not first:
        return None
    top = max(first, key=first.get)
    return PARAMETER_NAMES.get(top, top), pct(first[top], 0)


def rows(reference: dict, summary: dict) -> list[Row]:
    """Every comparison both summaries hold, in question order."""
    found, m = [], margin(reference, summary)
    if "q1" in reference and "q1" in summary:
        found.append(Row("1", f"LeNet's test accuracy after {summary['q1']['epochs']} epochs (a level, not a "
                              "comparison)", pct(reference["q1"]["test_acc_mean"]), pct(summary["q1"]["test_acc_mean"]),
                         None, NA))
    theirs, ours = _leader(reference), _leader(summary)
    if theirs and ours:
        same = theirs[0] == ours[0]
        found.append(Row("2", "the hyperparameter ranked first (fANOVA), and the share of bootstrap resamples "
                              "that rank it first", f"{theirs[0]} ({theirs[1]})", f"{ours[0]} ({ours[1]})", None,
                         "the same first" if same else "a different first"))
    pairs = (("q3", "cnn_minus_bovw_record", "the best CNN minus SIFT-BoVW-SVM"),
             ("q4", "double_minus_lenet_record", "doubled-conv LeNet minus LeNet"))
    for q, key, words in pairs:
        if q in reference and q in summary:
            found.append(_compare(q[1], words, summary[q].get(key), reference[q].get(key), m))
    if "q5" in reference and "q5" in summary:
        a, b = reference["q5"].get("last_step"), summary["q5"].get("last_step")
        if a and b and a["sizes"] == b["sizes"]:
            row = _compare("5", f"what the last step of data gains, {a['sizes'][0]:,} to {a['sizes'][1]:,} images "
                                "(equal epochs)", b, a, m)
            found.append(Row(row.question, row.compared, f"{row.reference} ({reference['q5']['returns']})",
                             f"{row.here} ({summary['q5']['returns']})", row.change, row.verdict, row.same))
    if "q6" in reference and "q6" in summary:
        mine, yours = summary["q6"].get("comparisons") or {}, reference["q6"].get("comparisons") or {}
        for recipe in [r for r in yours if r in mine]:
            for size in [s for s in yours[recipe] if s in mine[recipe]]:
                chosen = [data.dataset(s.get("dataset", data.DEFAULT)).title for s in (reference, summary)
                          if s["q6"]["recipe"] == recipe]
                by = summary["q6"].get("selected_by", "validation")
                label = f" ({by} chose it {'in both' if len(chosen) == 2 else 'on ' + chosen[0]})" if chosen else ""
                found.append(_compare("6", f"ViT minus LeNet on {int(size):,} images, {recipe} recipe{label}",
                                      mine[recipe][size], yours[recipe][size], m))
    return found


def table(reference: dict, summary: dict, names: tuple[str, str]) -> pd.DataFrame:
    """Each comparison of ``reference`` beside the same one of ``summary``, with the change and its verdict;
    ``names`` are the two builds' datasets, in words."""
    if names[0] == names[1]:  # two builds of one dataset: the columns still need two names
        names = (f"{names[0]}, reference", f"{names[1]}, this build")
    frame = pd.DataFrame([{"question": r.question, "compared": r.compared, names[0]: r.reference, names[1]: r.here,
                           "change, 95% interval": NA if r.change is None or math.isnan(r.change.lo)
                           else f"{points(r.change.diff)} [{points(r.change.lo)}, {points(r.change.hi)}]",
                           "the change": r.verdict} for r in rows(reference, summary)])
    return captioned(frame, say("report", "transfer_caption", names=names))


def discussion(reference: dict, summary: dict, names: tuple[str, str]) -> str:
    """What transferred and what did not, from the rows: the changes detected where the verdict changed too,
    those where only the size changed, those within the margin, and those left undecided."""
    tested = [r for r in rows(reference, summary) if r.change is not None and not math.isnan(r.change.lo)]
    detected = [r for r in tested if r.change.verdict in ("ahead", "behind")]
    groups = {"changed": [r for r in detected if not r.same], "resized": [r for r in detected if r.same],
              "held": [r for r in tested if r.change.verdict == "equivalent"],
              "undecided": [r for r in tested if r.change.verdict == "undecided"]}
    named = [r for r in rows(reference, summary) if r.question == "2"]
    m = margin(reference, summary)
    finer = min([s["margin"] for s in (reference, summary) if s.get("margin") is not None], default=math.nan)
    loose = [r for r in groups["held"] if r.change.with_margin(finer).verdict != "equivalent"] if finer < m else []
    return say("report", "transfer_discussion", names=names, groups=groups, named=named,
               margin=margin_words(m) if m == m else None, loose=loose, finer=margin_words(finer))
