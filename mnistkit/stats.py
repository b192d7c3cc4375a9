"""The statistics behind the report's verdicts: pure functions of numbers and frames, unit-tested.

Two kinds of evidence for a comparison, each from the field's standard test (scipy.stats):

- Over seeds: a difference of two configurations' mean accuracies with a 95% Welch t interval
  (each seed is one independent training run; the two arms need not have equal spreads).
- For a figure's error bars: a mean's own t interval (``t_interval``) and a proportion's Wilson
  interval (``wilson``).
- On the test images: McNemar's exact test on two single models' 10,000 predictions (Dietterich,
  1998), which uses only the images on which exactly one of them is right.

``verdict`` turns a difference into one of four words: "ahead" or "behind" where the 95% interval
excludes zero (Welch's two-sided t test at 5%); "equivalent" where two one-sided t tests (TOST, each
at 2.5%) put the difference inside ±margin, which is the same 95% interval lying inside ±margin;
"undecided" otherwise, and always where one seed a side gives no interval. The margin is the study's
(``params.Base.equivalence``, a rule on validation numbers); without one nothing is "equivalent". A
difference that is detected and yet smaller than the margin stays "ahead" or "behind"
(``Difference.negligible`` says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats


def gains_per_tenfold(sizes, means) -> list[float]:
    """Accuracy gained per tenfold more data between consecutive sizes (ascending)."""
    return [(means[i + 1] - means[i]) / math.log10(sizes[i + 1] / sizes[i]) for i in range(len(sizes) - 1)]


def returns(sizes, means, last: "Difference") -> str:
    """How a size curve's returns go, from ``last`` (the largest size minus the one before it): "saturating"
    where the last step gains nothing that matters (equivalent within the margin, or a loss); "undecided"
    where it may gain or not; "diminishing" where it gains but the gain per tenfold more data has shrunk
    from the first step to the last; else "steady"."""
    if last.verdict in ("equivalent", "behind"):
        return "saturating"
    if last.verdict == "undecided":
        return "undecided"
    gains = gains_per_tenfold(sizes, means)
    return "diminishing" if len(gains) > 1 and gains[-1] < gains[0] else "steady"


ALPHA = 0.05  # the two-sided test's level; each of TOST's one-sided tests runs at half of it


@dataclass(frozen=True)
class Difference:
    """``a - b`` of two means over seeds, with its 95% interval (NaN where a side has one seed), the
    standard error and degrees of freedom behind it, and the equivalence margin its verdict uses."""

    a_mean: float
    b_mean: float
    diff: float
    lo: float
    hi: float
    a_n: int
    b_n: int
    se: float = math.nan
    dof: float = math.nan
    margin: float = math.nan  # NaN: no margin, so never "equivalent"

    @property
    def ci95(self) -> list:
        return [self.lo, self.hi]

    @property
    def tost_p(self) -> float:
        """The p-value of two one-sided t tests that the difference lies inside ±margin (the larger of the
        two); NaN without an interval or a margin."""
        if math.isnan(self.lo) or not self.margin > 0:
            return math.nan
        if self.se == 0 or math.isnan(self.se):
            return 0.0 if abs(self.diff) < self.margin else 1.0
        above = stats.t.sf((self.diff + self.margin) / self.se, self.dof)  # H0: diff <= -margin
        below = stats.t.cdf((self.diff - self.margin) / self.se, self.dof)  # H0: diff >= +margin
        return float(max(above, below))

    @property
    def verdict(self) -> str:
        return verdict(self)

    @property
    def negligible(self) -> bool:
        """A detected difference (ahead or behind) whose whole interval lies inside ±margin: real, and
        smaller than the study counts as mattering."""
        return self.verdict in ("ahead", "behind") and self.tost_p < ALPHA / 2

    def with_margin(self, margin: float) -> "Difference":
        return replace(self, margin=margin)


def verdict(d: Difference) -> str:
    """"ahead" where Welch's test finds ``a`` above ``b`` (the 95% interval lies above zero), "behind" where
    below, "equivalent" where TOST finds the difference inside ±margin (the 95% interval inside it), else
    "undecided", as also without an interval (one seed a side)."""
    if math.isnan(d.lo) or math.isnan(d.hi):
        return "undecided"
    if d.lo > 0 or d.hi < 0:
        return "ahead" if d.diff > 0 else "behind"
    return "equivalent" if d.tost_p < ALPHA / 2 else "undecided"


def difference(a, b, confidence: float = 0.95, margin: float = math.nan) -> Difference:
    """Mean of ``a`` minus mean of ``b`` with a Welch t interval (Welch-Satterthwaite degrees of freedom),
    judged against the equivalence ``margin``.

    A side with a single value has no spread of its own: the other side's variance stands in for
    both when it has at least two values; with one value on each side the interval is NaN.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    va = a.var(ddof=1) if len(a) > 1 else math.nan
    vb = b.var(ddof=1) if len(b) > 1 else math.nan
    means = (float(a.mean()), float(b.mean()), diff)
    if math.isnan(va) and math.isnan(vb):
        return Difference(*means, math.nan, math.nan, len(a), len(b), margin=margin)
    if math.isnan(va) or math.isnan(vb):  # one run on one side (a deterministic baseline, say)
        v, n = (vb, len(b)) if math.isnan(va) else (va, len(a))
        se = math.sqrt(v / n + v)
        dof = n - 1
    else:
        se = math.sqrt(va / len(a) + vb / len(b))
        if se == 0:
            return Difference(*means, diff, diff, len(a), len(b), 0.0, math.nan, margin)
        dof = se**4 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    return Difference(*means, diff - half, diff + half, len(a), len(b), se, dof, margin)


