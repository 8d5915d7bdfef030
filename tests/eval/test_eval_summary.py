"""summary.md and the few-shot seed variance of an eval run."""

from __future__ import annotations

from limacot.stats.intervals import seed_summary


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


def _logged(doc_id: int, flt: str, answer: str, value: float) -> dict:
    """One lm-eval logged sample of a generative task with filters (as lm-eval's gsm8k logs them)."""
    return {"doc_id": doc_id, "doc": {"question": "q", "answer": "#### 18"}, "target": "18",
            "arguments": [("Q: q\nA:", {"until": ["Q:"]})], "resps": [[f"... The answer is {answer}."]],
            "filtered_resps": [answer], "filter": flt, "metrics": ["exact_match"], "exact_match": value,
            "doc_hash": f"d{doc_id}", "prompt_hash": f"p{doc_id}"}


def test_metrics_under_lm_eval_filters_keep_their_names():
    """An lm-eval task with filters logs each doc once per filter: one record per doc carries each
    filter's metric by lm-eval's name; results rows, seed variance, the primary metric and its
    test keep the filter apart."""
    from types import SimpleNamespace

    from limacot.eval.harness import _seed_variance
    from limacot.eval.scores import metric_rows, metric_test, primary_metric, sample_records

    samples = [_logged(0, "strict-match", "18", 1.0), _logged(0, "flexible-extract", "18", 1.0),
               _logged(1, "strict-match", "[invalid]", 0.0), _logged(1, "flexible-extract", "18", 1.0)]
    records = sample_records(samples, "generate_until", "gsm8k_cot")
    assert [r["doc_id"] for r in records] == [0, 1]
    assert records[1]["exact_match,strict-match"] == 0.0 and records[1]["exact_match,flexible-extract"] == 1.0
    assert records[1]["filtered"] == {"strict-match": "[invalid]", "flexible-extract": "18"}
    assert records[1]["generation"] == "... The answer is [invalid]." and records[1]["target"] == "18"
    assert [r["correct"] for r in records] == [True, False]  # the strict filter is the primary one
    results = {"gsm8k_cot": {"alias": "gsm8k_cot", "exact_match,strict-match": 0.5, "exact_match_stderr,strict-match":
                             0.5, "exact_match,flexible-extract": 1.0, "exact_match_stderr,flexible-extract": 0.0}}
    rows = {row["metric"]: row for row in metric_rows(results)}
    assert set(rows) == {"exact_match,strict-match", "exact_match,flexible-extract"}
    assert rows["exact_match,strict-match"]["stderr"] == 0.5 and rows["exact_match,strict-match"]["filter"] == "strict-match"
    assert primary_metric(rows) == "exact_match,strict-match" and metric_test("exact_match,flexible-extract") == "mcnemar"
    variance = _seed_variance([(1234, {"results": results})], SimpleNamespace(leaves=["gsm8k_cot"]))
    assert variance["gsm8k_cot"]["exact_match,flexible-extract"]["mean"] == 1.0
    assert variance["gsm8k_cot"]["exact_match,strict-match"]["mean"] == 0.5


def test_the_math_tasks_headline_is_strict_exact_match():
    from limacot.eval.scores import metric_test, primary_metric

    assert primary_metric({"exact_match_flexible", "exact_match_strict"}) == "exact_match_strict"
    assert metric_test("exact_match_strict") == metric_test("exact_match_flexible") == "mcnemar"
