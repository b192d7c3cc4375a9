"""The statistics behind the report's verdicts: pure functions of numbers and frames, unit-tested."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
