"""`limacot eval compare` on hand-built eval outputs (no model): each metric's delta, CI and
p-value come from that metric's own test, the primary metric is the one list's, and there is
only one such list in the package."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import limacot
from limacot.eval.compare import compare_runs
from limacot.eval.scores import PRIMARY_METRICS, primary_metric
from limacot.stats.paired import mcnemar_exact, paired_permutation_f1

SRC = Path(limacot.__file__).resolve().parent
METRIC_NAMES = {"acc", "acc_norm", "f1", "exact_match_strict", "exact_match_flexible", "exact_match", "ll_per_char"}

# 120 docs, gold 70% class 0. A answers both classes (acc 0.65, macro-F1 0.64); B always says 0
# (acc 0.70, macro-F1 0.41): B is better on accuracy (not significantly: McNemar p 0.54) and
# worse on F1 (significantly: permutation p < 0.05).
GOLD = ([0] * 14 + [1] * 6) * 6
PRED_A = ([0] * 8 + [1] * 6 + [1] * 5 + [0]) * 6
PRED_B = [0] * 120


def write_run(folder: Path, preds: list[int], golds: list[int] = GOLD, task: str = "kobest_copa") -> Path:
    """An eval output folder as `limacot eval` writes it: results.json and samples/<task>.jsonl."""
    records = [{"doc_id": i, "id": str(i), "doc_hash": f"d{i}", "prompt_hash": f"p{i}", "choices": ["0", "1"],
                "pred": p, "gold": g, "acc": float(p == g), "correct": p == g}
               for i, (p, g) in enumerate(zip(preds, golds))]
    acc = sum(r["acc"] for r in records) / len(records)
    results = {"results": {task: {"alias": task, "acc,none": acc, "acc_stderr,none": 0.04, "f1,none": 0.5}},
               "limacot": {"model": folder.name}}
    (folder / "samples").mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (folder / "samples" / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records),
                                                       encoding="utf-8")
    return folder


@pytest.fixture()
def disagreeing(tmp_path) -> dict:
    return compare_runs(write_run(tmp_path / "a", PRED_A), write_run(tmp_path / "b", PRED_B), resamples=2000)


def test_each_metric_carries_its_own_test(disagreeing):
    copa = disagreeing["tasks"][0]
    assert copa["primary"] == "f1" == primary_metric(copa["metrics"])
    f1, acc = copa["metrics"]["f1"], copa["metrics"]["acc"]
    acc_a, acc_b = [p == g for p, g in zip(PRED_A, GOLD)], [p == g for p, g in zip(PRED_B, GOLD)]
    assert acc["diff"] == pytest.approx(0.05) and acc["test"] == "mcnemar"
    assert acc["p_value"] == pytest.approx(mcnemar_exact(acc_a, acc_b)["p_value"]) and acc["p_value"] > 0.5
    assert f1["diff"] == pytest.approx(0.41176 - 0.64194, abs=1e-4) and f1["ci_high"] < 0
    assert f1["test"] == "permutation"
    assert f1["p_value"] == paired_permutation_f1(GOLD, PRED_A, PRED_B, resamples=2000) and f1["p_value"] < 0.05
    assert f1["p_holm"] == f1["p_value"] and acc["p_holm"] is None  # Holm over the tasks' primary tests


def test_permutation_p_is_exact_on_a_small_case():
    # 4 docs: 2^4 swaps, only "no swap" and "swap all" reach |F1(B) - F1(A)| = 1
    assert paired_permutation_f1([0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]) == pytest.approx(2 / 16)
    assert paired_permutation_f1([0, 1, 1], [0, 1, 0], [0, 1, 0]) == 1.0


def test_holm_runs_over_the_primary_tests_of_the_tasks(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, PRED_A)
    write_run(b, PRED_B)
    for folder, preds in ((a, PRED_A), (b, PRED_B)):  # a second task: accuracy only (no F1 reported)
        records = [{"doc_id": i, "doc_hash": f"d{i}", "prompt_hash": f"q{i}", "pred": p, "gold": g,
                    "acc": float(p == g), "correct": p == g} for i, (p, g) in enumerate(zip(preds, GOLD))]
        (folder / "samples" / "arc_challenge.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = compare_runs(a, b, resamples=500)
    rows = {row["task"]: row for row in result["tasks"]}
    assert rows["arc_challenge"]["primary"] == "acc" and set(rows["arc_challenge"]["metrics"]) == {"acc"}
    ps = sorted([rows["kobest_copa"]["metrics"]["f1"]["p_value"], rows["arc_challenge"]["metrics"]["acc"]["p_value"]])
    assert rows["kobest_copa"]["metrics"]["f1"]["p_holm"] == pytest.approx(min(1.0, 2 * ps[0]))


def _metric_lists(path: Path) -> list[tuple[int, list[str]]]:
    """(line, names) of every literal tuple/list/set in `path` naming two or more metrics."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in METRIC_NAMES]
            if len(names) >= 2:
                found.append((node.lineno, names))
    return found


def _defines(path: Path, names: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
               if isinstance(t, ast.Name)}
    defined |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    return defined & names


def test_one_primary_metric_list():
    """The primary metric of a task is defined once (limacot.eval.scores) and imported by
    compare, run and report: no other module lists metrics or defines a primary_metric."""
    home = SRC / "eval" / "scores.py"
    assert PRIMARY_METRICS[0] == "f1" and set(PRIMARY_METRICS) == METRIC_NAMES  # KoBEST's headline is F1
    assert [names for _, names in _metric_lists(home)] == [list(PRIMARY_METRICS)]
    others = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == home:
            continue
        if (lists := _metric_lists(path)) or (defs := _defines(path, {"PRIMARY_METRICS", "primary_metric"})):
            others[str(path.relative_to(SRC))] = lists or defs
    assert others == {}


def test_filtered_and_math_metrics_are_compared_doc_by_doc(tmp_path):
    """Per-doc 0/1 metrics under lm-eval filters (`exact_match,strict-match`) and the math tasks'
    strict/flexible exact match are accuracy-type: McNemar, the strict one the headline."""
    for folder, shift in (("a", 0), ("b", 1)):
        (tmp_path / folder / "samples").mkdir(parents=True)
        (tmp_path / folder / "results.json").write_text(json.dumps({"results": {}, "limacot": {"model": folder}}))
        for task, names in (("gsm8k_cot", ("exact_match,flexible-extract", "exact_match,strict-match")),
                            ("ko_gsm8k", ("exact_match_flexible", "exact_match_strict"))):
            records = [{"doc_id": i, "doc_hash": f"d{i}", "prompt_hash": f"p{i}",
                        **{name: float((i + shift * k) % 3 == 0) for k, name in enumerate(names, 1)}} for i in range(30)]
            (tmp_path / folder / "samples" / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = {row["task"]: row for row in compare_runs(tmp_path / "a", tmp_path / "b", resamples=200)["tasks"]}
    assert rows["gsm8k_cot"]["primary"] == "exact_match,strict-match"
    assert set(rows["gsm8k_cot"]["metrics"]) == {"exact_match,strict-match", "exact_match,flexible-extract"}
    assert rows["ko_gsm8k"]["primary"] == "exact_match_strict"
    assert all(m["test"] == "mcnemar" for row in rows.values() for m in row["metrics"].values())
