"""The hyperparameter study: a random search planned up front, and fANOVA importances (Optuna).

"Which hyperparameters matter most?" is answered over a space, not over two levels per factor:
Optuna's ``RandomSampler`` draws ``trials`` configurations of learning rate (log scale), batch
size (log scale), optimizer, weight decay (log scale) and, for SGD, momentum. The draws depend
only on the seed, so the whole study is known before anything trains, and its runs go through
the store and the executor like every other run. Once their validation accuracies are in,
Optuna's functional-ANOVA evaluator (Hutter, Hoos and Leyton-Brown, 2014) says how much of their
variance each hyperparameter's main effect explains, normalized to sum to 1 (``main_effects``: what
they explain together, the rest being interactions). Momentum exists in SGD trials only, so its importance is
computed among those.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import FanovaImportanceEvaluator

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": IntDistribution(32, 512, log=True),
    "optimizer": CategoricalDistribution(["adam", "sgd", "rmsprop"]),
    "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
}
MOMENTUM = FloatDistribution(0.5, 0.99)  # SGD only
WITHIN_SGD = "momentum (within SGD)"  # importances' key for momentum's share among the SGD trials
FAILED = 0.2  # a trial whose accuracy is below this failed to learn (chance is 10%)
CHANCE_LOSS = math.log(10)  # the cross-entropy of a uniform guess over the 10 classes
BLOWN_UP = 1.5  # a failed trial whose train loss ever exceeded this many times CHANCE_LOSS diverged
PARAMETERS = tuple(SPACE)


def failure(accuracy: float, peak_loss: float) -> str | None:
    """How a trial failed, from its accuracy and the largest of its epochs' mean train losses (inf where
    one was not a number): None where it learned (accuracy at least ``FAILED``); "diverged" where its loss
    rose well above a uniform guess's (``BLOWN_UP`` x ``CHANCE_LOSS``) or stopped being a number, the mark
    of steps that blew up; "stalled" where it stayed near a uniform guess's, steps too small to learn in
    the budget."""
    if accuracy >= FAILED:
        return None
    return "diverged" if not math.isfinite(peak_loss) or peak_loss > BLOWN_UP * CHANCE_LOSS else "stalled"


def distributions(params: dict) -> dict:
    """The distributions of the parameters ``params`` has (momentum only where it was drawn)."""
    return {name: SPACE.get(name, MOMENTUM) for name in params}


def draw(trials: int, seed: int) -> list[dict]:
    """``trials`` hyperparameter settings drawn at random by Optuna's sampler with ``seed``."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    settings = []
    for _ in range(trials):
        trial = study.ask(SPACE)
        if trial.params["optimizer"] == "sgd":
            trial.suggest_float("momentum", MOMENTUM.low, MOMENTUM.high)
        settings.append(dict(trial.params))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # nothing is trained here
    return settings


def draw_choices(space: dict[str, list], trials: int, seed: int) -> list[dict]:
    """``trials`` distinct settings, each one of the listed choices of every name of ``space``, drawn at
    random by Optuna's sampler with ``seed`` (a setting drawn again is passed over; ``trials`` must not
    exceed the settings ``space`` holds, which ``params.BovwSearch`` checks)."""
    choices = {name: CategoricalDistribution(values) for name, values in space.items()}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    settings = []
    while len(settings) < trials:
        trial = study.ask(choices)
        if trial.params not in settings:
            settings.append(dict(trial.params))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # nothing is trained here
    return settings


def importances(settings: list[dict], values: list[float], seed: int = 0) -> dict:
    """fANOVA importance of each hyperparameter (summing to 1) for ``values`` of ``settings``;
    ``momentum`` is added from the SGD settings alone, as its share there."""
    result = _fanova(settings, values, seed, [n for n in SPACE])
    sgd = [(s, v) for s, v in zip(settings, values) if s["optimizer"] == "sgd"]
    if len(sgd) >= 4:
        within = _fanova([s for s, _ in sgd], [v for _, v in sgd], seed,
                         [n for n in ("lr", "batch_size", "weight_decay", "momentum")])
        result[WITHIN_SGD] = within["momentum"]
    return result


def bootstrap(settings: list[dict], values: list[float], resamples: int, seed: int = 0) -> pd.DataFrame:
    """``importances`` of ``resamples`` bootstrap resamples of the trials (drawn with replacement,
    generator seeded with ``seed``), one row each; momentum NaN where a resample has under 4 SGD trials."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(resamples):
        chosen = rng.integers(0, len(settings), len(settings))
        rows.append(importances([settings[i] for i in chosen], [values[i] for i in chosen], seed))
    return pd.DataFrame(rows, columns=[*PARAMETERS, WITHIN_SGD])


def interval(resampled: pd.DataFrame, name: str) -> list[float]:
    """The 95% percentile interval of ``name``'s importance over the resamples."""
    lo, hi = np.nanpercentile(resampled[name].astype(float), [2.5, 97.5])
    return [float(lo), float(hi)]


def separated(resampled: pd.DataFrame, a: str, b: str) -> bool:
    """Whether ``a`` explains more than ``b`` in at least 97.5% of the resamples: the 95% interval of
    their difference lies above zero."""
    return bool(np.nanpercentile(resampled[a] - resampled[b], 2.5) > 0)


def settings_of(trials: pd.DataFrame) -> list[dict]:
    """The drawn setting of each row of a frame of trials (momentum NaN where not drawn)."""
    settings = []
    for r in trials.to_dict("records"):
        setting = {k: r[k] for k in PARAMETERS}
        setting["batch_size"] = int(setting["batch_size"])
        if r.get("momentum") is not None and r["momentum"] == r["momentum"]:  # drawn (not NaN)
            setting["momentum"] = r["momentum"]
        settings.append(setting)
    return settings


def frame_importances(trials: pd.DataFrame, column: str) -> dict:
    """``importances`` of a frame of trials for its accuracy ``column``."""
    return importances(settings_of(trials), list(trials[column]))


def main_effects(settings: list[dict], values: list[float], seed: int = 0) -> float:
    """The share of the variance of ``values`` that fANOVA's main effects explain together, before
    ``importances`` normalizes them to sum to 1; the rest is the interactions (and what the forest misses)."""
    return float(sum(_fanova(settings, values, seed, list(SPACE), normalize=False).values()))


def first_probability(resampled: pd.DataFrame) -> dict:
    """For each searched hyperparameter, the share of bootstrap resamples in which it is the most important."""
    firsts = resampled[list(PARAMETERS)].astype(float).idxmax(axis=1).value_counts()
    return {name: float(firsts.get(name, 0)) / len(resampled) for name in PARAMETERS}


def _fanova(settings, values, seed, params, normalize: bool = True) -> dict:
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params={k: s[k] for k in params},
                                                distributions=distributions({k: s[k] for k in params}), value=v)
                      for s, v in zip(settings, values)])
    with warnings.catch_warnings():  # normalize=False is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        found = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed),
                                                        params=params, normalize=normalize)
    return {name: float(found[name]) for name in params}
