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
