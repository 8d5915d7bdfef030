"""Agreement between raters on categorical labels, as statistics for `bootstrap_interval`.

Labels are small integers 0..C-1 (for a pairwise preference: B wins, tie, B loses). Each
function returns `statistic(index)`: `index` is an [R, m] array of resampled *items*, and
`groups[i]` says which item row i belongs to, so an item rated by several raters (a pooled
statistic) is resampled with all its ratings; without `groups`, row i is item i.

    percent_agreement(a, b)          share of rows where a == b
    tie_discounted(a, b, tie)        1 if a == b, 1/2 if exactly one is `tie`, else 0 (LIMA's
                                     inter-annotator agreement: its "tie-discounted accuracy")
    cohen_kappa(a, b, n_labels)      (p_o - p_e) / (1 - p_e), p_e from each rater's own label shares
    fleiss_kappa(counts)             Fleiss' kappa of K raters per item: counts[i, c] = raters giving
                                     item i label c (every row sums to K)

    a = [0, 0, 1, 1], b = [0, 1, 1, 1]: p_o = 3/4, p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2 -> kappa = 1/2

A kappa is undefined (NaN) where p_e = 1, i.e. both raters used one label only; a bootstrap
interval that meets such a resample is NaN too, and callers report it as missing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from limacot.stats.bootstrap import Statistic


def item_weights(index: np.ndarray, n_items: int, groups: np.ndarray) -> np.ndarray:
    """[R, n_rows] weights: how often each row's item was drawn in each resample."""
    counts = np.zeros((index.shape[0], n_items))
    np.add.at(counts, (np.repeat(np.arange(index.shape[0]), index.shape[1]), index.ravel()), 1)
    return counts[:, groups]


def _paired(a: Sequence[int], b: Sequence[int], groups: Sequence[int] | None):
    a, b = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
    if a.shape != b.shape:
        raise ValueError(f"paired labels differ in length: {a.shape} vs {b.shape}")
    return (a, b, *_groups(len(a), groups))


def _groups(n_rows: int, groups: Sequence[int] | None) -> tuple[np.ndarray, int]:
    """(row -> item index, number of items); without `groups` each row is its own item."""
    found = np.arange(n_rows) if groups is None else np.asarray(groups, dtype=int)
    if len(found) != n_rows:
        raise ValueError(f"groups has {len(found)} entries for {n_rows} rows")
    return found, int(found.max()) + 1 if n_rows else 0


def weighted_mean(scores: Sequence[float], groups: Sequence[int] | None = None) -> Statistic:
    """statistic(index) for the mean of per-row scores, items resampled with all their rows."""
    values = np.asarray(scores, dtype=float)
    groups_, n_items = _groups(len(values), groups)

    def statistic(index: np.ndarray) -> np.ndarray:
        weights = item_weights(index, n_items, groups_)
        return (weights * values).sum(axis=1) / weights.sum(axis=1)
    return statistic


def percent_agreement(a: Sequence[int], b: Sequence[int], groups: Sequence[int] | None = None) -> Statistic:
    """statistic(index): the share of (resampled) rows where the two raters gave the same label."""
    a, b, groups, _ = _paired(a, b, groups)
    return weighted_mean(a == b, groups)


def tie_discounted(a: Sequence[int], b: Sequence[int], tie: int, groups: Sequence[int] | None = None) -> Statistic:
    """statistic(index): LIMA's tie-discounted accuracy. One point when the raters agree (both ties
    included), half a point when exactly one of them said tie, none when they prefer opposite sides.

        a = [win, tie, win, loss], b = [win, win, loss, loss] -> (1 + 0.5 + 0 + 1) / 4 = 0.625
    """
    a, b, groups, _ = _paired(a, b, groups)
    return weighted_mean(np.where(a == b, 1.0, np.where((a == tie) ^ (b == tie), 0.5, 0.0)), groups)


def cohen_kappa(a: Sequence[int], b: Sequence[int], n_labels: int, groups: Sequence[int] | None = None) -> Statistic:
    """statistic(index): Cohen's kappa of two raters over the resampled rows (unweighted: every
    disagreement counts the same). Equals scikit-learn's cohen_kappa_score on the rows."""
    a, b, groups, n_items = _paired(a, b, groups)

    def statistic(index: np.ndarray) -> np.ndarray:
        weights = item_weights(index, n_items, groups)
        total = weights.sum(axis=1)
        observed = (weights * (a == b)).sum(axis=1) / total
        chance = sum(((weights * (a == c)).sum(axis=1) / total) * ((weights * (b == c)).sum(axis=1) / total)
                     for c in range(n_labels))
        return _kappa(observed, chance)
    return statistic


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> Statistic:
    """statistic(index): Fleiss' kappa over the resampled items. counts[i, c] is how many of the K
    raters gave item i label c; each item's agreement is the share of agreeing rater pairs,
    sum_c n_ic (n_ic - 1) / (K (K - 1)), and chance is sum_c p_c^2 over the pooled label shares.

        counts [[2, 0], [0, 2], [1, 1]] (K = 2): P = (1 + 1 + 0) / 3, p = (1/2, 1/2) -> (2/3 - 1/2) / (1/2) = 1/3
    """
    table = np.asarray(counts, dtype=float)
    raters = table.sum(axis=1)
    if table.ndim != 2 or not len(table) or np.any(raters != raters[0]) or raters[0] < 2:
        raise ValueError("fleiss_kappa needs items rated by the same number (>= 2) of raters each")
    k, m = raters[0], len(table)
    per_item = (table * (table - 1)).sum(axis=1) / (k * (k - 1))

    def statistic(index: np.ndarray) -> np.ndarray:
        weights = item_weights(index, m, np.arange(m))
        observed = weights @ per_item / m
        chance = ((weights @ table / (m * k)) ** 2).sum(axis=1)
        return _kappa(observed, chance)
    return statistic


def _kappa(observed: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """(p_o - p_e) / (1 - p_e); NaN where p_e = 1 (one label only: kappa is undefined)."""
    undefined = np.isclose(chance, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(undefined, np.nan, (observed - chance) / np.where(undefined, 1.0, 1.0 - chance))

