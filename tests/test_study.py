"""The hyperparameter study: draws fixed by a seed, within the space; fANOVA finds what matters."""

import math

import numpy as np
import pandas as pd
import pytest

from mnistkit import study


def test_draws_are_fixed_by_the_seed_and_stay_in_the_space():
    settings = study.draw(48, seed=0)
    assert settings == study.draw(48, seed=0) and settings != study.draw(48, seed=1)
    assert len(settings) == 48 and {s["optimizer"] for s in settings} == {"adam", "sgd", "rmsprop"}
    for s in settings:
        assert 1e-4 <= s["lr"] <= 1e-1 and 32 <= s["batch_size"] <= 512 and 1e-6 <= s["weight_decay"] <= 1e-2
        assert ("momentum" in s) == (s["optimizer"] == "sgd")
    # Log scale: about as many learning rates below 3e-3 as above.
    below = sum(s["lr"] < math.sqrt(1e-4 * 1e-1) for s in settings)
    assert 14 <= below <= 34


def _values(settings, fn):
    rng = np.random.default_rng(0)
    return [fn(s) + rng.normal(0, 1e-4) for s in settings]


@pytest.mark.parametrize("name, fn", [
    ("lr", lambda s: -abs(math.log10(s["lr"]) + 2.5)),
    ("optimizer", lambda s: {"adam": 0.99, "rmsprop": 0.98, "sgd": 0.90}[s["optimizer"]]),
    ("batch_size", lambda s: -math.log2(s["batch_size"]) / 10),
])
def test_fanova_gives_the_one_parameter_that_matters_most_of_the_importance(name, fn):
    settings = study.draw(48, seed=0)
    found = study.importances(settings, _values(settings, fn))
    main = {k: v for k, v in found.items() if k in study.SPACE}
    assert sum(main.values()) == pytest.approx(1.0)
    assert max(main, key=main.get) == name and main[name] > 0.7


def test_momentum_importance_comes_from_the_sgd_trials():
    settings = study.draw(48, seed=0)
    found = study.importances(settings, _values(settings, lambda s: s.get("momentum", 0.9)))
    assert found["momentum (within SGD)"] > 0.7


def test_bootstrap_intervals_are_seeded_and_hold_the_point_estimate():
    settings = study.draw(24, 0)
    values = [0.99 - 0.1 * (math.log10(s["lr"]) + 2.5) ** 2 for s in settings]  # the learning rate alone matters
    a, b = (study.bootstrap(settings, values, resamples=10, seed=3) for _ in range(2))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 10 and list(a.columns[:4]) == list(study.PARAMETERS)
    lo, hi = study.interval(a, "lr")
    assert 0.5 < lo <= study.importances(settings, values)["lr"] <= hi <= 1 and study.separated(a, "lr", "batch_size") and not study.separated(a, "batch_size", "lr")


def test_main_effects_hold_all_of_an_additive_accuracy_and_less_of_an_interaction():
    settings = study.draw(48, 0)
    additive = [1.0 * (s["optimizer"] == "adam") for s in settings]
    crossed = [1.0 * ((s["optimizer"] == "adam") != (s["lr"] > 10**-2.5)) for s in settings]  # neither alone decides
    assert study.main_effects(settings, additive) == pytest.approx(1.0, abs=0.01)
    assert study.main_effects(settings, crossed) < 0.9


def test_choices_are_drawn_from_the_lists_distinct_and_the_same_for_the_same_seed():
    space = {"step": [3, 4, 5], "C": [0.1, 1.0]}
    drawn = study.draw_choices(space, 6, 0)
    assert drawn == study.draw_choices(space, 6, 0) != study.draw_choices(space, 6, 1)
    assert sorted((d["step"], d["C"]) for d in drawn) == [(s, c) for s in (3, 4, 5) for c in (0.1, 1.0)]
    assert study.draw_choices(space, 4, 0) == drawn[:4]  # more trials extend the draw, they do not change it
