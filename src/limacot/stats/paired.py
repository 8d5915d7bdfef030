"""Paired tests of two runs scored on the same documents, and Holm's correction across tests.

Every function takes per-doc arrays aligned by doc (index i is the same doc in A and B):

    mcnemar_exact(correct_a, correct_b)          exact two-sided McNemar p (binomial on discordant pairs)
    paired_permutation_f1(golds, pa, pb)          two-sided p of macro-F1(B) - macro-F1(A), swapping A's
                                                 and B's prediction per doc (scipy's permutation test)
    paired_permutation_mean(a, b)                 two-sided p of mean(B) - mean(A) of a per-doc score,
                                                 swapping A's and B's score per doc
    paired_diff(a, b), paired_f1_diff(g, pa, pb)  the statistic of B - A for `bootstrap_interval`
    holm(p_values)                               Holm step-down adjusted p-values

    correct_a = [1, 1, 0, 0, 1], correct_b = [1, 0, 1, 1, 1]
    -> discordant: A-only 1, B-only 2 -> p = P(X <= 1 | n=3, 0.5) * 2 = 1.0
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import binom, permutation_test

from limacot.stats.bootstrap import BOOTSTRAP_SEED, Statistic, resampled_mean

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
    n = a_only + b_only
    p_value = 1.0 if n == 0 else float(min(1.0, 2.0 * binom.cdf(min(a_only, b_only), n, 0.5)))
    return {"a_only": a_only, "b_only": b_only, "p_value": p_value}


def macro_f1_rows(golds: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Macro F1 of each row: golds and preds broadcast to [..., n]; returns [...]. scikit-learn's
    definition: classes present in gold or pred of that row; a class with no true positives scores 0."""
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


def macro_f1_metric(golds: np.ndarray, preds: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per-resample macro F1. golds/preds: [n]; index: [R, n] doc indices."""
    return macro_f1_rows(golds[index], preds[index])


def paired_permutation_f1(golds: Sequence, preds_a: Sequence, preds_b: Sequence, *,
                          resamples: int = PERMUTATION_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> float:
    """Two-sided p of macro-F1(B) - macro-F1(A) on the same docs (a paired permutation test).

    Under H0 (A and B are equally good) the two predictions of a doc are exchangeable, so each
    permutation swaps A's and B's prediction on a random subset of docs and recomputes both F1s
    (scipy.stats.permutation_test, permutation_type="samples": exact when 2^n <= resamples).
    F1 is not a per-doc score, so McNemar's test, which counts per-doc wins, does not test it.

        golds [0, 1, 1, 0], A [0, 1, 1, 0], B [1, 0, 0, 1] -> F1 1.0 vs 0.0, p = 2/16 = 0.125
    """
    g, pa, pb = (np.asarray(x) for x in (golds, preds_a, preds_b))
    if len(g) == 0 or np.array_equal(pa, pb):
        return 1.0

    return _swap_test(pa, pb, lambda a, b, axis=-1: macro_f1_rows(g, b) - macro_f1_rows(g, a), resamples, seed)


def paired_permutation_mean(scores_a: Sequence[float], scores_b: Sequence[float], *,
                            resamples: int = PERMUTATION_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> float:
    """Two-sided p of mean(B) - mean(A) for a continuous per-doc score (a paired permutation
    test: under H0 each doc's two scores are exchangeable, so a permutation swaps them on a
    random subset of docs; exact when 2^n <= resamples). Unlike a t-test it assumes nothing
    about the shape of the per-doc differences.

        A [-2.0, -2.1, -1.9], B [-1.5, -1.6, -1.4] -> every doc favours B; exact p = 2/8 = 0.25
    """
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {a.shape} vs {b.shape}")
    if len(a) == 0 or np.array_equal(a, b):
        return 1.0
    return _swap_test(a, b, lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis), resamples, seed)


def _swap_test(a: np.ndarray, b: np.ndarray, statistic, resamples: int, seed: int) -> float:
    """Two-sided p of statistic(A, B) when A's and B's value of each doc may be swapped
    (scipy's paired permutation test, vectorized, seeded)."""
    result = permutation_test((a, b), statistic, permutation_type="samples", vectorized=True,
                              n_resamples=resamples, alternative="two-sided",
                              random_state=np.random.default_rng(seed))
    return float(min(1.0, result.pvalue))


def paired_diff(a: Sequence[float], b: Sequence[float]) -> Statistic:
    """statistic(index) for a per-doc mean (acc, acc_norm, exact_match, ll_per_char): mean(B) - mean(A)."""
    mean_a, mean_b = resampled_mean(a), resampled_mean(b)
    return lambda index: mean_b(index) - mean_a(index)


def paired_f1_diff(golds: Sequence[int], preds_a: Sequence[int], preds_b: Sequence[int]) -> Statistic:
    """statistic(index) for macro F1: F1(B) - F1(A) on the same resampled docs."""
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
