"""Means over seeds: the 95% interval over training seeds, and the spread over few-shot seeds.

Interval rule (the report states it beside every table):

    k >= 2 values   mean ± t(0.975, k-1) · sd / sqrt(k)      method "t"
    k == 1          value ± z(0.975) · stderr                method "stderr" (lm-eval's stderr)
    k == 1, no stderr  no interval                           method "none"

    values [0.60, 0.64] -> mean 0.62, sd 0.0283, t(1) = 12.706 -> [0.366, 0.874] ("t")
    values [0.60], stderr 0.02 -> [0.5608, 0.6392] ("stderr")

The quantiles come from scipy's distributions, not from a table.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

from scipy.stats import norm
from scipy.stats import t as student_t

Z95 = float(norm.ppf(0.975))


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("t975 needs df >= 1")
    return float(student_t.ppf(0.975, df))


@dataclass(frozen=True)
class Estimate:
    """A mean over `k` values and its 95% interval; `labels` name what the values came from
    (the report: the cells of the training seeds)."""

    mean: float
    low: float | None
    high: float | None
    method: str            # "t" | "stderr" | "none"
    k: int
    labels: tuple[str, ...] = ()


def mean_interval(values: Sequence[float], stderr: float | None = None, labels: tuple[str, ...] = ()) -> Estimate:
    """Mean and 95% interval of `values` (see the module docstring for the rule); `stderr` is the
    single value's standard error, used only when there is one value."""
    k = len(values)
    mean = statistics.fmean(values)
    if k >= 2:
        half = t975(k - 1) * statistics.stdev(values) / math.sqrt(k)
        return Estimate(mean, mean - half, mean + half, "t", k, labels)
    if stderr is not None:
        return Estimate(mean, mean - Z95 * stderr, mean + Z95 * stderr, "stderr", 1, labels)
    return Estimate(mean, None, None, "none", 1, labels)


def seed_summary(values: Sequence[float]) -> dict:
    """{"mean", "std" (sample std, ddof=1; 0 for one value), "n", "values"} over few-shot seeds."""
    vals = [float(v) for v in values]
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals), "values": vals}


def pooled_spread(groups: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(mean, sd) over groups of two or more values each: the mean of the group means and the
    root-mean-square of the group sample sds (each group, e.g. one training seed's few-shot seeds,
    weighs the same)."""
    return (statistics.fmean(statistics.fmean(v) for v in groups),
            math.sqrt(statistics.fmean(statistics.variance(v) for v in groups)))
