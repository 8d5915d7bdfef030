"""Paired statistics checked against scipy/scikit-learn and hand-computed cases."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from limacot.eval.stats import holm, macro_f1_metric, mcnemar_exact, paired_bootstrap, paired_diff, \
    paired_f1_diff, seed_summary


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
    first = paired_bootstrap(paired_diff(a, b), 200, resamples=2000, seed=7)
    again = paired_bootstrap(paired_diff(a, b), 200, resamples=2000, seed=7)
    other = paired_bootstrap(paired_diff(a, b), 200, resamples=2000, seed=8)
    assert first == again and (first.low, first.high) != (other.low, other.high)
    assert first.diff == pytest.approx(b.mean() - a.mean())
    assert first.low <= first.diff <= first.high
    # the paired CI of a difference is narrower than the sum of the two unpaired ones would be
    assert first.high - first.low < 4 * 1.96 * np.sqrt(0.25 / 200)
    same = paired_bootstrap(paired_diff(a, a), 200, resamples=500, seed=0)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0)


def test_paired_f1_diff_point_value():
    from sklearn.metrics import f1_score

    golds, pa, pb = [0, 1, 1, 0, 1], [0, 0, 1, 1, 1], [0, 1, 1, 0, 0]
    ci = paired_bootstrap(paired_f1_diff(golds, pa, pb), 5, resamples=200, seed=0)
    assert ci.diff == pytest.approx(f1_score(golds, pb, average="macro") - f1_score(golds, pa, average="macro"))


def test_seed_summary():
    values = [0.5, 0.6, 0.8]
    summary = seed_summary(values)
    assert summary["mean"] == pytest.approx(statistics.mean(values))
    assert summary["std"] == pytest.approx(statistics.stdev(values))
    assert seed_summary([0.7]) == {"mean": 0.7, "std": 0.0, "n": 1, "values": [0.7]}


def test_a_seed_independent_task_ran_once():
    """Fixed exemplars: the task runs with the first few-shot seed only, and its summary says
    one run (n = 1), not k copies of one value (sd 0 over k seeds)."""
    from types import SimpleNamespace

    from limacot.eval.harness import _seed_variance

    runs = [(1234, {"results": {"gsm8k": {"exact_match,none": 0.5}, "kobest_copa": {"acc,none": 0.6}}}),
            (1235, {"results": {"kobest_copa": {"acc,none": 0.6}}}),
            (1236, {"results": {"kobest_copa": {"acc,none": 0.6}}})]
    plan = SimpleNamespace(leaves=["gsm8k", "kobest_copa"], seed_independent={"gsm8k"})
    variance = _seed_variance(runs, plan)
    assert variance["gsm8k"]["exact_match"] == {"mean": 0.5, "std": 0.0, "n": 1, "values": [0.5]}
    assert variance["kobest_copa"]["acc"]["n"] == 3


def test_summary_tells_ran_once_from_identical_and_names_partial_groups():
    from limacot.eval.scores import summary_markdown

    info = {"model": "m", "backend": "fast", "num_fewshot": 5, "limit": None, "data_dir": "data",
            "seeds": [1234, 1235, 1236], "wall_seconds": 1.0,
            "seed_variance": {"gsm8k": {"exact_match": seed_summary([0.5])},
                              "kobest_copa": {"acc": seed_summary([0.6, 0.6, 0.6])},
                              "kmmlu_criminal_law": {"acc": seed_summary([0.3, 0.32, 0.31])}}}
    results = {"gsm8k": {"exact_match,none": 0.5}, "kobest_copa": {"acc,none": 0.6},
               "kmmlu": {"acc,none": 0.3}, "kmmlu_criminal_law": {"acc,none": 0.3}}
    lines = summary_markdown({"limacot": info, "results": results}).splitlines()
    row = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert "ran once" in row["gsm8k"] and "±" not in row["gsm8k"]
    assert "0.6000 ± 0.0000 (k=3, identical)" in row["kobest_copa"]
    assert "0.3100 ± 0.0100 (k=3)" in row["kmmlu_criminal_law"]
    assert "kmmlu (1/45 subjects: criminal_law)" in row
