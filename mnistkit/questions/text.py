"""How the report writes numbers in sentences and tables, and the figures it compares with."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..data import TRAIN_SIZE
from ..files import read_yaml
from ..models import MODELS
from ..stats import Difference

ASSIGNMENT_FILE = Path(__file__).with_name("assignment.yaml")  # its printed accuracies and its set-ups


@lru_cache(maxsize=1)
def _assignment() -> dict:
    return read_yaml(ASSIGNMENT_FILE, "assignment.yaml")


def asked_of() -> str:
    """The dataset the assignment asks its questions of (a name of ``data.DATASETS``)."""
    return _assignment()["dataset"]


def asked(name: str) -> bool:
    """Whether question ``name`` is one the assignment asked."""
    return name in _assignment()["asked"]


def reported(name: str, dataset: str):
    """What the assignment printed for question ``name`` (a figure, or figures by training images), where
    the report studies the assignment's dataset; else None."""
    facts = _assignment()
    return facts.get(name, {}).get("reported") if dataset == facts["dataset"] else None


def setup(name: str, dataset: str) -> dict:
    """How the assignment ran question ``name`` (its epochs, its encoder's layers), where the report studies
    its dataset; else an empty mapping."""
    facts = _assignment()
    return facts.get(name, {}).get("setup", {}) if dataset == facts["dataset"] else {}


def reported_setting(values: dict, dataset: str) -> float | None:
    """The accuracy the assignment printed for question 2's setting with run ``values`` (its epochs aside),
    where it ran that setting on the report's dataset; else None."""
    facts = _assignment()
    if dataset != facts["dataset"]:
        return None
    same = {k: v for k, v in values.items() if k != "epochs"}
    return next((s["reported"] for s in facts["q2"]["settings"]
                 if {k: v for k, v in s.items() if k != "reported"} == same), None)


OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
NA = "—"  # a table cell that does not apply
PARAMETER_NAMES = {"lr": "learning rate", "batch_size": "batch size", "optimizer": "optimizer",
                   "weight_decay": "weight decay", "momentum": "momentum", "schedule": "schedule",
                   "momentum (within SGD)": "momentum (within SGD)"}
MODEL_NAMES = {name: model.title for name, model in MODELS.items()}  # each network's name in the report
RECIPE_WORDS = {
    "optimizer": lambda v: OPTIMIZER_NAMES.get(v, v),
    "lr": "learning rate {:g}".format,
    "batch_size": "batch size {}".format,
    "momentum": "momentum {:g}".format,
    "weight_decay": "weight decay {:g}".format,
    "schedule": lambda v: {"cosine": "cosine decay of the learning rate", "constant": "constant learning "
                                                                                      "rate"}.get(v, v),
    "warmup_epochs": lambda v: f"{v:g} warm-up epoch{'' if v == 1 else 's'}",
    "label_smoothing": "label smoothing {:g}".format,
    "augment": lambda v: {"shift": "random shifts of up to 2 pixels", "none": "no augmentation"}.get(v, v),
    "epochs": "{} epochs".format,
}
SELECTED_BY = {"val_acc": "validation", "test_acc": "test"}


def captioned(frame: pd.DataFrame, caption: str) -> pd.DataFrame:
    """``frame`` with the caption the report numbers and shows above it (``Report.table``)."""
    frame.attrs["caption"] = caption
    return frame


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def pm(mean: float, std: float, digits: int = 2) -> str:
    """``mean ± std`` in percent, never broken across lines; the mean alone where there is no spread
    (a single seed)."""
    if std is None or pd.isna(std):
        return pct(mean, digits)
    return f"{100 * mean:.{digits}f}\u00a0±\u00a0{100 * std:.{digits}f}%"  # no line break inside


def points(x: float, digits: int = 2) -> str:
    """A difference of accuracies in percentage points, with its sign."""
    return f"{100 * x:+.{digits}f}"


def times(ratio: float) -> str:
    """A time ratio to two significant figures (``210×``, ``1.6×``): timings vary between builds and machines
    more than a third figure would claim."""
    return f"{float(f'{ratio:.2g}'):,g}×"


