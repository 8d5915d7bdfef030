"""Paired statistics for two runs scored on the same docs, and few-shot seed variance.

All functions take per-doc arrays aligned by doc (index i is the same doc in A and B):

    mcnemar_exact(correct_a, correct_b)          exact two-sided McNemar p (binomial on discordant pairs)
    paired_permutation_f1(golds, pa, pb)          two-sided p of macro-F1(B) - macro-F1(A), swapping A's
                                                 and B's prediction per doc (scipy's permutation test)
    paired_bootstrap(metric, a, b, ...)          95% CI of metric(B) - metric(A), resampling docs
    holm(p_values)                               Holm step-down adjusted p-values
    seed_summary(values)                         mean and sample standard deviation over seeds

    correct_a = [1, 1, 0, 0, 1], correct_b = [1, 0, 1, 1, 1]
    -> discordant: A-only 1, B-only 2 -> p = P(X <= 1 | n=3, 0.5) * 2 = 1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
PERMUTATION_RESAMPLES = 9_999


def mcnemar_exact(correct_a: Sequence[int | bool], correct_b: Sequence[int | bool]) -> dict:
    """Exact McNemar test: {"a_only", "b_only", "p_value"}.

    Under H0 (same accuracy) each discordant doc is equally likely to favour A or B, so the
    count favouring B is Binomial(n_discordant, 1/2); p = min(1, 2 * P(X <= min(a_only, b_only))).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {a.shape} vs {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return {"a_only": a_only, "b_only": b_only, "p_value": _binomial_two_sided(min(a_only, b_only), a_only + b_only)}


def _binomial_two_sided(k: int, n: int) -> float:
    if n == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(k, n, 0.5)))


@dataclass(frozen=True)
class Interval:
    diff: float  # metric(B) - metric(A) on all docs
    low: float
    high: float
    resamples: int
    seed: int

    def as_dict(self) -> dict:
        return {"diff": self.diff, "ci_low": self.low, "ci_high": self.high,
                "resamples": self.resamples, "seed": self.seed}


def mean_metric(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per-resample mean of per-doc values. values: [n]; index: [R, n] doc indices."""
    return values[index].mean(axis=1)


def macro_f1_metric(golds: np.ndarray, preds: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per-resample macro F1 (scikit-learn's definition: classes present in gold or pred of that
    resample; a class with no true positives scores 0). golds/preds: [n]; index: [R, n]."""
    return macro_f1_rows(golds[index], preds[index])


def macro_f1_rows(golds: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Macro F1 of each row: golds and preds broadcast to [..., n]; returns [...]."""
    g, p = np.broadcast_arrays(np.asarray(golds), np.asarray(preds))
    scores, present = [], []
    for label in np.union1d(g, p):
        tp = np.sum((g == label) & (p == label), axis=-1)
        fp = np.sum((g != label) & (p == label), axis=-1)
        fn = np.sum((g == label) & (p != label), axis=-1)
        denom = 2 * tp + fp + fn
        scores.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
        present.append(denom > 0)
    scores_arr, present_arr = np.array(scores), np.array(present)
    return (scores_arr * present_arr).sum(axis=0) / np.maximum(present_arr.sum(axis=0), 1)


def paired_permutation_f1(golds: Sequence, preds_a: Sequence, preds_b: Sequence, *,
                          resamples: int = PERMUTATION_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> float:
    """Two-sided p of macro-F1(B) - macro-F1(A) on the same docs (a paired permutation test).

    Under H0 (A and B are equally good) the two predictions of a doc are exchangeable, so each
    permutation swaps A's and B's prediction on a random subset of docs and recomputes both F1s
    (scipy.stats.permutation_test, permutation_type="samples": exact when 2^n <= resamples).
    F1 is not a per-doc score, so McNemar's test, which counts per-doc wins, does not test it.

        golds [0, 1, 1, 0], A [0, 1, 1, 0], B [1, 0, 0, 1] -> F1 1.0 vs 0.0, p = 2/16 = 0.125
    """
    from scipy.stats import permutation_test

    g, pa, pb = (np.asarray(x) for x in (golds, preds_a, preds_b))
    if len(g) == 0 or np.array_equal(pa, pb):
        return 1.0

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return macro_f1_rows(g, b) - macro_f1_rows(g, a)

    result = permutation_test((pa, pb), statistic, permutation_type="samples", vectorized=True,
                              n_resamples=resamples, alternative="two-sided",
                              random_state=np.random.default_rng(seed))
    return float(min(1.0, result.pvalue))


def paired_bootstrap(metric: Callable[[np.ndarray], np.ndarray], n_docs: int, *,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     confidence: float = 0.95, chunk: int = 500) -> Interval:
    """Percentile bootstrap CI of a paired difference.

    `metric(index)` gets an [R, n] array of resampled doc indices and returns the [R] values of
    metric(B) - metric(A) on those resamples (one index array for both runs: that is what
    makes it paired). Resamples are drawn in chunks from `numpy.random.default_rng(seed)`.
    """
    if n_docs == 0:
        raise ValueError("no docs to resample")
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        diffs.append(metric(rng.integers(0, n_docs, size=(size, n_docs))))
    all_diffs = np.concatenate(diffs)
    alpha = (1.0 - confidence) / 2
    full = float(metric(np.arange(n_docs)[None, :])[0])
    low, high = np.quantile(all_diffs, [alpha, 1 - alpha])
    return Interval(full, float(low), float(high), resamples, seed)


def paired_diff(a: Sequence[float], b: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """metric(index) for a per-doc mean (acc, acc_norm, exact_match): mean(B) - mean(A)."""
    va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return lambda index: mean_metric(vb, index) - mean_metric(va, index)


def paired_f1_diff(golds: Sequence[int], preds_a: Sequence[int], preds_b: Sequence[int]):
    """metric(index) for macro F1: F1(B) - F1(A) on the same resampled docs."""
    g, pa, pb = (np.asarray(x) for x in (golds, preds_a, preds_b))
    return lambda index: macro_f1_metric(g, pb, index) - macro_f1_metric(g, pa, index)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

        [0.01, 0.04, 0.03] -> sorted 0.01*3=0.03, 0.03*2=0.06, max(0.06, 0.04*1)=0.06
                           -> [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def seed_summary(values: Sequence[float]) -> dict:
    """{"mean", "std" (sample std, ddof=1; 0 for one value), "n", "values"} over few-shot seeds."""
    vals = [float(v) for v in values]
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(vals), "values": vals}
