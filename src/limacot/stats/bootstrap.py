"""The percentile bootstrap: the one seeded procedure behind every bootstrap interval limacot reports.

`statistic(index)` gets an [R, n] array of resampled item indices (documents, prompts) and
returns the R values of the statistic on those resamples; the interval is the (1 - confidence) / 2
and 1 - (1 - confidence) / 2 quantiles of those values. A paired difference passes one index
array to both runs (that is what makes it paired: `limacot.stats.paired`).

    successes [1, 1, 0, 1]
    -> bootstrap_interval(resampled_mean(successes), 4, resamples=2000, seed=0)
       = Interval(value=0.75, low=0.25, high=1.0, resamples=2000, seed=0)

`bootstrap_intervals` does the same for a statistic with several values per resample ([R, m]:
e.g. the slope and the prediction of one regression fitted on each resample), one interval per
value, all from the same resamples. `resampled_ratio` is the statistic of a ratio of sums (a
share of verdicts, resampled by prompt: each prompt brings its numerator and denominator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Interval:
    value: float  # the statistic on all items
    low: float
    high: float
    resamples: int
    seed: int


def bootstrap_interval(statistic: Statistic, n_items: int, *, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED, confidence: float = 0.95, chunk: int = 500) -> Interval:
    """Percentile bootstrap interval of `statistic` over `n_items` items (see the module docstring).
    Resamples are drawn in chunks of `chunk` from `numpy.random.default_rng(seed)`; the chunk size
    bounds memory and does not change the draws."""
    (interval,) = bootstrap_intervals(lambda index: statistic(index)[:, None], n_items, resamples=resamples,
                                      seed=seed, confidence=confidence, chunk=chunk)
    return interval


def bootstrap_intervals(statistic: Statistic, n_items: int, *, resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED, confidence: float = 0.95, chunk: int = 500) -> list[Interval]:
    """One percentile interval per column of `statistic(index)` ([R, m]), all over the same
    resamples (the draws of `bootstrap_interval` with the same seed). A resample whose value is
    not finite (a fit that failed on it) makes that column's bounds NaN: never dropped silently."""
    if n_items == 0:
        raise ValueError("no items to resample")
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        values.append(statistic(rng.integers(0, n_items, size=(size, n_items))))
    alpha = (1.0 - confidence) / 2
    full = statistic(np.arange(n_items)[None, :])[0]
    bounds = np.quantile(np.concatenate(values), [alpha, 1 - alpha], axis=0)
    return [Interval(float(value), float(low), float(high), resamples, seed)
            for value, low, high in zip(full, bounds[0], bounds[1])]


def resampled_mean(values: Sequence[float]) -> Statistic:
    """statistic(index) for the mean of per-item values: values [n], index [R, n] -> [R]."""
    array = np.asarray(values, dtype=float)
    return lambda index: array[index].mean(axis=1)


def resampled_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> Statistic:
    """statistic(index) for sum(numerators) / sum(denominators) over the resampled items:
    first-shown answers preferred (0, 1 or 2 per prompt) over the prompt's decisive verdicts
    (0, 1 or 2). Resample items with a positive denominator only, or a resample may divide by 0."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    return lambda index: num[index].sum(axis=1) / den[index].sum(axis=1)
