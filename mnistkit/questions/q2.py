"""Question 2, first part: LeNet under the parameter file's hyperparameter settings, each over the
seeds; the best chosen on validation (or, under the assignment's protocol, on test) accuracy, and
retrained on all the training images in the plan's second stage. The random-search study is
``q2_study``."""

from __future__ import annotations

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
from .text import (NA, OPTIMIZER_NAMES, PARAMETER_NAMES, SELECTED_BY, captioned, interval, mean_std_column,
                   pct, plural, pm, question, reported, reported_setting, setting_label, training_set)

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
                  reported=reported("q2", params.dataset))
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
        """The setting with the lowest mean test accuracy and every setting level with it (its
        interval over seeds includes zero), lowest first: one row each of ``settings``."""
        table = self.settings.sort_values("mean", kind="stable")
        low = table.iloc[0]
        return [r for _, r in table.iterrows() if r.setting == low.setting or stats.difference(
            self._accs(r.setting, "test_acc"), self._accs(low.setting, "test_acc")).verdict == "level"]

    @property
    def scored(self) -> pd.Series:
        """The best setting's test accuracies, one per seed, as the report scores it: those of its runs
        retrained on the whole training set where there are any, else those of its runs."""
        if self.retrained is not None:
            return self.retrained.test_acc
        return self.runs.loc[self.runs.setting == self.best.setting, "test_acc"]

    def _accs(self, setting, column: str) -> list:
        return list(self.runs.loc[self.runs.setting == setting, column])

    def margin(self, column: str | None = None) -> stats.Difference:
        """The best setting minus the second best over seeds, in ``column`` (default: the deciding one)."""
        column = column or self.selected_by
        return stats.difference(self._accs(self.best.setting, column), self._accs(self.second.setting, column))

    def protocol(self) -> str:
        if self.decider == "validation":
            rule = (f"The best setting is chosen by its mean accuracy on the {self.validation:,}-image validation "
                    f"split "
                    "(held out of every run's training images; the same for every run).")
            if self.retrained is not None:
                n = int(self.retrained.train_images.iloc[0])
                where = (f"all {n:,} training images, validation images included" if n == data.TRAIN_SIZE else
                         f"{n:,} images drawn afresh from all {data.TRAIN_SIZE:,}, validation images among them (the "
                         "stand-in for all of them)")
                rule += (f" It is then retrained on {where}, over the same seeds, and "
                         "the test images score those runs once; the table's test column is of the runs that chose "
                         "it, for comparison.")
            else:
                rule += (f" The selected setting is not retrained on all {data.TRAIN_SIZE:,} images: the runs "
                         "trained on the training part are the ones scored.")
        else:
            rule = ("Under the assignment's protocol the best setting is chosen by test accuracy, the number it then "
                    "reports.")
        return f"""LeNet trained with {len(self.settings)} settings of batch size, learning rate, optimizer,
momentum, weight decay and schedule ({plural(self.epochs, 'epoch')} each, on
{training_set(self.train_subset) if self.train_subset else f'{self.train_size:,}'} images),
every setting over seeds {self.seeds} (lr: learning rate, bs: batch size, m: momentum, wd: weight decay).
The settings with a reported accuracy are the assignment's; the others are this report's own
candidates, written into the parameter file with its first version, before any run.
Dots show the mean final test accuracy with its 95% interval over seeds, crosses the single-run
accuracy the assignment reported for its settings. {rule}"""

    title = "2. Hyperparameters"

    def answer(self) -> str:
        """The chosen setting; with its study, what matters most by both experiments first."""
        scored = pm(self.scored.mean(), self.scored.std())
        where = "retrained with the validation images, " if self.retrained is not None else ""
        verdict = {"better": "ahead of the second best by an interval above zero",
                   "level": "level with the second best within the seed noise",
                   "worse": "below the second best"}[self.margin().verdict]
        theirs = f"; the assignment's best: {pct(self.reported)} from one run" if self.reported else ""
        chosen = (f"Of {len(self.settings)} settings, {self.decider} accuracy chooses {self.best.label} "
                  f"({verdict}): {scored} on the test set ({where}mean ± std over {len(self.seeds)} seeds{theirs}).")
        if self.study is None:
            return chosen
        return f"{self.study.answer()} {self._grid_answer(self.study)} {chosen}"

    def _grid_answer(self, study) -> str:
        """What the settings' single changes add to the search's answer, and where the two disagree."""
        changes = self.single_changes()
        if changes.empty:
            return "No two of the settings differ in one hyperparameter only."
        top = changes.loc[changes["diff"].abs().idxmax()]
        name = PARAMETER_NAMES[top.hyperparameter]
        agrees = top.hyperparameter in study.leaders
        missing = [PARAMETER_NAMES[h] for h in study.leaders if h not in set(changes.hyperparameter)]
        return (f"Among the settings, the largest change that one hyperparameter makes alone is the {name}'s "
                f"({top.change}: {interval(top.difference)}"
                f"{', an interval that includes zero' if top.difference.verdict == 'level' else ''})"
                f"{', as the search ranks it' if agrees else ''}"
                + (f"; no two settings differ in the {' or '.join(missing)} alone" if missing else "") + ".")

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
            d = stats.difference(self._accs(b, self.selected_by), self._accs(a, self.selected_by))
            rows.append({"hyperparameter": h, "first": int(a), "second": int(b), "difference": d, "diff": d.diff,
                         "change": f"{_value(h, values.at[a, h])} to {_value(h, values.at[b, h])}, settings {a} "
                                   f"to {b}"})
        return pd.DataFrame(rows, columns=["hyperparameter", "first", "second", "change", "difference", "diff"])

    def _single_changes_text(self) -> str:
        changes = self.single_changes()
        if changes.empty:
            return ""
        words = {"better": "a gain", "worse": "a loss", "level": "no detectable effect"}
        lines = "\n".join(f"- **{PARAMETER_NAMES[r.hyperparameter]}**, {r.change}: {interval(r.difference)} on "
                          f"{self.decider} accuracy, {words[r.difference.verdict]}" for r in changes.itertuples())
        cosine = ""
        if "schedule" in set(changes.hyperparameter):
            warm = self.runs.loc[self.runs.schedule == "cosine", "warmup_epochs"].max()
            warm_up = (f"after a linear warm-up of {warm:g} epoch{'' if warm == 1 else 's'}" if warm
                       else "with no warm-up")
            cosine = ("; the cosine schedule multiplies the learning rate, at every step, by a cosine that falls from "
                      f"1 to 0 over the run's steps, {warm_up}")
        return (f"**One change at a time.** These pairs of settings differ in one hyperparameter only, so each "
                f"difference is that hyperparameter's effect there (the second setting minus the first, over "
                f"{len(self.seeds)} seeds){cosine}:\n\n{lines}\n\n")

    def alt_settings(self) -> str:
        s = self.settings
        shown = (f"mean validation accuracy (which chooses), from {pct(s['val_mean'].min())} to "
                 f"{pct(s['val_mean'].max())}, and test accuracy beside it" if self.decider == "validation"
                 else "mean test accuracy")
        return (f"Dot plot of {shown} for {len(s)} settings, with 95% intervals over seeds; test accuracy from "
                f"{pct(s['mean'].min())} to {pct(s['mean'].max())}; the setting chosen on {self.decider} accuracy, "
                f"marked, is {self.best.label}; crosses mark the assignment's single runs.")

    def table(self) -> pd.DataFrame:
        s = self.settings
        columns = {"#": s.setting.astype(int), "setting": s.label}
        if self.decider == "validation":
            columns["validation accuracy, mean ± std"] = [pm(m, d) for m, d in zip(s.val_mean, s.val_std)]
        columns.update({
            "test accuracy, mean ± std": mean_std_column(s),
            "the assignment (1 run)": s.reported.map(lambda v: NA if pd.isna(v) else pct(v)),
            "seconds per run": s.seconds.map("{:,.1f}".format),
        })
        return captioned(pd.DataFrame(columns), f"The {len(s)} settings over {len(self.seeds)} seeds, the chosen "
                         f"one (by {self.decider} accuracy) first; the assignment's accuracy where it ran the same.")

    def analysis(self) -> str:
        best, second, margin = self.best, self.second, self.margin()
        test_margin = self.margin("test_acc")
        deciding = "val_mean" if self.decider == "validation" else "mean"
        clear = {"better": "a clear margin: the interval lies above zero",
                 "level": "not a clear margin: the interval includes zero, so the two are level within the seed noise",
                 "worse": "an interval below zero"}[margin.verdict]
        scored = pm(self.scored.mean(), self.scored.std())
        retraining = ""
        if self.retrained is not None:
            n = int(self.retrained.train_images.iloc[0])
            where = f"all {n:,} images" if n == data.TRAIN_SIZE else f"{n:,} images drawn from all {data.TRAIN_SIZE:,}"
            shown = (f"validation {pct(best['val_mean'])}; retrained on {where}, test **{scored}**; the runs that "
                     f"chose it scored {pct(best['mean'])}")
            more = stats.difference(list(self.scored), self._accs(best.setting, "test_acc"))
            gained = {"better": "gained, by an interval above zero", "worse": "lost, by an interval below zero",
                      "level": "changed by less than the seed noise (the interval includes zero)"}[more.verdict]
            more_images = (f"all {n:,} images ({n - self.train_size:,} more)" if n > self.train_size
                           else f"{n:,} images drawn afresh")
            retraining = (f"\n\nRetraining on {more_images} {gained}: "
                          f"{interval(more)} on the test set. These retrained runs are question 2's best CNN, "
                          "which question 3 compares with the baseline.")
        elif self.decider == "validation":
            shown = f"validation {pct(best['val_mean'])}, test **{scored}**"
        else:
            shown = f"test **{scored}**"
        tied = [r for _, r in self.ranked.iloc[1:].iterrows() if r[deciding] == second[deciding]]
        second_words = (f"the second best ({second.label}, {pct(second[deciding])} on {self.decider})" if len(tied) == 1
                        else f"the {len(tied)} settings tied for second place on {self.decider} accuracy ("
                             + " and ".join(f"{int(r.setting)}, {r.label}" for r in tied)
                             + f", {pct(second[deciding])} each; the first listed stands for them)")
        return f"""Chosen by **{self.decider}** accuracy, the best setting is **{best.label}** ({shown}).
Against {second_words} it leads by {interval(margin)}
on {self.decider} accuracy over {len(self.seeds)} seeds, {clear}; on the test images the same two differ by
{interval(test_margin)}.
{self._bottom()}{self._theirs()}{retraining}

{self._single_changes_text()}"""

    def _theirs(self) -> str:
        """The assignment's best setting and accuracy, where it studied the same dataset."""
        if not self.reported:
            return ""
        theirs = self.settings[self.settings.reported == self.reported]
        label = f" of {theirs.label.iloc[0]}" if len(theirs) else ""
        return f" The assignment's best was\n{pct(self.reported)} from one run{label}, chosen on the test set."

    def _bottom(self) -> str:
        low = self.lowest
        if len(low) == 1:
            return (f"The lowest is {low[0].label} at {pct(low[0]['mean'])} on the test set, below every other "
                    "setting by more than its interval.")
        return (f"At the bottom, {len(low)} settings are level (each one's difference to the lowest has an interval "
                "that includes zero): " + ", ".join(f"{r.label} {pct(r['mean'])}" for r in low) + " on the test set.")

    def headlines(self) -> list[tuple]:
        retrained = "retrained with the validation images, " if self.retrained is not None else ""
        return [(f"2. best of {len(self.settings)} settings, chosen on {self.decider}: {self.best.label} "
                 f"({retrained}mean of {len(self.seeds)} seeds)", pct(self.scored.mean()),
                 pct(self.reported) if self.reported else "")]

    def summary(self) -> dict:
        best = self.best
        study = self.study.summary() if self.study is not None else {}
        return {**study, "best_setting": best.label, "selected_by": self.decider,
                "best_val_acc_mean": float(best["val_mean"]) if self.decider == "validation" else None,
                "best_test_acc_mean": float(self.scored.mean()), "best_test_acc_std": float(self.scored.std()),
                "best_retrained": self.retrained is not None, "seeds": len(self.seeds),
                "best_minus_second": self.margin().diff, "best_minus_second_ci95": self.margin().ci95,
                "train_images": (int(self.retrained.train_images.iloc[0]) if self.retrained is not None
                                 else self.train_size)}


QUESTION = Question("q2", 2, question("q2"), Section, lambda params: runs(params) + q2_study.runs(params), result,
                    stages=(Stage("q2 retrained", ("q2", "q3"), second_stage),))
