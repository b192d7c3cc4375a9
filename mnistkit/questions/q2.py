"""Question 2, first part: LeNet under the parameter file's hyperparameter settings, each over the
seeds; the best chosen on validation (or, under the assignment's protocol, on test) accuracy, and
retrained on all the training images in the plan's second stage. The random-search study is
``q2_study``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

import pandas as pd

from .. import data, stats
from ..errors import ConfigError, check_number
from ..params import Base as Params
from ..params import check_mapping, param
from ..store import Store
from . import q2_study
from .common import Question, Stage, base, read, row, whole
from .text import (NA, OPTIMIZER_NAMES, PARAMETER_NAMES, SELECTED_BY, captioned, mean_std_column, pct, pm,
                   record, reported, reported_setting, say, setting_label, training_set)

HYPERPARAMETERS = ("optimizer", "lr", "batch_size", "momentum", "weight_decay", "schedule")  # what a setting sets


@dataclass(frozen=True)
class Section:
    """hyperparameters: settings, random-search study"""

    epochs: int = param(1, "training epochs of every setting")
    settings: list[dict] = param([{"batch_size": 64, "lr": 0.001, "optimizer": "adam"},
                                  {"batch_size": 128, "lr": 0.01, "optimizer": "sgd", "momentum": 0.9}],
                                 "run parameters of each setting (the assignment's accuracy for its own settings "
                                 "comes from mnistkit/questions/assignment.yaml)")
    study: q2_study.Study = param(q2_study.Study(), "the random search behind 'which hyperparameters matter most'")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)
        if not isinstance(self.settings, list) or len(self.settings) < 2:
            raise ConfigError("settings", self.settings, "must be a list of at least two settings")
        for i, setting in enumerate(self.settings):
            check_mapping(f"settings[{i}]", setting)


def _same(a, b) -> bool:
    return a == b or (pd.isna(a) and pd.isna(b))


def _value(name: str, value) -> str:
    """A hyperparameter's value in words: ``Adam``, ``0.002``, ``512``, ``cosine``."""
    if name == "optimizer":
        return OPTIMIZER_NAMES.get(value, value)
    return f"{value:g}" if isinstance(value, float) else f"{value}"


def _values(params: Params, number: int) -> dict:
    """Setting ``number`` (from 1) as RunConfig values, its epochs filled in."""
    values = dict(params.q2.settings[number - 1])
    values.setdefault("epochs", params.q2.epochs)
    return values


def settings(params: Params):
    """``(setting number from 1, the assignment's accuracy or None, config)`` for every setting and seed."""
    for number, setting in enumerate(params.q2.settings, start=1):
        for seed in params.seeds:
            config = base(params, f"q2.settings[{number - 1}]", seed=seed, **_values(params, number))
            yield number, reported_setting(setting, params.dataset), config


def runs(params: Params) -> list:
    """The plan's first stage for this question: every setting over the seeds."""
    return [c for *_, c in settings(params)]


def retrained(params: Params, number: int) -> list:
    """Setting ``number`` (from 1) retrained on the whole training set, the validation images
    included, one run per seed; none under the assignment's protocol, whose runs trained on all of
    it already."""
    if not params.validation:
        return []
    return [whole(params, f"q2.settings[{number - 1}]", seed=seed, **_values(params, number)) for seed in params.seeds]


def frame(params: Params, store: Store) -> pd.DataFrame:
    """One row per setting and seed, from the store: setting, label, reported, and the run's numbers."""
    items = list(settings(params))
    fetched = read(store, [c for *_, c in items], "q2")
    return pd.DataFrame([row(run, setting=number, label=setting_label(c.to_dict()), reported=reported)
                         for (number, reported, c), run in zip(items, fetched)])


def second_stage(params: Params, store: Store) -> list:
    """The plan's second stage: the chosen setting retrained (``retrained``), once the first stage's
    runs, which choose it, are stored."""
    chosen = ranked(settings_table(frame(params, store)), params.selected_by).iloc[0]
    return retrained(params, int(chosen.setting))


def result(params: Params, store: Store, needed: dict | None = None) -> "Q2Result":
    """The settings from the store, the random-search study and, where question 2 is shown, the chosen
    setting's retrained runs (which score it); elsewhere the settings alone (what question 3 and the
    failures read)."""
    q2 = Q2Result(runs=frame(params, store), epochs=params.q2.epochs, seeds=params.seeds,
                  selected_by=params.selected_by, train_size=data.train_images(params.train_subset, params.validation),
                  train_subset=params.train_subset, validation=params.validation,
                  reported=reported("q2", params.dataset), margin=params.equivalence)
    if not params.selected("q2"):
        return q2
    q2.study = q2_study.result(params, store)
    again = retrained(params, int(q2.best.setting))
    if not again:
        return q2
    q2.retrained = pd.DataFrame([row(run) for run in read(store, again, "q2")])
    return q2


def settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting, in order: setting, label, mean and std (test), val_mean, val_std,
    count, reported, seconds (mean per run)."""
    return (runs.groupby(["setting", "label"], sort=False)
            .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), val_mean=("val_acc", "mean"),
                 val_std=("val_acc", "std"), count=("test_acc", "count"), reported=("reported", "first"),
                 seconds=("seconds", "mean"))
            .reset_index())


def ranked(table: pd.DataFrame, selected_by: str) -> pd.DataFrame:
    """The settings by the deciding accuracy's mean, highest first (the first of equals first)."""
    column = "val_mean" if selected_by == "val_acc" else "mean"
    return table.sort_values(column, ascending=False, kind="stable")


@dataclass
class Q2Result:
    """LeNet under several hyperparameter settings, each over seeds; the best chosen, and scored."""

    runs: pd.DataFrame  # one row per run: setting (1, 2, ...), label, reported, seed, test_acc, val_acc, seconds
    epochs: int
    seeds: list
    selected_by: str = "val_acc"  # the accuracy that chooses the best setting: val_acc or test_acc
    train_size: int = 60_000
    train_subset: int | None = None
    validation: int = 0  # images held out of every run to choose on
    retrained: pd.DataFrame | None = None  # the best setting retrained on all the images: seed, test_acc, train_images
    reported: float | None = None  # the assignment's best, where it studied the same dataset
    study: q2_study.StudyResult | None = None  # the random search, where question 2 is shown
    margin: float = math.nan  # the verdicts' equivalence margin (params.Base.equivalence)

    @property
    def theirs(self) -> bool:
        """Whether the assignment printed an accuracy for any of these settings (on this dataset)."""
        return bool(self.runs.reported.notna().any())

    def caption_settings(self) -> str:
        return say("q2", "caption_settings", r=self)

    @property
    def decider(self) -> str:
        """'validation' or 'test': which images chose the best setting."""
        return SELECTED_BY[self.selected_by]

    @cached_property
    def settings(self) -> pd.DataFrame:
        return settings_table(self.runs)

    @cached_property
    def ranked(self) -> pd.DataFrame:
        return ranked(self.settings, self.selected_by)

    @property
    def best(self) -> pd.Series:
        return self.ranked.iloc[0]

    @property
    def second(self) -> pd.Series:
        return self.ranked.iloc[1]

    @property
    def lowest(self) -> list:
        """The setting with the lowest mean test accuracy and every setting not detectably above it (its
        interval over seeds includes zero), lowest first: one row each of ``settings``."""
        table = self.settings.sort_values("mean", kind="stable")
        low = table.iloc[0]
        return [r for _, r in table.iterrows() if r.setting == low.setting or stats.difference(
            self._accs(r.setting, "test_acc"), self._accs(low.setting, "test_acc")).verdict != "ahead"]

    @property
    def scored(self) -> pd.Series:
        """The best setting's test accuracies, one per seed, as the report scores it: those of its runs
        retrained on the whole training set where there are any, else those of its runs."""
        if self.retrained is not None:
            return self.retrained.test_acc
        return self.runs.loc[self.runs.setting == self.best.setting, "test_acc"]

    def _accs(self, setting, column: str) -> list:
        return list(self.runs.loc[self.runs.setting == setting, column])

    def lead(self, column: str | None = None) -> stats.Difference:
        """The best setting minus the second best over seeds, in ``column`` (default: the deciding one)."""
        column = column or self.selected_by
        return stats.difference(self._accs(self.best.setting, column), self._accs(self.second.setting, column),
                                margin=self.margin)

    @property
    def _retrained_images(self) -> int | None:
        """How many images the chosen setting was retrained on; None where it was not retrained."""
        return int(self.retrained.train_images.iloc[0]) if self.retrained is not None else None

    def protocol(self) -> str:
        images = training_set(self.train_subset) if self.train_subset else f"{self.train_size:,}"
        return say("q2", "protocol", r=self, images=images, retrained=self._retrained_images,
                   all_images=data.TRAIN_SIZE)

    title = "Hyperparameters"

    def answer(self) -> str:
        """The chosen setting; with its study, what matters most by both experiments first."""
        study = self.study
        return say("q2", "answer", r=self, gap=self.lead(), mean=self.scored.mean(), std=self.scored.std(),
                   study=None if study is None else study.answer(),
                   grid=None if study is None else self._grid_answer(study))

    def conclusion(self) -> str:
        return "" if self.study is None else self.study.conclusion()

    def _grid_answer(self, study) -> str:
        """What the settings' single changes add to the search's answer, and where the two disagree."""
        changes = self.single_changes()
        if changes.empty:
            return say("q2", "grid_answer", top=None, hyperparameter=None, agrees=False, missing=[])
        top = changes.loc[changes["diff"].abs().idxmax()]
        missing = [PARAMETER_NAMES[h] for h in study.leaders if h not in set(changes.hyperparameter)]
        return say("q2", "grid_answer", top=top, hyperparameter=PARAMETER_NAMES[top.hyperparameter],
                   agrees=top.hyperparameter in study.leaders, missing=missing)

    def single_changes(self) -> pd.DataFrame:
        """Every pair of settings that differ in one hyperparameter only, in setting order: hyperparameter,
        first, second (setting numbers), change (in words), difference (``stats.Difference``, the second minus
        the first over seeds on the deciding accuracy), diff."""
        values = self.runs.groupby("setting", sort=True)[list(HYPERPARAMETERS)].first()
        rows = []
        for a, b in combinations(values.index, 2):
            differ = [h for h in HYPERPARAMETERS if not _same(values.at[a, h], values.at[b, h])]
            if len(differ) != 1:
                continue
            h = differ[0]
            d = stats.difference(self._accs(b, self.selected_by), self._accs(a, self.selected_by), margin=self.margin)
            rows.append({"hyperparameter": h, "first": int(a), "second": int(b), "difference": d, "diff": d.diff,
                         "change": f"{_value(h, values.at[a, h])} to {_value(h, values.at[b, h])}, settings {a} "
                                   f"to {b}"})
        return pd.DataFrame(rows, columns=["hyperparameter", "first", "second", "change", "difference", "diff"])

    def _single_changes_text(self) -> str:
        changes = self.single_changes()
        if changes.empty:
            return ""
        warm = (self.runs.loc[self.runs.schedule == "cosine", "warmup_epochs"].max()
                if "schedule" in set(changes.hyperparameter) else None)
        rows = [(PARAMETER_NAMES[c.hyperparameter], c.change, c.difference) for c in changes.itertuples()]
        return say("q2", "single_changes", r=self, changes=rows, warm=warm) + "\n\n"  # a blank line after the list

    def alt_settings(self) -> str:
        s = self.settings
        return say("q2", "alt_settings", r=self, val_low=s["val_mean"].min(), val_high=s["val_mean"].max(),
                   test_low=s["mean"].min(), test_high=s["mean"].max())

    def table(self) -> pd.DataFrame:
        s = self.settings
        columns = {"#": s.setting.astype(int), "setting": s.label}
        if self.decider == "validation":
            columns["validation accuracy, mean ± std"] = [pm(m, d) for m, d in zip(s.val_mean, s.val_std)]
        columns["test accuracy, mean ± std"] = mean_std_column(s)
        if self.theirs:
            columns["the assignment (1 run)"] = s.reported.map(lambda v: NA if pd.isna(v) else pct(v))
        columns["seconds per run"] = s.seconds.map("{:,.1f}".format)
        return captioned(pd.DataFrame(columns), say("q2", "table_caption", r=self))

    def analysis(self) -> str:
        deciding = "val_mean" if self.decider == "validation" else "mean"
        second = self.second
        tied = [r for _, r in self.ranked.iloc[1:].iterrows() if r[deciding] == second[deciding]]
        more = (None if self.retrained is None
                else stats.difference(list(self.scored), self._accs(self.best.setting, "test_acc"), margin=self.margin))
        return say("q2", "analysis", r=self, deciding=deciding, tied=tied, gap=self.lead(),
                   test_gap=self.lead("test_acc"), mean=self.scored.mean(), std=self.scored.std(),
                   retrained=self._retrained_images, more=more, all_images=data.TRAIN_SIZE, bottom=self._bottom(),
                   theirs=self._theirs(), single_changes=self._single_changes_text()) + "\n\n"  # ends in a blank line

    def _theirs(self) -> str:
        """The assignment's best setting and accuracy, where it studied the same dataset."""
        if not self.reported:
            return ""
        theirs = self.settings[self.settings.reported == self.reported]
        return say("q2", "theirs", reported=self.reported, label=theirs.label.iloc[0] if len(theirs) else None)

    def _bottom(self) -> str:
        return say("q2", "bottom", low=self.lowest)

    def headlines(self) -> list[tuple]:
        retrained = "retrained with the validation images, " if self.retrained is not None else ""
        return [(f"best of {len(self.settings)} settings, chosen on {self.decider}: {self.best.label} "
                 f"({retrained}mean of {len(self.seeds)} seeds)", pct(self.scored.mean()),
                 pct(self.reported) if self.reported else "")]

    def summary(self) -> dict:
        best = self.best
        study = self.study.summary() if self.study is not None else {}
        return {**study, "best_setting": best.label, "selected_by": self.decider,
                "best_val_acc_mean": float(best["val_mean"]) if self.decider == "validation" else None,
                "best_test_acc_mean": float(self.scored.mean()), "best_test_acc_std": float(self.scored.std()),
                "best_retrained": self.retrained is not None, "seeds": len(self.seeds),
                "best_minus_second": self.lead().diff, "best_minus_second_ci95": self.lead().ci95,
                "best_minus_second_record": record(self.lead(), "the chosen setting", "the second best"),
                "train_images": (int(self.retrained.train_images.iloc[0]) if self.retrained is not None
                                 else self.train_size)}


QUESTION = Question("q2", Section, lambda params: runs(params) + q2_study.runs(params), result,
                    stages=(Stage("q2 retrained", ("q2", "q3"), second_stage),))
