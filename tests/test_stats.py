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


@pytest.mark.parametrize("shift, margin, expected", [
    (0.01, 0.002, "ahead"), (-0.01, 0.002, "behind"), (0.0003, 0.01, "equivalent"), (0.0003, 0.001, "undecided"),
    (0.0003, math.nan, "undecided")])
def test_the_verdict_is_one_of_four_words(shift, margin, expected):
    b = np.array([0.980, 0.982, 0.981])
    a = b + shift + np.array([0.0005, -0.0005, 0.0])
    assert stats.difference(a, b, margin=margin).verdict == expected


A, B = [0.9912, 0.9907, 0.9921], [0.9905, 0.9918, 0.9899]  # an interval around zero


def test_equivalence_holds_exactly_where_the_interval_lies_inside_the_margin():
    d = stats.difference(A, B)
    edge = max(-d.lo, d.hi)  # the margin at which the interval just fits
    assert d.lo < 0 < d.hi
    assert stats.difference(A, B, margin=edge * (1 + 1e-6)).verdict == "equivalent"
    assert stats.difference(A, B, margin=edge * (1 - 1e-6)).verdict == "undecided"
    assert stats.difference(A, B, margin=edge).tost_p == pytest.approx(0.025)


def test_tost_p_is_scipys_two_one_sided_welch_tests():
    margin = 0.003
    d = stats.difference(A, B, margin=margin)
    a, b = np.array(A), np.array(B)
    above = scipy_stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater").pvalue
    below = scipy_stats.ttest_ind(a - margin, b, equal_var=False, alternative="less").pvalue
    assert d.tost_p == pytest.approx(max(above, below))


def test_a_detected_difference_inside_the_margin_stays_a_difference_and_says_so():
    b = np.array([0.980, 0.982, 0.981])
    a = b + 0.01 + np.array([0.0005, -0.0005, 0.0])
    small, large = stats.difference(a, b, margin=0.05), stats.difference(a, b, margin=0.005)
    assert small.verdict == large.verdict == "ahead"
    assert small.negligible and not large.negligible


def test_the_verdict_turns_at_zero_on_either_side():
    d = stats.difference(A, B, margin=0.0001)
    just_above = stats.difference(np.array(A) - d.lo + 1e-9, B)  # the interval's low end moved just above zero
    just_below = stats.difference(np.array(A) - d.lo - 1e-9, B)
    assert just_above.verdict == "ahead" and just_below.verdict == "undecided"
    assert stats.difference(np.array(A) - d.hi - 1e-9, B).verdict == "behind"


def test_one_run_on_a_side_borrows_the_other_sides_spread():
    d = stats.difference([0.990, 0.992, 0.991], [0.97])
    se = math.sqrt(1e-6 / 3 + 1e-6)
    half = scipy_stats.t.ppf(0.975, 2) * se
    assert (d.lo, d.hi) == (pytest.approx(0.021 - half), pytest.approx(0.021 + half)) and d.verdict == "ahead"
    one_each = stats.difference([0.99], [0.98], margin=0.5)
    assert math.isnan(one_each.lo) and one_each.verdict == "undecided"  # a 1-point gap, but no interval


def test_a_change_between_studies_combines_both_standard_errors():
    here = stats.difference([0.90, 0.91, 0.92], [0.88, 0.885, 0.89], margin=0.02)
    there = stats.difference([0.991, 0.990, 0.992], [0.990, 0.9905, 0.991])
    c = stats.change(here, there)
    assert c.diff == pytest.approx(here.diff - there.diff) and c.margin == 0.02
    se = math.sqrt(here.se ** 2 + there.se ** 2)
    dof = se ** 4 / (here.se ** 4 / here.dof + there.se ** 4 / there.dof)
    half = scipy_stats.t.ppf(0.975, dof) * se
    assert (c.lo, c.hi) == (pytest.approx(c.diff - half), pytest.approx(c.diff + half))
    assert math.isnan(stats.change(here, stats.difference([0.9], [0.8])).lo)


@pytest.mark.parametrize("means, last, expected", [
    ([0.80, 0.90, 0.95, 0.97], [0.97, 0.971, 0.969], "saturating"),  # inside the margin
    ([0.80, 0.90, 0.95, 0.97], [0.971, 0.99, 0.95], "undecided"),  # too spread to tell
    ([0.80, 0.90, 0.95, 0.97], [0.975, 0.976, 0.974], "diminishing"),
    ([0.60, 0.70, 0.80, 0.90], [0.90, 0.901, 0.899], "steady")])
def test_returns_follow_the_last_steps_gain_and_the_gains_per_tenfold(means, last, expected):
    sizes = [600, 6000, 60000, 600000]
    before = [0.97, 0.9705, 0.9695] if expected != "steady" else [0.80, 0.801, 0.799]
    assert stats.returns(sizes, means, stats.difference(last, before, margin=0.003)) == expected


def test_a_change_with_no_spread_on_one_side_takes_the_others():
    here = stats.difference([0.90, 0.91, 0.92], [0.88, 0.885, 0.89])
    flat = stats.difference([0.99, 0.99, 0.99], [0.98, 0.98, 0.98])  # se 0
    c = stats.change(here, flat)
    assert c.se == pytest.approx(here.se) and c.dof == pytest.approx(here.dof)


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


def test_an_interval_whose_bound_would_print_as_the_margin_gets_one_more_digit():
    from mnistkit.questions import text

    inside = stats.Difference(0.99, 0.9906, -0.0006, -0.00196, 0.0007, 3, 3, 0.0004, 4.0, margin=0.002)
    assert inside.verdict == "equivalent"
    assert text.interval(inside) == "-0.060 points (95% interval -0.196 to +0.070)"
    assert text.bracketed(inside) == "-0.060 points [-0.196, +0.070]"
    clear = stats.Difference(0.99, 0.9906, -0.0006, -0.0015, 0.0003, 3, 3, 0.0004, 4.0, margin=0.002)
    assert text.interval(clear) == "-0.06 points (95% interval -0.15 to +0.03)"
