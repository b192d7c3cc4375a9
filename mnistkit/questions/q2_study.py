"""Question 2, second part: which hyperparameters matter most, from a random-search study over
the whole space (``mnistkit.study``: Optuna's sampler plans it, its fANOVA evaluator answers)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .. import study
from ..errors import check_number
from ..params import Base as Params
from ..params import param
from ..store import Store
from .common import base, read, row
from .text import OPTIMIZER_NAMES, PARAMETER_NAMES, SELECTED_BY, pct, plural


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
                       selected_by=params.selected_by, main_share=study.main_effects(settings, values))


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
        parts = []
        for kind, how in (("diverged", f"their train loss rose above {study.BLOWN_UP:g}× a uniform guess's "
                                       f"{study.CHANCE_LOSS:.2f} or stopped being a number"),
                          ("stalled", "their train loss stayed near a uniform guess's")):
            group = self.failed[self.failed.kind == kind]
            if len(group):
                where = "; ".join(f"{OPTIMIZER_NAMES[o]} at learning rates {g.lr.min():.2g} to {g.lr.max():.2g}"
                                  if len(g) > 1 else f"{OPTIMIZER_NAMES[o]} at learning rate {g.lr.iloc[0]:.2g}"
                                  for o, g in group.groupby("optimizer", sort=False))
                parts.append(f"{len(group)} {kind} ({how}: {where})")
        return " and ".join(parts)

    def _share(self, name: str) -> str:
        lo, hi = self.ci95(name)
        return f"{pct(self.importance[name], 0)} [{pct(lo, 0)}, {pct(hi, 0)}]"

    @cached_property
    def first(self) -> dict:
        """For each searched hyperparameter, the share of bootstrap resamples in which it is the most important."""
        return study.first_probability(self.resampled)

    def _firsts(self) -> str:
        ranked = sorted((n for n in study.PARAMETERS if self.first[n] > 0), key=lambda n: -self.first[n])
        return ", ".join(f"{PARAMETER_NAMES[n]} in {pct(self.first[n], 0)}" for n in ranked)

    def answer(self) -> str:
        """Which hyperparameters matter most in the search, saying only what the resamples support."""
        lead = [PARAMETER_NAMES[n] for n in self.leaders]
        trials = f"a random search of {plural(len(self.trials), 'trial')}"
        if len(lead) == len(study.PARAMETERS):
            return (f"In {trials}, no hyperparameter stands out: the bootstrap resamples separate none of them "
                    f"(the most important: {self._firsts()} of the resamples).")
        first, rest = lead[0], lead[1:]
        tied = (f"; the resamples do not separate the {' or the '.join(rest)} from it" if rest else "")
        return (f"{first[:1].upper()}{first[1:]} matters most in {trials}: the most important hyperparameter is "
                f"{self._firsts()} of its bootstrap resamples{tied}.")

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
        t = self.trials
        counts = t.optimizer.value_counts()
        return f"""A random search (Optuna's random sampler, seeded) draws
{len(t)} configurations over the whole space: learning rate 1e-4 to 1e-1 and weight decay 1e-6 to 1e-2
(log scales), batch size 32 to 512 (log scale), the optimizer
({', '.join(f'{OPTIMIZER_NAMES[o]} {n}' for o, n in counts.items())} draws)
and, for SGD, momentum 0.5 to 0.99. Each is one LeNet run of {plural(self.epochs, 'epoch')}. Functional
ANOVA (Hutter, Hoos and Leyton-Brown, 2014; Optuna's evaluator) fits a random forest to the
{self.decider} accuracies and splits their variance into the share each hyperparameter explains
on its own: its main effect. The shares are those main effects normalized to sum to 100%; the
interactions between hyperparameters are left out of them{self._main_words()}. Momentum's share is computed among
the SGD trials."""

    def _main_words(self) -> str:
        if math.isnan(self.main_share):
            return ""
        return (f" (the main effects together explain {pct(self.main_share, 0)} of the variance the forest "
                f"predicts; the rest is interactions)")

    def alt_curves(self) -> str:
        t = self.trials
        best = t.loc[t[self.selected_by].idxmax()]
        return (f"Scatter plots of {self.decider} accuracy against learning rate on a log axis, one panel per "
                f"optimizer, "
                f"points coloured by batch size; {len(t)} trials from {pct(t[self.selected_by].min(), 1)} to "
                f"{pct(t[self.selected_by].max(), 1)} (best: {best.optimizer} lr {best.lr:.2g}, batch "
                f"{int(best.batch_size)}).")

    def alt_importance(self) -> str:
        return ("Bar chart of fANOVA importance, largest first, with 95% bootstrap intervals: "
                + "; ".join(f"{PARAMETER_NAMES[k]} {self._share(k)}"
                            for k in sorted(self.importance, key=lambda k: -self.importance[k]))
                + ".")

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
        imp = self.importance
        shares = ", ".join(f"{PARAMETER_NAMES[n]} {self._share(n)}" for n in self.ranked_parameters)
        lines = "\n".join(f"- **{OPTIMIZER_NAMES[r.optimizer]}** ({plural(r.trials, 'trial')}): best at lr "
                          f"{r.best_lr:.2g} "
                          f"({pct(r.best)}), worst {pct(r.worst)}" for r in self.best_lr().itertuples())
        within = imp.get(study.WITHIN_SGD)
        momentum = "" if within is None else (f" Among the SGD trials alone, momentum's share is "
                                              f"{self._share(study.WITHIN_SGD)}.")
        calm = self.importance_without_failed
        diverged = "" if calm is None else (
            f"\n\n{plural(len(self.failed), 'trial')} failed to learn (below {pct(study.FAILED, 0)}, chance is 10%): "
            f"{self._failures()}. The gap between them and the rest is part of the variance above. Without "
            f"them (both kinds) the shares are "
            + ", ".join(f"{PARAMETER_NAMES[n]} {pct(calm[n], 0)}"
                        for n in sorted(study.PARAMETERS, key=lambda k: -calm[k]))
            + ": what separates good runs from each other, rather than from the failed ones.")
        return f"""Main-effect shares with their 95% intervals over {len(self.resampled)} bootstrap resamples of the
trials: {shares}. Ranked in each resample, the most important is {self._firsts()} of them.{momentum}{diverged}

Per optimizer:

{lines}

The curves show why a single share hides an interaction: each optimizer has its own good range
of learning rates. Adaptive optimizers (Adam, RMSprop) rescale each parameter's step, so their
good range sits lower; momentum SGD moves as far as the raw gradient times the learning rate and
needs a larger one. With a fixed number of epochs a larger batch means fewer updates, so batch
size and learning rate act together through the size and number of steps."""

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
