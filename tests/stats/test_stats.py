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


# --- logistic regression (Firth) and the multi-value bootstrap ------------------------------------


def _firth_objective(X, y):
    """-(log-likelihood + 1/2 log det information), written out independently of the module."""
    def objective(beta):
        p = 1 / (1 + np.exp(-(X @ beta)))
        info = X.T @ (X * (p * (1 - p))[:, None])
        return -(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) + 0.5 * np.linalg.slogdet(info)[1])
    return objective


def test_logistic_fit_maximizes_the_firth_penalized_likelihood():
    from scipy.optimize import minimize

    from limacot.stats.logistic import logistic_fit

    rng = np.random.default_rng(1)
    x = rng.normal(size=120)
    y = (rng.random(120) < 1 / (1 + np.exp(-(0.3 + 0.8 * x)))).astype(float)
    X = np.column_stack([np.ones_like(x), x])
    fit = logistic_fit(X, y)
    best = minimize(_firth_objective(X, y), np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    assert fit.converged and fit.coef == pytest.approx(best.x, abs=1e-5)
    assert fit.penalized_loglik == pytest.approx(-best.fun, abs=1e-9)
    p = 1 / (1 + np.exp(-(X @ np.array(fit.coef))))  # se: the inverse information at the estimate
    assert fit.se == pytest.approx(np.sqrt(np.diag(np.linalg.inv(X.T @ (X * (p * (1 - p))[:, None])))), rel=1e-6)
    assert fit.coef[1] == pytest.approx(0.8, abs=0.35)


def test_separated_outcomes_get_a_finite_fit_and_a_tiny_likelihood_ratio_p():
    """A covariate that decides every outcome: plain maximum likelihood runs off to infinity;
    the penalized fit stays finite, its Wald test would say p > 0.01 (Hauck-Donner), the
    likelihood ratio says what the data show."""
    from scipy.stats import norm

    from limacot.stats.logistic import likelihood_ratio_p, logistic_fit

    x = np.linspace(-3, 3, 40)
    y = (x > 0).astype(float)
    X = np.column_stack([np.ones_like(x), x])
    fit = logistic_fit(X, y)
    assert fit.converged and np.isfinite(fit.coef).all() and fit.coef[1] > 5
    assert fit.coef[0] == pytest.approx(0, abs=1e-6)  # symmetric: the curve crosses 1/2 at 0
    assert 2 * norm.sf(fit.coef[1] / fit.se[1]) > 0.01
    assert likelihood_ratio_p(X, y, 1) < 1e-6
    assert likelihood_ratio_p(X, np.full(40, 0.5), 1) == pytest.approx(1.0)


def test_likelihood_ratio_p_refits_with_the_coefficient_held_at_zero():
    from scipy.optimize import minimize
    from scipy.stats import chi2

    from limacot.stats.logistic import likelihood_ratio_p

    rng = np.random.default_rng(2)
    x = rng.normal(size=80)
    y = rng.choice([0.0, 0.5, 1.0], size=80)  # fractional outcomes (ties as halves) are allowed
    X = np.column_stack([np.ones_like(x), x])
    objective = _firth_objective(X, y)
    full = minimize(objective, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    null = minimize(lambda b: objective(np.array([b[0], 0.0])), np.zeros(1), method="BFGS", options={"gtol": 1e-10})
    assert likelihood_ratio_p(X, y, 1) == pytest.approx(chi2.sf(2 * (null.fun - full.fun), 1), rel=1e-5)


def test_weighted_fits_equal_fits_on_repeated_rows_and_unidentifiable_ones_are_nan():
    from limacot.stats.logistic import logistic_coefs, logistic_fit

    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 0.5])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.5])
    X = np.column_stack([np.ones_like(x), x])
    counts = np.array([[1, 2, 0, 3, 1, 1], [0, 0, 4, 0, 0, 2], [0, 0, 0, 6, 0, 0]])
    coefs = logistic_coefs(X, y, counts)
    rows = np.repeat(np.arange(6), counts[0])
    assert coefs[0] == pytest.approx(logistic_fit(X[rows], y[rows]).coef, abs=1e-6)
    assert np.isfinite(coefs[1]).all()         # two distinct x values: a slope is identifiable
    assert np.isnan(coefs[2]).all()            # one x value only: no slope to fit


def test_bootstrap_intervals_share_the_resamples_of_bootstrap_interval():
    from limacot.stats.bootstrap import bootstrap_intervals, resampled_ratio

    values = np.random.default_rng(4).random(30)
    mean = resampled_mean(values)
    both = bootstrap_intervals(lambda index: np.column_stack([mean(index), 2 * mean(index)]), 30,
                               resamples=400, seed=9)
    one = bootstrap_interval(mean, 30, resamples=400, seed=9)
    assert both[0] == one
    assert (both[1].low, both[1].high) == pytest.approx((2 * one.low, 2 * one.high))
    nan = bootstrap_intervals(lambda index: np.where(index[:, :1] == 0, np.nan, 1.0), 30, resamples=400)
    assert np.isnan(nan[0].low)                # a failed resample is never dropped silently
    ratio = resampled_ratio([2, 1, 0], [2, 2, 1])
    assert ratio(np.array([[0, 1, 2], [0, 0, 1]])).tolist() == pytest.approx([3 / 5, 5 / 6])


def test_small_separated_resamples_fit_without_blowing_up():
    """Bootstrap resamples of a few prompts at two lengths, outcomes split by length: a full
    Newton step overshoots to where the information is singular; halving keeps every fit finite."""
    from limacot.stats.logistic import logistic_coefs

    x = np.array([-1.0, -1.0, 0.2, 1.0, 1.0, 1.0])
    y = np.array([0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    X = np.column_stack([np.ones_like(x), x])
    index = np.random.default_rng(0).integers(0, 6, size=(300, 6))
    counts = np.stack([np.bincount(row, minlength=6) for row in index])
    coefs = logistic_coefs(X, y, counts)
    identifiable = np.array([len(set(x[row > 0])) > 1 for row in counts])  # two x values or more
    assert np.isfinite(coefs[identifiable]).all() and np.isnan(coefs[~identifiable]).all()
    assert (coefs[identifiable][:, 1] > 0).all()
