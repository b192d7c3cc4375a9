"""One network against another, trained identically over the seeds: the shape of question 4 and of any
question that asks "model B minus model A". A question subclasses ``Comparison``, names its two models
and its summary keys, and writes its protocol and its reading of the verdict; the numbers, the interval,
the verdict, the cost and the table are the same for each."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .. import stats
from ..params import Base as Params
from ..store import Store
from .common import curves, read, row, whole
from .text import MODEL_NAMES, bracketed, captioned, judged, mean_std_column, pct, record, say


def runs(params: Params, name: str, models: tuple, epochs: int) -> list:
    """Both networks over the seeds, on the whole training set (they choose nothing: ``whole``)."""
    return [whole(params, name, model=m, epochs=epochs, seed=s) for m in models for s in params.seeds]


def result(cls, params: Params, store: Store, name: str, epochs: int) -> "Comparison":
    """The comparison ``cls`` of question ``name`` from its runs in the store."""
    fetched = read(store, runs(params, name, cls.models, epochs), name)
    return cls(runs=pd.DataFrame([row(r) for r in fetched]), curves=curves([(r, {"model": r.config.model})
                                                                            for r in fetched]),
               epochs=epochs, seeds=params.seeds, train_subset=params.train_subset,
               validation=fetched[0].config.validation, margin=params.equivalence)


@dataclass
class Comparison:
    """``models[1]`` against ``models[0]``, over seeds; ``keys`` name them, then their difference, in the summary."""

    runs: pd.DataFrame  # one row per run: model, seed, test_acc, parameters, seconds
    curves: pd.DataFrame  # per epoch and run: model, seed, epoch, test_acc, ...
    epochs: int
    seeds: list
    train_subset: int | None = None
    validation: int = 0
    margin: float = math.nan  # the equivalence margin of the verdict (params.Base.equivalence)

    models = ("lenet", "lenet")  # a subclass's two networks: the reference, then the one compared with it
    keys = ("a", "b", "b_minus_a")  # their summary names, then the difference's

    @property
    def names(self) -> tuple:
        return tuple(MODEL_NAMES[m] for m in self.models)

    @cached_property
    def stats(self) -> pd.DataFrame:
        """One row per model (index: its name): mean, std, count, parameters, seconds_per_epoch."""
        return (self.runs.groupby("model", sort=False)
                .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), count=("test_acc", "count"),
                     parameters=("parameters", "first"), seconds=("seconds", "mean"))
                .assign(seconds_per_epoch=lambda f: f.seconds / self.epochs))

    @property
    def gap(self) -> stats.Difference:
        """The second model minus the first over seeds, with its 95% Welch interval."""
        r, (a, b) = self.runs, self.models
        return stats.difference(r.loc[r.model == b, "test_acc"], r.loc[r.model == a, "test_acc"], margin=self.margin)

    def epoch_seconds(self, model: str) -> pd.Series:
        """Each run's mean seconds per epoch (its test passes included)."""
        r = self.runs
        return r.loc[r.model == model, "seconds"] / self.epochs

    @property
    def slower(self) -> float | None:
        """How many times as long the second model's epoch takes, where every run of it was slower than every
        run of the first (the ratio exceeds the spread of identical runs); None where their times overlap."""
        a, b = (self.epoch_seconds(m) for m in self.models)
        return float(b.mean() / a.mean()) if b.min() > a.max() else None

    def _rows(self) -> tuple:
        return self.stats.loc[self.models[0]], self.stats.loc[self.models[1]]

    def cost(self) -> str:
        """The time per epoch, as a ratio only where it exceeds the spread of identical runs."""
        return say("comparison", "cost", r=self, a=self.epoch_seconds(self.models[0]),
                   b=self.epoch_seconds(self.models[1]))

    def answer(self) -> str:
        return say("comparison", "answer", r=self, a=self._rows()[0], b=self._rows()[1], cost=self.cost())

    def conclusion(self) -> str:
        return say("comparison", "conclusion", r=self)

    def alt(self) -> str:
        ends = [(MODEL_NAMES[name], row["mean"]) for name, row in self.stats.iterrows()]
        return say("comparison", "alt", models=ends)

    def table(self) -> pd.DataFrame:
        m = self.stats.reset_index()
        return captioned(pd.DataFrame({
            "model": m.model.map(lambda v: MODEL_NAMES[v]),
            "test accuracy, mean ± std": mean_std_column(m),
            "seeds": m["count"].astype(int),
            "parameters": m.parameters.map("{:,}".format),
            "seconds per epoch": m.seconds_per_epoch.map("{:.2f}".format),
        }), say("comparison", "table_caption", r=self))

    def reading(self) -> str:
        """What the interval rules out, and what it cannot, where no side is ahead."""
        return say("comparison", "reading", r=self)

    def measured(self) -> str:
        """The difference, its interval, the parameters and the time it costs, in words."""
        return say("comparison", "measured", r=self, a=self._rows()[0], b=self._rows()[1], cost=self.cost())

    def headlines(self) -> list[tuple]:
        return [(f"{self.names[0]} (mean)", pct(self.stats.loc[self.models[0], "mean"]), ""),
                (f"{self.names[1]} minus {self.names[0]}, 95% interval",
                 f"{bracketed(self.gap)}: {judged(self.gap, *self.names[::-1])}", "")]

    def summary(self) -> dict:
        m, (a, b), (ka, kb, diff) = self.stats, self.models, self.keys
        x, y = m.loc[a], m.loc[b]
        return {f"{ka}_test_acc_mean": float(x["mean"]), f"{ka}_test_acc_std": float(x["std"]),
                f"{kb}_test_acc_mean": float(y["mean"]), f"{kb}_test_acc_std": float(y["std"]),
                diff: self.gap.diff, f"{diff}_ci95": self.gap.ci95,
                f"{diff}_record": record(self.gap, *self.names[::-1]),
                f"{ka}_parameters": int(x.parameters), f"{kb}_parameters": int(y.parameters),
                f"{ka}_seconds_per_epoch": float(x.seconds_per_epoch),
                f"{kb}_seconds_per_epoch": float(y.seconds_per_epoch),
                "train_images": int(self.runs.train_images.iloc[0])}
