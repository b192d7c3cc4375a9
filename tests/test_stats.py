"""Intervals over seeds and McNemar's test, on inputs whose right answers are known."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mnistkit import stats


def test_difference_matches_scipys_welch_interval():
    a, b = [0.991, 0.989, 0.993, 0.990], [0.985, 0.988, 0.982]
    d = stats.difference(a, b)
    ci = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.lo, d.hi) == (pytest.approx(ci.low), pytest.approx(ci.high))


@pytest.mark.parametrize("shift, expected", [(0.01, "better"), (0.0003, "level"), (-0.01, "worse")])
def test_the_verdict_follows_whether_the_gap_exceeds_the_noise(shift, expected):
    b = np.array([0.980, 0.982, 0.981])
    a = b + shift + np.array([0.0005, -0.0005, 0.0])
    assert stats.difference(a, b).verdict == expected


def test_one_run_on_a_side_borrows_the_other_sides_spread():
    d = stats.difference([0.990, 0.992, 0.991], [0.97])
    se = math.sqrt(1e-6 / 3 + 1e-6)
    half = scipy_stats.t.ppf(0.975, 2) * se
    assert (d.lo, d.hi) == (pytest.approx(0.021 - half), pytest.approx(0.021 + half)) and d.verdict == "better"
    one_each = stats.difference([0.99], [0.98])
    assert math.isnan(one_each.lo) and one_each.verdict == "level"


def test_mcnemar_counts_the_discordant_images_and_gives_the_exact_p_value():
    labels = np.zeros(100, dtype=int)
    a = labels.copy()
    b = labels.copy()
    b[:10] = 1  # b wrong on 10 images that a gets right
    b[10], a[11] = 1, 1  # b wrong on one more image; a wrong on one that b gets right
    result = stats.mcnemar(a, b, labels)
    assert (result.only_a, result.only_b) == (11, 1)
    assert result.p == pytest.approx(scipy_stats.binomtest(11, 12, 0.5).pvalue) and result.significant
    assert stats.mcnemar(labels, labels, labels).p == 1.0


def test_t_interval_needs_two_values():
    assert math.isnan(stats.t_interval(0.01, 1))
    assert math.isnan(stats.t_interval(float("nan"), 5))
    assert stats.t_interval(0.01, 5) == pytest.approx(scipy_stats.t.ppf(0.975, 4) * 0.01 / math.sqrt(5))


def test_wilson_formula():
    low, high = stats.wilson(np.array([0, 50, 100]), np.array([100, 100, 100]))
    assert low[0] == pytest.approx(0, abs=1e-12) and high[2] == pytest.approx(1)
    assert low[1] == pytest.approx(0.4038, abs=1e-4) and high[1] == pytest.approx(0.5962, abs=1e-4)
