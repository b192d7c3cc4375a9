"""The hyperparameter study: a random search planned up front, and fANOVA importances (Optuna).

"Which hyperparameters matter most?" is answered over a space, not over two levels per factor:
Optuna's ``RandomSampler`` draws ``trials`` configurations of learning rate (log scale), batch
size (log scale), optimizer, weight decay (log scale) and, for SGD, momentum. The draws depend
only on the seed, so the whole study is known before anything trains, and its runs go through
the store and the executor like every other run. Once their validation accuracies are in,
Optuna's functional-ANOVA evaluator (Hutter, Hoos and Leyton-Brown, 2014) says how much of their
variance each hyperparameter explains. Momentum exists in SGD trials only, so its importance is
computed among those.
"""

from __future__ import annotations

import optuna
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
PARAMETERS = tuple(SPACE)


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


def importances(settings: list[dict], values: list[float], seed: int = 0) -> dict:
    """fANOVA importance of each hyperparameter (summing to 1) for ``values`` of ``settings``;
    ``momentum`` is added from the SGD settings alone, as its share there."""
    result = _fanova(settings, values, seed, [n for n in SPACE])
    sgd = [(s, v) for s, v in zip(settings, values) if s["optimizer"] == "sgd"]
    if len(sgd) >= 4:
        within = _fanova([s for s, _ in sgd], [v for _, v in sgd], seed,
                         [n for n in ("lr", "batch_size", "weight_decay", "momentum")])
        result["momentum (within SGD)"] = within["momentum"]
    return result


def frame_importances(trials, column: str) -> dict:
    """``importances`` of a frame of trials (one row each: the drawn values, momentum NaN where
    not drawn) for its accuracy ``column``."""
    settings = []
    for r in trials.to_dict("records"):
        setting = {k: r[k] for k in PARAMETERS}
        setting["batch_size"] = int(setting["batch_size"])
        if r.get("momentum") is not None and r["momentum"] == r["momentum"]:  # drawn (not NaN)
            setting["momentum"] = r["momentum"]
        settings.append(setting)
    return importances(settings, list(trials[column]))


def _fanova(settings, values, seed, params) -> dict:
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params={k: s[k] for k in params},
                                                distributions=distributions({k: s[k] for k in params}), value=v)
                      for s, v in zip(settings, values)])
    found = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed),
                                                    params=params, normalize=True)
    return {name: float(found[name]) for name in params}
