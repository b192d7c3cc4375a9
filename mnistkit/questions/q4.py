"""Question 4: LeNet against the same network with its convolutional layers doubled, over seeds."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .. import stats
from ..errors import check_number
from ..params import Base as Params
from ..params import param
from ..store import Store
from .common import Question, curves, read, row, whole
from .text import (MODEL_NAMES, bracketed, captioned, interval, mean_std_column, pct, plural, pm, points, question,
                   training_set)

MODELS = ("lenet", "double_conv_lenet")


@dataclass(frozen=True)
class Section:
    """LeNet vs doubled conv layers: epochs"""

    epochs: int = param(2, "training epochs")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)


def runs(params: Params) -> list:
    """Both networks over the seeds, on the whole training set (they choose nothing: ``whole``)."""
    return [whole(params, "q4", model=m, epochs=params.q4.epochs, seed=s) for m in MODELS for s in params.seeds]


def result(params: Params, store: Store, needed: dict | None = None) -> "Q4Result":
    fetched = read(store, runs(params), "q4")
    return Q4Result(runs=pd.DataFrame([row(r) for r in fetched]),
                    curves=curves([(r, {"model": r.config.model}) for r in fetched]),
                    epochs=params.q4.epochs, seeds=params.seeds, train_subset=params.train_subset,
                    validation=fetched[0].config.validation)


@dataclass
class Q4Result:
    """LeNet against the same network with its conv layers doubled, over seeds."""

    runs: pd.DataFrame  # one row per run: model, seed, test_acc, parameters, seconds
    curves: pd.DataFrame  # per epoch and run: model, seed, epoch, test_acc, ...
    epochs: int
    seeds: list
    train_subset: int | None = None
    validation: int = 0

    @cached_property
    def models(self) -> pd.DataFrame:
        """One row per model (index: its name): mean, std, count, parameters, seconds_per_epoch."""
        return (self.runs.groupby("model", sort=False)
                .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), count=("test_acc", "count"),
                     parameters=("parameters", "first"), seconds=("seconds", "mean"))
                .assign(seconds_per_epoch=lambda f: f.seconds / self.epochs))

    @property
    def gap(self) -> stats.Difference:
        """Doubled minus plain LeNet over seeds, with its 95% Welch interval."""
        r = self.runs
        return stats.difference(r.loc[r.model == "double_conv_lenet", "test_acc"],
                                r.loc[r.model == "lenet", "test_acc"])

    def epoch_seconds(self, model: str) -> pd.Series:
        """Each run's mean seconds per epoch (its test passes included)."""
        r = self.runs
        return r.loc[r.model == model, "seconds"] / self.epochs

    @property
    def slower(self) -> float | None:
        """How many times as long a doubled-conv epoch takes, where every doubled-conv run was slower than
        every LeNet run (the ratio exceeds the spread of identical runs); None where their times overlap."""
        a, d = self.epoch_seconds("lenet"), self.epoch_seconds("double_conv_lenet")
        return float(d.mean() / a.mean()) if d.min() > a.max() else None

    def first_epoch(self) -> pd.Series:
        """Each model's mean test accuracy after its first epoch."""
        c = self.curves
        return c[c.epoch == c.epoch.min()].groupby("model").test_acc.mean()

    def _cost(self) -> str:
        """The time per epoch, as a ratio only where it exceeds the spread of identical runs."""
        a, d = self.epoch_seconds("lenet"), self.epoch_seconds("double_conv_lenet")
        if self.slower is not None:
            return f"{self.slower:.1f}× the time per epoch"
        return (f"epoch times that overlap between runs (LeNet {a.min():.2f} to {a.max():.2f} s, doubled "
                f"{d.min():.2f} to {d.max():.2f} s), so no time ratio is claimed")

    def protocol(self) -> str:
        return f"""LeNet against the same network with a second 5×5 convolution (padding 2, ReLU) after
each of its two convolutions, trained identically: Adam lr 0.001, batch 64, {plural(self.epochs, 'epoch')},
{training_set(self.train_subset, self.validation)} images, seeds {self.seeds}. Lines are the mean test error per epoch
on a log axis, bands ±1 std."""

    title = "4. Doubling the convolutional layers"

    def answer(self) -> str:
        m, gap = self.models, self.gap
        verdict = {"better": "The doubled-conv LeNet is more accurate", "worse": "The doubled-conv LeNet is less "
                                                                                 "accurate",
                   "level": "No detectable difference"}[gap.verdict]
        return (f"{verdict}: the doubled-conv LeNet reaches {pct(m.loc['double_conv_lenet', 'mean'])} against LeNet's "
                f"{pct(m.loc['lenet', 'mean'])} after {plural(self.epochs, 'epoch')}, {bracketed(gap)} over "
                f"{len(self.seeds)} seeds, with "
                f"{self._cost()}.")

    def alt(self) -> str:
        m = self.models
        return ("Line chart of mean test error (100 minus accuracy) per epoch on a log axis, with ±1 std bands: "
                + "; ".join(f"{MODEL_NAMES[name]} ends at {pct(1 - row['mean'])} error ({pct(row['mean'])} accuracy)"
                            for name, row in m.iterrows()) + ".")

    def table(self) -> pd.DataFrame:
        m = self.models.reset_index()
        return captioned(pd.DataFrame({
            "model": m.model.map(MODEL_NAMES),
            "test accuracy, mean ± std": mean_std_column(m),
            "seeds": m["count"].astype(int),
            "parameters": m.parameters.map("{:,}".format),
            "seconds per epoch": m.seconds_per_epoch.map("{:.2f}".format),
        }), "LeNet and the doubled-conv LeNet after the same epochs, over the same seeds.")

    def analysis(self) -> str:
        m, gap = self.models, self.gap
        a, d = m.loc["lenet"], m.loc["double_conv_lenet"]
        within = ("an interval that excludes zero" if gap.verdict != "level"
                  else "an interval that includes zero, so not a clear difference")
        reading = {
            "better": "Here that extra depth pays off within the same number of epochs.",
            "level": f"The interval rules out a gain above {points(gap.hi)} points and a loss beyond "
                     f"{points(gap.lo)}, not a smaller effect either way: with {len(self.seeds)} seeds, a "
                     "difference of a few tenths of a point cannot be told from the seeds' spread.",
            "worse": "Here the deeper network does worse within the same number of epochs.",
        }[gap.verdict]
        first = self.first_epoch()
        budget = (f" The doubled network learns more slowly at first (after epoch 1: {pct(first['double_conv_lenet'])} "
                  f"against LeNet's {pct(first['lenet'])}), so a budget of {plural(self.epochs, 'epoch')} may favour "
                  "the smaller one." if first["double_conv_lenet"] < first["lenet"] else "")
        return f"""Doubling the conv layers changes the final test accuracy by **{interval(gap)}** over
{len(self.seeds)} seeds ({pm(a['mean'], a['std'])} → {pm(d['mean'], d['std'])}), {within}.
It adds {int(d.parameters - a.parameters):,} parameters ({100 * (d.parameters / a.parameters - 1):.0f}% more)
and gives {self._cost()} (mean {a.seconds_per_epoch:.2f} s → {d.seconds_per_epoch:.2f} s; one thread a run,
test passes included).

The extra layers deepen the feature hierarchy and widen each unit's receptive field without
shrinking the maps (padding 2), while the classifier head stays the same. {reading}{budget}"""

    def headlines(self) -> list[tuple]:
        return [("4. LeNet (mean)", pct(self.models.loc["lenet", "mean"]), ""),
                ("4. doubled-conv LeNet minus LeNet, 95% interval", bracketed(self.gap), "")]

    def summary(self) -> dict:
        m = self.models
        a, d = m.loc["lenet"], m.loc["double_conv_lenet"]
        return {"lenet_test_acc_mean": float(a["mean"]), "lenet_test_acc_std": float(a["std"]),
                "double_conv_test_acc_mean": float(d["mean"]), "double_conv_test_acc_std": float(d["std"]),
                "double_minus_lenet": self.gap.diff, "double_minus_lenet_ci95": self.gap.ci95,
                "lenet_parameters": int(a.parameters), "double_conv_parameters": int(d.parameters),
                "lenet_seconds_per_epoch": float(a.seconds_per_epoch),
                "double_conv_seconds_per_epoch": float(d.seconds_per_epoch),
                "train_images": int(self.runs.train_images.iloc[0])}


QUESTION = Question("q4", 4, question("q4"), Section, runs, result)
