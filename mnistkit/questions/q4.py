"""Question 4: LeNet against the same network with its convolutional layers doubled, over seeds."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .. import stats
from ..params import Params
from ..store import Store
from .common import base, curves, read, row
from .text import MODEL_NAMES, bracketed, captioned, interval, mean_std_column, pct, plural, pm, training_set

MODELS = ("lenet", "double_conv_lenet")


def runs(params: Params) -> list:
    """Both networks over the seeds."""
    return [base(params, "q4", model=m, epochs=params.q4.epochs, seed=s) for m in MODELS for s in params.seeds]


def result(params: Params, store: Store) -> "Q4Result":
    fetched = read(store, runs(params), "q4")
    return Q4Result(runs=pd.DataFrame([row(r) for r in fetched]),
                    curves=curves([(r, {"model": r.config.model}) for r in fetched]),
                    epochs=params.q4.epochs, seeds=params.seeds, train_subset=params.train_subset,
                    validation=params.validation)


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

    def protocol(self) -> str:
        return f"""LeNet against the same network with a second 5×5 convolution (padding 2, ReLU) after
each of its two convolutions, trained identically: Adam lr 0.001, batch 64, {plural(self.epochs, 'epoch')},
{training_set(self.train_subset, self.validation)} images, seeds {self.seeds}. Lines are the mean test accuracy per
epoch,
bands ±1 std."""

    title = "4. Doubling the convolutional layers"

    def answer(self) -> str:
        m, gap = self.models, self.gap
        verdict = {"better": "The doubled-conv LeNet is more accurate", "worse": "The doubled-conv LeNet is less "
                                                                                 "accurate",
                   "level": "No detectable difference"}[gap.verdict]
        return (f"{verdict}: the doubled-conv LeNet reaches {pct(m.loc['double_conv_lenet', 'mean'])} against LeNet's "
                f"{pct(m.loc['lenet', 'mean'])}, {interval(gap)} over {len(self.seeds)} seeds, for "
                f"{m.loc['double_conv_lenet', 'seconds_per_epoch'] / m.loc['lenet', 'seconds_per_epoch']:.1f}× the "
                f"time "
                f"per epoch.")

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
            "better": "Here that extra depth pays off: the deeper network finds features that separate the "
                      "digits better within the same number of epochs.",
            "level": "On MNIST, where LeNet already separates the classes almost perfectly, there is little "
                     "left for them to fix: most remaining errors are ambiguous or badly written digits (see "
                     "the gallery at the end), and the added capacity mostly costs time.",
            "worse": "Here the deeper network does worse: more layers to fit in the same number of epochs, "
                     "with the same learning rate, leave it less converged.",
        }[gap.verdict]
        return f"""Doubling the conv layers changes the final test accuracy by **{interval(gap)}** over
{len(self.seeds)} seeds ({pm(a['mean'], a['std'])} → {pm(d['mean'], d['std'])}), {within}.
It adds {int(d.parameters - a.parameters):,} parameters ({100 * (d.parameters / a.parameters - 1):.0f}% more)
and makes an epoch {d.seconds_per_epoch / a.seconds_per_epoch:.2f}× as long
({a.seconds_per_epoch:.2f} s → {d.seconds_per_epoch:.2f} s).

The extra layers deepen the feature hierarchy and widen each unit's receptive field without
shrinking the maps (padding 2), while the classifier head stays the same. {reading}"""

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
                "double_conv_seconds_per_epoch": float(d.seconds_per_epoch)}
