"""The statistics behind the report's verdicts: pure functions of numbers and frames, unit-tested.

Two kinds of evidence for a comparison, each from the field's standard test (scipy.stats):

- Over seeds: a difference of two configurations' mean accuracies with a 95% Welch t interval
  (each seed is one independent training run; the two arms need not have equal spreads).
- For a figure's error bars: a mean's own t interval (``t_interval``) and a proportion's Wilson
  interval (``wilson``).
- On the test images: McNemar's exact test on two single models' 10,000 predictions (Dietterich,
  1998), which uses only the images on which exactly one of them is right.

``verdict`` turns an interval into the word the report uses: "better", "worse" or "level" (also
where there is no interval: without a spread there is no claim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def gains_per_tenfold(sizes, means) -> list[float]:
    """Accuracy gained per tenfold more data between consecutive sizes (ascending)."""
    return [(means[i + 1] - means[i]) / math.log10(sizes[i + 1] / sizes[i]) for i in range(len(sizes) - 1)]


def saturates(sizes, means) -> bool:
    """Whether a size curve flattens: its last gain per tenfold is below its first."""
    gains = gains_per_tenfold(sizes, means)
    return len(gains) > 1 and gains[-1] < gains[0]


@dataclass(frozen=True)
class Difference:
    """``a - b`` of two means over seeds, with its 95% interval (NaN where a side has one seed)."""

    a_mean: float
    b_mean: float
    diff: float
    lo: float
    hi: float
    a_n: int
    b_n: int

    @property
    def ci95(self) -> list:
        return [self.lo, self.hi]

    @property
    def verdict(self) -> str:
        return verdict(self.lo, self.hi)


def verdict(lo: float, hi: float) -> str:
    """'better' if the whole interval lies above 0, 'worse' if below, else 'level' (also for no interval)."""
    if math.isnan(lo) or math.isnan(hi):
        return "level"
    return "better" if lo > 0 else "worse" if hi < 0 else "level"


def difference(a, b, confidence: float = 0.95) -> Difference:
    """Mean of ``a`` minus mean of ``b`` with a Welch t interval (Welch-Satterthwaite degrees of freedom).

    A side with a single value has no spread of its own: the other side's variance stands in for
    both when it has at least two values; with one value on each side the interval is NaN.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    va = a.var(ddof=1) if len(a) > 1 else math.nan
    vb = b.var(ddof=1) if len(b) > 1 else math.nan
    if math.isnan(va) and math.isnan(vb):
        return Difference(float(a.mean()), float(b.mean()), diff, math.nan, math.nan, len(a), len(b))
    if math.isnan(va) or math.isnan(vb):  # one run on one side (a deterministic baseline, say)
        v, n = (vb, len(b)) if math.isnan(va) else (va, len(a))
        se = math.sqrt(v / n + v)
        dof = n - 1
    else:
        se = math.sqrt(va / len(a) + vb / len(b))
        if se == 0:
            return Difference(float(a.mean()), float(b.mean()), diff, diff, diff, len(a), len(b))
        dof = se**4 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    return Difference(float(a.mean()), float(b.mean()), diff, diff - half, diff + half, len(a), len(b))


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
