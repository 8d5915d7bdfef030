"""limacot.stats.agreement: agreement, LIMA's tie-discounted accuracy, Cohen's and Fleiss' kappa
against hand-computed cases and scikit-learn; resampling items with all their rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from limacot.stats.agreement import (cohen_kappa, fleiss_kappa, item_weights, percent_agreement, tie_discounted,
                                     weighted_mean)
from limacot.stats.bootstrap import bootstrap_interval


def value(statistic, n: int) -> float:
    return float(statistic(np.arange(n)[None, :])[0])


def test_hand_cases():
    assert value(percent_agreement([0, 0, 1, 1], [0, 1, 1, 1]), 4) == 0.75
    # p_o = 3/4; shares a (1/2, 1/2), b (1/4, 3/4): p_e = 1/8 + 3/8 = 1/2 -> kappa 1/2
    assert value(cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1], 2), 4) == pytest.approx(0.5)
    # win/tie/loss = 0/1/2: (win, win) 1, (tie, win) 1/2, (win, loss) 0, (loss, loss) 1
    assert value(tie_discounted([0, 1, 0, 2], [0, 0, 2, 2], tie=1), 4) == pytest.approx(0.625)
    # K = 2: P = (1 + 1 + 0) / 3, p = (1/2, 1/2) -> (2/3 - 1/2) / (1/2) = 1/3
    assert value(fleiss_kappa([[2, 0], [0, 2], [1, 1]]), 3) == pytest.approx(1 / 3)


def test_cohen_kappa_matches_scikit_learn():
    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = rng.integers(0, 3, 30), rng.integers(0, 3, 30)
        assert value(cohen_kappa(a, b, 3), 30) == pytest.approx(cohen_kappa_score(a, b))


def test_fleiss_with_two_raters_is_scotts_pi():
    # Fleiss' kappa for K = 2 is Scott's pi: chance from the pooled shares of both raters
    a, b = [0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 0, 1]
    counts = [[(x == c) + (y == c) for c in range(3)] for x, y in zip(a, b)]
    pooled = np.bincount(a + b, minlength=3) / 12
    pi = (4 / 6 - (pooled ** 2).sum()) / (1 - (pooled ** 2).sum())
    assert value(fleiss_kappa(counts), 6) == pytest.approx(pi)
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 0], [1, 0]])


def test_kappa_undefined_when_one_label_only():
    assert np.isnan(value(cohen_kappa([0, 0, 0], [0, 0, 0], 3), 3))
    interval = bootstrap_interval(cohen_kappa([0, 0, 0], [0, 0, 0], 3), 3, resamples=50)
    assert np.isnan(interval.low) and np.isnan(interval.high)


def test_items_are_resampled_with_all_their_rows():
    weights = item_weights(np.array([[1, 1, 0]]), 3, np.array([0, 0, 1, 2]))
    assert weights.tolist() == [[1, 1, 2, 0]]  # item 1 drawn twice: its one row weighs 2; item 0's rows 1 each
    # two prompts, three identical labels each: the interval is as wide as two items allow, not six
    values, groups = [1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]
    by_item = bootstrap_interval(weighted_mean(values, groups), 2, resamples=4000)
    by_row = bootstrap_interval(weighted_mean(values), 6, resamples=4000)
    assert (by_item.value, by_item.low, by_item.high) == (0.5, 0.0, 1.0)
    assert by_row.low == pytest.approx(1 / 6)
