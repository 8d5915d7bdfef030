"""limacot.stats checked against scipy/scikit-learn and hand-computed cases."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from limacot.stats.bootstrap import bootstrap_interval, resampled_mean
from limacot.stats.intervals import Z95, mean_interval, pooled_spread, seed_summary, t975
from limacot.stats.paired import holm, macro_f1_metric, mcnemar_exact, paired_diff, paired_f1_diff


def test_mcnemar_hand_case():
    # discordant: A-only 1 (doc 1), B-only 2 (docs 2, 3): p = 2 * P(X<=1 | 3, .5) = 2 * 4/8 = 1
    assert mcnemar_exact([1, 1, 0, 0, 1], [1, 0, 1, 1, 1]) == {"a_only": 1, "b_only": 2, "p_value": 1.0}
    # 0 vs 6 discordant: p = 2 / 64
    result = mcnemar_exact([0] * 6 + [1] * 4, [1] * 10)
    assert result["b_only"] == 6 and result["p_value"] == pytest.approx(2 / 64)
    assert mcnemar_exact([1, 0], [1, 0])["p_value"] == 1.0


def test_mcnemar_matches_scipy_binomtest():
    from scipy.stats import binomtest

    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
        result = mcnemar_exact(a, b)
        n = result["a_only"] + result["b_only"]
        expected = binomtest(result["b_only"], n, 0.5).pvalue if n else 1.0
        assert result["p_value"] == pytest.approx(expected, rel=1e-9)


def test_mcnemar_rejects_unpaired_input():
    with pytest.raises(ValueError):
        mcnemar_exact([1, 0], [1])


def test_holm_hand_case():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_macro_f1_metric_matches_sklearn_on_resamples():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    golds, preds = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    preds[:5] = 2
    index = rng.integers(0, 40, size=(25, 40))
    ours = macro_f1_metric(golds, preds, index)
    theirs = [f1_score(golds[i], preds[i], average="macro", zero_division=0) for i in index]
    assert ours == pytest.approx(theirs)


def test_paired_bootstrap_is_seeded_and_brackets_the_difference():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 200).astype(float)
    b = np.where(rng.random(200) < 0.2, 1 - a, a)
    first = bootstrap_interval(paired_diff(a, b), 200, resamples=2000, seed=7)
    again = bootstrap_interval(paired_diff(a, b), 200, resamples=2000, seed=7)
    other = bootstrap_interval(paired_diff(a, b), 200, resamples=2000, seed=8)
    assert first == again and (first.low, first.high) != (other.low, other.high)
    assert first.value == pytest.approx(b.mean() - a.mean())
    assert first.low <= first.value <= first.high
    # the paired CI of a difference is narrower than the sum of the two unpaired ones would be
    assert first.high - first.low < 4 * 1.96 * np.sqrt(0.25 / 200)
    same = bootstrap_interval(paired_diff(a, a), 200, resamples=500, seed=0)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)


def test_paired_f1_diff_point_value():
    from sklearn.metrics import f1_score

    golds, pa, pb = [0, 1, 1, 0, 1], [0, 0, 1, 1, 1], [0, 1, 1, 0, 0]
    ci = bootstrap_interval(paired_f1_diff(golds, pa, pb), 5, resamples=200, seed=0)
    assert ci.value == pytest.approx(f1_score(golds, pb, average="macro") - f1_score(golds, pa, average="macro"))


def test_seed_summary():
    values = [0.5, 0.6, 0.8]
    summary = seed_summary(values)
    assert summary["mean"] == pytest.approx(statistics.mean(values))
    assert summary["std"] == pytest.approx(statistics.stdev(values))
    assert seed_summary([0.7]) == {"mean": 0.7, "std": 0.0, "n": 1, "values": [0.7]}


def test_the_bootstrap_of_a_mean_is_seeded_and_bounded():
    successes = [True] * 7 + [False] * 3
    first = bootstrap_interval(resampled_mean(successes), 10, resamples=2000, seed=3)
    assert first == bootstrap_interval(resampled_mean(successes), 10, resamples=2000, seed=3)
    assert first.value == pytest.approx(0.7) and 0.3 <= first.low < 0.7 < first.high <= 1.0
    every = bootstrap_interval(resampled_mean([1.0] * 10), 10, resamples=100)
    assert (every.low, every.high) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_interval(resampled_mean([]), 0)


def test_the_bootstrap_chunks_do_not_change_the_draws():
    values = np.random.default_rng(5).random(37)
    whole = bootstrap_interval(resampled_mean(values), 37, resamples=1234, seed=9, chunk=1234)
    assert bootstrap_interval(resampled_mean(values), 37, resamples=1234, seed=9, chunk=100) == whole


def test_mean_interval_rule():
    """t over k >= 2 values (scipy's quantile), z * stderr for one value, nothing without a stderr."""
    two = mean_interval([0.60, 0.64], labels=("s0", "s1"))
    half = t975(1) * statistics.stdev([0.60, 0.64]) / 2 ** 0.5
    assert t975(1) == pytest.approx(12.706205, abs=1e-6) and Z95 == pytest.approx(1.959964, abs=1e-6)
    assert (two.method, two.k, two.labels) == ("t", 2, ("s0", "s1"))
    assert (two.low, two.high) == pytest.approx((0.62 - half, 0.62 + half))
    one = mean_interval([0.60], stderr=0.02)
    assert one.method == "stderr" and (one.low, one.high) == pytest.approx((0.60 - Z95 * 0.02, 0.60 + Z95 * 0.02))
    assert mean_interval([0.60]).method == "none" and mean_interval([0.60]).low is None
    with pytest.raises(ValueError):
        t975(0)


def test_pooled_spread_weighs_each_group_the_same():
    mean, sd = pooled_spread([[0.5, 0.7], [0.6, 0.6, 0.6]])
    assert mean == pytest.approx((0.6 + 0.6) / 2) and sd == pytest.approx((statistics.variance([0.5, 0.7]) / 2) ** 0.5)
