"""Question 2, second part: which hyperparameters matter most, from a random-search study over
the whole space (``mnistkit.study``: Optuna's sampler plans it, its fANOVA evaluator answers)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .. import data, study
from ..errors import check_number
from ..params import Base as Params
from ..params import param
from ..store import Store
from .common import base, read, row
from .text import OPTIMIZER_NAMES, PARAMETER_NAMES, SELECTED_BY, pct, say


@dataclass(frozen=True)
class Study:
    """A random search (Optuna's RandomSampler) over learning rate, batch size, optimizer, weight
    decay and SGD's momentum (``mnistkit.study.SPACE``), one run per drawn configuration."""

    trials: int = param(8, "configurations drawn (fANOVA needs a few dozen for a stable answer)")
    epochs: int = param(1, "training epochs of every trial")
    seed: int = param(0, "the sampler's seed and every trial run's seed")
    resamples: int = param(20, "bootstrap resamples of the trials behind the importances' 95% intervals")

    def __post_init__(self):
        check_number("trials", self.trials, 4, integer=True)
        check_number("epochs", self.epochs, 1, integer=True)
        check_number("seed", self.seed, 0, integer=True)
        check_number("resamples", self.resamples, 10, 10_000, integer=True)


def trials(params: Params):
    """``(drawn setting, config)`` for every trial of the random search (``study.draw``)."""
    q = params.q2.study
    for i, setting in enumerate(study.draw(q.trials, q.seed)):
        yield setting, base(params, f"q2.study (trial {i})", epochs=q.epochs, seed=q.seed, **setting)


def runs(params: Params) -> list:
    """The study's runs: one per drawn setting."""
    return [c for _, c in trials(params)]


def result(params: Params, store: Store) -> "StudyResult":
    """The study's trials from the store, and their fANOVA importances."""
    items = list(trials(params))
    frame = pd.DataFrame([{**row(run), "momentum": setting.get("momentum", math.nan),
                           "peak_loss": run.history.train_loss.fillna(math.inf).max()}
                          for (setting, _), run in zip(items, read(store, [c for _, c in items], "q2"))])
    q = params.q2.study
    settings, values = study.settings_of(frame), list(frame[params.selected_by])
    return StudyResult(trials=frame, importance=study.frame_importances(frame, params.selected_by),
                       resampled=study.bootstrap(settings, values, q.resamples, q.seed), epochs=q.epochs,
                       selected_by=params.selected_by, main_share=study.main_effects(settings, values),
                       classes=len(data.dataset(params.dataset).classes))


@dataclass
class StudyResult:
    """The random search's trials and each hyperparameter's fANOVA importance: its main effect's share of the
    accuracy's variance, normalized over the hyperparameters."""

    trials: pd.DataFrame  # per trial: optimizer, lr, batch_size, weight_decay, momentum (NaN), test_acc, val_acc,
    # peak_loss (the largest epoch's mean train loss, inf where one was not a number)
    importance: dict  # study.importances: each searched hyperparameter's share, then momentum's within SGD
    resampled: pd.DataFrame  # study.bootstrap: the importances of each bootstrap resample of the trials
    epochs: int
    selected_by: str = "val_acc"
    main_share: float = math.nan  # the variance share the main effects explain together (study.main_effects)
    classes: int = 10  # the dataset's classes: chance accuracy is one over this

    title = "Which hyperparameters matter most"

    def ci95(self, name: str) -> list[float]:
        return study.interval(self.resampled, name)

    @property
    def intervals(self) -> dict:
        """The 95% bootstrap interval of every importance, momentum's within SGD included where computed."""
        return {k: self.ci95(k) for k in self.importance}

    @property
    def leaders(self) -> list:
        """The most important hyperparameter and those the resamples do not separate from it."""
        first, *rest = self.ranked_parameters
        return [first] + [n for n in rest if not study.separated(self.resampled, first, n)]

    @property
    def failed(self) -> pd.DataFrame:
        """The trials that failed to learn (accuracy below ``study.FAILED``), each with how ("kind":
        diverged or stalled, ``study.failure``)."""
        t = self.trials
        kinds = [study.failure(a, p) for a, p in zip(t[self.selected_by], t.peak_loss)]
        return t.assign(kind=kinds)[[k is not None for k in kinds]]

    @property
    def failed_trials(self) -> dict:
        kinds = self.failed.kind.value_counts()
        return {kind: int(kinds.get(kind, 0)) for kind in ("diverged", "stalled")}

    @cached_property
    def importance_without_failed(self) -> dict | None:
        """The importances of the trials that learned; None where none failed or under 8 are left."""
        kept = self.trials[self.trials[self.selected_by] >= study.FAILED]
        if len(self.failed) == 0 or len(kept) < 8:
            return None
        return study.frame_importances(kept, self.selected_by)

    def _failures(self) -> str:
        """The failed trials by kind, with their optimizers and learning rates."""
        kinds = []
        for kind in ("diverged", "stalled"):
            group = self.failed[self.failed.kind == kind]
            if len(group):
                kinds.append((kind, len(group), [(OPTIMIZER_NAMES[o], len(g), g.lr.min(), g.lr.max())
                                                 for o, g in group.groupby("optimizer", sort=False)]))
        return say("q2_study", "failures", kinds=kinds, blown_up=study.BLOWN_UP, chance_loss=study.CHANCE_LOSS)

    def _share(self, name: str) -> str:
        lo, hi = self.ci95(name)
        return f"{pct(self.importance[name], 0)} [{pct(lo, 0)}, {pct(hi, 0)}]"

    @cached_property
    def first(self) -> dict:
        """For each searched hyperparameter, the share of bootstrap resamples in which it is the most important."""
        return study.first_probability(self.resampled)

    def _firsts(self) -> str:
        ranked = sorted((n for n in study.PARAMETERS if self.first[n] > 0), key=lambda n: -self.first[n])
        return say("q2_study", "firsts", firsts=[(PARAMETER_NAMES[n], self.first[n]) for n in ranked])

    def answer(self) -> str:
        """Which hyperparameters matter most in the search, saying only what the resamples support."""
        lead = [PARAMETER_NAMES[n] for n in self.leaders]
        calm = self.importance_without_failed
        top = None if calm is None else sorted(study.PARAMETERS, key=lambda k: -calm[k])[:2]
        return say("q2_study", "answer", trials=len(self.trials), lead=lead,
                   every=len(lead) == len(study.PARAMETERS), firsts=self._firsts(), share=self._share(self.leaders[0]),
                   calm=None if top is None else [(PARAMETER_NAMES[n], calm[n]) for n in top],
                   first=self.first[self.leaders[0]])

    def conclusion(self) -> str:
        lead = [PARAMETER_NAMES[n] for n in self.leaders]
        return say("q2_study", "conclusion", lead=lead, every=len(lead) == len(study.PARAMETERS))

    @property
    def decider(self) -> str:
        return SELECTED_BY[self.selected_by]

    @property
    def accuracy_label(self) -> str:
        return f"{self.decider} accuracy (%)"

    @property
    def ranked_parameters(self) -> list:
        """The searched hyperparameters, most important first."""
        return sorted(study.PARAMETERS, key=lambda k: -self.importance[k])

    def protocol(self) -> str:
        counts = list(self.trials.optimizer.value_counts().items())
        return say("q2_study", "protocol", r=self, counts=counts, main_words=self._main_words())

    def _main_words(self) -> str:
        return say("q2_study", "main_words", share=None if math.isnan(self.main_share) else self.main_share)

    def caption_curves(self) -> str:
        return say("q2_study", "caption_curves")

    def caption_importance(self) -> str:
        return say("q2_study", "caption_importance")

    def alt_curves(self) -> str:
        accuracy = self.trials[self.selected_by]
        return say("q2_study", "alt_curves", r=self, best=self.trials.loc[accuracy.idxmax()], low=accuracy.min(),
                   high=accuracy.max())

    def alt_importance(self) -> str:
        return say("q2_study", "alt_importance", shares=[(PARAMETER_NAMES[k], self._share(k)) for k in
                                                         sorted(self.importance, key=lambda k: -self.importance[k])])

    def best_lr(self) -> pd.DataFrame:
        """Per optimizer: trials, the best trial's learning rate and accuracy, and the accuracy range."""
        t, col = self.trials, self.selected_by
        rows = []
        for opt, group in t.groupby("optimizer", sort=False):
            top = group.loc[group[col].idxmax()]
            rows.append({"optimizer": opt, "trials": len(group), "best_lr": float(top.lr), "best": float(top[col]),
                         "worst": float(group[col].min())})
        return pd.DataFrame(rows)

    def analysis(self) -> str:
        calm = self.importance_without_failed
        within = self.importance.get(study.WITHIN_SGD)
        return say("q2_study", "analysis", resamples=len(self.resampled), firsts=self._firsts(),
                   shares=[(PARAMETER_NAMES[n], self._share(n)) for n in self.ranked_parameters],
                   momentum=None if within is None else self._share(study.WITHIN_SGD),
                   failed=len(self.failed), below=study.FAILED, failures=None if calm is None else self._failures(),
                   calm=None if calm is None else [(PARAMETER_NAMES[n], calm[n]) for n in
                                                   sorted(study.PARAMETERS, key=lambda k: -calm[k])],
                   optimizers=self.best_lr().to_dict("records"), chance=1 / self.classes)

    def summary(self) -> dict:
        calm = self.importance_without_failed
        return {"trials": len(self.trials),
                "importance": {k: float(self.importance[k]) for k in study.PARAMETERS},
                "momentum_importance_within_sgd": self.importance.get(study.WITHIN_SGD),
                "importance_ci95": self.intervals, "importance_resamples": len(self.resampled),
                "importance_leaders": self.leaders, "importance_first_probability": self.first,
                "main_effects_share": None if math.isnan(self.main_share) else self.main_share,
                "failed_trials": self.failed_trials,
                "importance_without_failed": None if calm is None else {k: float(calm[k]) for k in study.PARAMETERS}}