def change(here: Difference, there: Difference, confidence: float = 0.95) -> Difference:
    """How a difference changed between two independent studies: ``here.diff - there.diff``, with a Welch
    interval from both standard errors (Welch-Satterthwaite degrees of freedom over the two), judged against
    ``here``'s margin. NaN where either side has no interval."""
    means = (here.diff, there.diff, here.diff - there.diff)
    if math.isnan(here.se) or math.isnan(there.se):
        return Difference(*means, math.nan, math.nan, here.a_n, there.a_n, margin=here.margin)
    se = math.sqrt(here.se**2 + there.se**2)
    if se == 0:
        return Difference(*means, means[2], means[2], here.a_n, there.a_n, 0.0, math.nan, here.margin)
    dof = se**4 / sum(d.se**4 / d.dof for d in (here, there) if d.se > 0)  # a side without spread adds none
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    return Difference(*means, means[2] - half, means[2] + half, here.a_n, there.a_n, se, dof, here.margin)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two classifiers on the same images."""

    only_a: int  # images only the first classifies correctly
    only_b: int  # images only the second classifies correctly
    p: float  # two-sided exact p-value (binomial, 1/2, on the discordant images)

    @property
    def significant(self) -> bool:
        return self.p < 0.05


def t_interval(std: float, count: float) -> float:
    """Half-width of the 95% t interval of a mean of ``count`` values with standard deviation
    ``std``; NaN where there is none (fewer than two values, or no std)."""
    if count is None or pd.isna(count) or count < 2 or std is None or pd.isna(std):
        return math.nan
    return float(stats.t.ppf(0.975, count - 1) * std / math.sqrt(count))


def wilson(successes, trials, z: float = 1.959963984540054):
    """95% Wilson score interval ``(low, high)`` of each proportion ``successes / trials``."""
    x, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    p = x / n
    denominator = 1 + z ** 2 / n
    centre = (p + z ** 2 / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2)) / denominator
    return centre - half, centre + half


def mcnemar(pred_a, pred_b, labels) -> McNemar:
    """Compare two classifiers' predictions of ``labels`` with McNemar's exact test."""
    right_a = np.asarray(pred_a) == np.asarray(labels)
    right_b = np.asarray(pred_b) == np.asarray(labels)
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else float(stats.binomtest(only_a, n, 0.5).pvalue)
    return McNemar(only_a, only_b, p)