def plural(n: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def training_set(train_subset: int | None, validation: int = 0) -> str:
    """What "the full training set" is in this report: all the training images (less the validation split),
    or a subset standing in."""
    if train_subset is not None:
        return f"{train_subset:,} (standing in for {TRAIN_SIZE:,})"
    if not validation:
        return f"{TRAIN_SIZE:,}"
    return f"{TRAIN_SIZE - validation:,} ({TRAIN_SIZE:,} less the {validation:,} validation images)"


def recipe(runs: pd.DataFrame) -> str:
    """The optimizer, learning rate and batch size its ``runs`` (a frame of ``common.row``s) share, in words."""
    first = runs.iloc[0]
    return f"{OPTIMIZER_NAMES[first.optimizer]} lr {first.lr:g}, batch {int(first.batch_size)}"


def _precise(d: Difference, digits: int) -> int:
    """``digits``, or one more where a bound would print as the margin itself: an interval inside ±m must read so."""
    m = 100 * d.margin
    return digits + 1 if any(round(abs(100 * b), digits) == round(m, digits) for b in (d.lo, d.hi)) else digits


def interval(d: Difference, digits: int = 2) -> str:
    """A difference over seeds in points with its 95% interval: ``+0.21 points (95% interval −0.05 to +0.47)``."""
    if math.isnan(d.lo):
        return f"{points(d.diff, digits)} points (no interval: one run a side)"
    digits = _precise(d, digits)
    return f"{points(d.diff, digits)} points (95% interval {points(d.lo, digits)} to {points(d.hi, digits)})"


RELATION = {"ahead": "ahead of", "behind": "behind", "equivalent": "equivalent to", "undecided": "undecided against"}


def relation(d: Difference) -> str:
    """How the first side of ``d`` stands to the second, for "A is ... B": "ahead of", "behind", "equivalent
    to" (within the margin) or "undecided against"."""
    return RELATION[d.verdict]


def margin_words(margin: float) -> str:
    """An equivalence margin in points: ``±0.2 points``; "no margin" where none is set."""
    return "no margin" if math.isnan(margin) else f"±{round(100 * margin, 2):g} points"


def judged(d: Difference, first: str, second: str) -> str:
    """The verdict on ``d`` (``first`` minus ``second``) in the report's four words: who is ahead (and
    whether by less than the margin), equivalent within the margin, or undecided."""
    v = d.verdict
    if v in ("ahead", "behind"):
        who = first if v == "ahead" else second
        return f"{who} ahead" + (f", by less than the {margin_words(d.margin)} that count" if d.negligible else "")
    if v == "equivalent":
        return f"equivalent within {margin_words(d.margin)}"
    return "undecided"


def record(d: Difference, first: str, second: str) -> dict:
    """A difference as summary.json holds it: its verdict in words, its margin, and what another build needs to
    test how it changed (``stats.change``)."""
    return {"diff": d.diff, "ci95": d.ci95, "se": d.se, "dof": d.dof, "margin": d.margin, "n": [d.a_n, d.b_n],
            "verdict": judged(d, first, second)}


def bracketed(d: Difference) -> str:
    """A difference for the headline table: ``+0.07 points [-0.08, +0.22]``, the bare difference
    where there is no interval."""
    if math.isnan(d.lo):
        return f"{points(d.diff)} points, no interval"
    digits = _precise(d, 2)
    return f"{points(d.diff, digits)} points [{points(d.lo, digits)}, {points(d.hi, digits)}]"


def setting_label(s: dict) -> str:
    """A hyperparameter setting in a few words: ``adam lr=0.002 bs=64 cosine``."""
    parts = [s["optimizer"], f"lr={s['lr']:g}", f"bs={s['batch_size']}"]
    if s.get("momentum"):
        parts.append(f"m={s['momentum']:g}")
    if s.get("weight_decay"):
        parts.append(f"wd={s['weight_decay']:g}")
    if s.get("schedule", "constant") != "constant":
        parts.append(s["schedule"])
    return " ".join(parts)


def recipe_words(recipe: dict) -> str:
    """A recipe of run parameters in words; a model's own keyword arguments (under 'vit' or 'lenet')
    after 'the ViT with' or 'LeNet with', in the recipe's order."""
    words = [RECIPE_WORDS[k](v) if k in RECIPE_WORDS else f"{k.replace('_', ' ')} {v}"
             for k, v in recipe.items() if k not in MODEL_NAMES]
    for model in (k for k in recipe if k in MODEL_NAMES):
        for k, v in (recipe[model] or {}).items():
            value = {"norm_first": lambda on: "pre-norm encoder layers" if on else "post-norm encoder layers"}.get(k)
            words.append(f"{MODEL_NAMES[model]} with " + (value(v) if value else f"{k.replace('_', ' ')} {v}"))
    return ", ".join(words)


def mean_std_column(frame: pd.DataFrame) -> list[str]:
    """``mean ± std`` of every row of a frame with ``mean`` and ``std`` columns."""
    return [pm(m, s) for m, s in zip(frame["mean"], frame["std"])]


def text_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that hold words (a setting, a model, a measure), as opposed to formatted numbers:
    those with a letter in any cell. Words are read left-aligned, numbers right-aligned."""
    return [c for c in frame.columns if frame[c].astype(str).str.contains(r"[A-Za-z]").any()]


def markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub Markdown table (the README's results table is the headlines through this)."""
    def row(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([row(frame.columns), row(["---"] * len(frame.columns)), *map(row, frame.itertuples(index=False))])


TEMPLATES = Path(__file__).with_name("templates")  # one Jinja2 file of text per question: <name>.md.j2


@lru_cache(maxsize=1)
def _templates():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, autoescape=False)
    env.filters.update(pct=pct, pm=pm, points=points, interval=interval, bracketed=bracketed, plural=plural,
                       judged=judged, margin_words=margin_words, times=times,
                       relation=relation)
    env.globals.update(MODEL_NAMES=MODEL_NAMES, OPTIMIZER_NAMES=OPTIMIZER_NAMES, NA=NA)
    return env


def say(name: str, part: str, **values) -> str:
    """The text ``part`` (a macro) of ``templates/<name>.md.j2`` filled with ``values``: a result's numbers
    and verdicts go in, the sentences come out (a missing value raises, never prints blank)."""
    return str(getattr(_templates().get_template(f"{name}.md.j2").module, part)(**values)).strip("\n")
