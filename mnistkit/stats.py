"""The statistics behind the report's verdicts: pure functions of numbers and frames, unit-tested.

Two kinds of evidence for a comparison, each from the field's standard test (scipy.stats):

- Over seeds: a difference of two configurations' mean accuracies with a 95% Welch t interval
  (each seed is one independent training run; the two arms need not have equal spreads).
- On the test images: McNemar's exact test on two single models' 10,000 predictions (Dietterich,
  1998), which uses only the images on which exactly one of them is right.

``verdict`` turns an interval into the word the report uses: "better", "worse" or "level". The
older rule of thumb, ``Gap`` (a gap against twice a noise level), serves where no interval exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

TEST_SIZE = 10_000


def variance_shares(frame: pd.DataFrame, factors, value: str = "test_acc") -> pd.DataFrame:
    """Share of the variance of ``value`` explained by each factor's main effect, by their
    interactions, and by the seed (within-cell noise), for a balanced full-factorial frame.

    Columns ``source``, ``sum_sq``, ``share``; the shares sum to 1.
    """
    y = frame[value]
    total = ((y - y.mean()) ** 2).sum()
    rows = []
    for f in factors:
        means = frame.groupby(f)[value].transform("mean")
        rows.append((f, ((means - y.mean()) ** 2).sum()))
    cell = frame.groupby(list(factors))[value].transform("mean")
    within = ((y - cell) ** 2).sum()
    rows.append(("interactions", total - sum(ss for _, ss in rows) - within))
    rows.append(("seed (noise)", within))
    out = pd.DataFrame(rows, columns=["source", "sum_sq"])
    out["share"] = out["sum_sq"] / total if total > 0 else 0.0
    return out


def binomial_se(accuracy: float, n: int = TEST_SIZE) -> float:
    """Standard error of an accuracy measured on ``n`` independent test images."""
    return math.sqrt(accuracy * (1 - accuracy) / n)


def spread(*stds: float) -> float:
    """The largest of ``stds``, ignoring missing ones (a single seed has none); NaN if all are."""
    known = [float(s) for s in stds if s is not None and not pd.isna(s)]
    return max(known) if known else math.nan


@dataclass(frozen=True)
class Gap:
    """``b - a`` judged against a noise level: a gap within twice the noise is no difference."""

    a: float
    b: float
    noise: float  # one standard deviation of the noise the gap is judged against; NaN: unknown

    @property
    def difference(self) -> float:
        return self.b - self.a

    @property
    def verdict(self) -> str:
        """'higher' (b beats a by more than twice the noise), 'lower', or 'level' (also when the
        noise is unknown: without a spread there is no claim)."""
        if math.isnan(self.noise):
            return "level"
        if self.difference > 2 * self.noise:
            return "higher"
        if self.difference < -2 * self.noise:
            return "lower"
        return "level"


def gains_per_tenfold(sizes, means) -> list[float]:
    """Accuracy gained per tenfold more data between consecutive sizes (ascending)."""
    return [(means[i + 1] - means[i]) / math.log10(sizes[i + 1] / sizes[i]) for i in range(len(sizes) - 1)]


def saturates(sizes, means) -> bool:
    """Whether a size curve flattens: its last gain per tenfold is below its first."""
    gains = gains_per_tenfold(sizes, means)
    return len(gains) > 1 and gains[-1] < gains[0]


def level_gap(frame: pd.DataFrame, factors, factor: str, value: str = "test_acc") -> Gap:
    """The first level of ``factor`` (sorted) minus its last, in mean ``value``, judged against the
    standard error of that difference from the within-cell (seed) variance of a balanced factorial."""
    means = level_means(frame, factor, value)
    cell = frame.groupby(list(factors))[value].transform("mean")
    dof = len(frame) - frame.groupby(list(factors)).ngroups
    within = ((frame[value] - cell) ** 2).sum() / dof if dof > 0 else math.nan
    per_level = len(frame) / len(means)
    return Gap(a=float(means.iloc[-1]), b=float(means.iloc[0]), noise=math.sqrt(2 * within / per_level))


def level_means(frame: pd.DataFrame, factor: str, value: str = "test_acc") -> pd.Series:
    """Mean of ``value`` at each level of ``factor`` (levels sorted)."""
    return frame.groupby(factor)[value].mean()


def ordered(values) -> list:
    """``values`` without repeats, in first-seen order."""
    return list(dict.fromkeys(np.asarray(values).tolist()))



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


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of ``values``; the interval is NaN for a single value."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


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


def mcnemar(pred_a, pred_b, labels) -> McNemar:
    """Compare two classifiers' predictions of ``labels`` with McNemar's exact test."""
    right_a = np.asarray(pred_a) == np.asarray(labels)
    right_b = np.asarray(pred_b) == np.asarray(labels)
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else float(stats.binomtest(only_a, n, 0.5).pvalue)
    return McNemar(only_a, only_b, p)
