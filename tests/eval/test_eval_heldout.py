"""The held-out CoT task (kocot_heldout) through the real harness on the tiny LLaMA: each doc's
score is its reference answer's log-likelihood per character, zero-shot whatever the run's
few-shot count, and two runs are compared with a paired permutation test of the mean."""

from __future__ import annotations

import json

import pytest
import torch

from limacot.errors import DataError
from limacot.eval.compare import compare_runs
from limacot.eval.config import EvalConfig
from limacot.eval.harness import build_lm, run_eval
from limacot.eval.scores import metric_test
from limacot.eval.task_data import read_local
from limacot.stats.paired import paired_permutation_mean

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROWS = [{"source": "사과 3개와 배 2개가 있습니다. 과일은 모두 몇 개인가요?", "rationale": "3 + 2 = 5이다.", "target": "5"},
        {"source": "월요일 다음 날은 무슨 요일인가요?", "rationale": "월요일 다음 날은 화요일이다.", "target": "화요일"},
        {"source": "10에서 4를 빼면 얼마인가요?", "rationale": "10 - 4 = 6이다.", "target": 6}]


def _heldout_dir(root, rows=ROWS, text: str | None = None) -> str:
    path = root / "data" / "kocot_heldout" / "test.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(text if text is not None else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return str(root / "data")


def _answer_ll(model, tokenizer, context: str, continuation: str) -> float:
    """The continuation's log-likelihood as lm-eval splits it: whole text encoded once, the
    context's tokens first."""
    whole = tokenizer.encode(context + continuation, add_special_tokens=False)
    start = len(tokenizer.encode(context, add_special_tokens=False))
    ids = torch.tensor([whole])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    return float(sum(logprobs[i - 1, whole[i]] for i in range(start, len(whole))))


def test_each_doc_scores_its_reference_answer_zero_shot(tiny_model, tiny_tokenizer, tmp_path):
    """The record's target is the answer as training renders a KoCoT row (the `ko` style), and
    ll_per_char its log-likelihood after the bare question (no few-shot examples although the
    run asks for 5) divided by the answer's length."""
    data = _heldout_dir(tmp_path)
    cfg = EvalConfig(tasks=["kocot_heldout"], num_fewshot=5, data_dir=data, max_length=512, batch_size=2)
    run_eval(cfg, tmp_path / "out", lm=build_lm(cfg, tiny_model, tiny_tokenizer))
    records = [json.loads(line) for line in (tmp_path / "out" / "samples" / "kocot_heldout.jsonl").read_text().splitlines()]
    assert [r["target"] for r in records] == ["3 + 2 = 5이다.\n따라서 정답은 5입니다.",
                                             "월요일 다음 날은 화요일이다.\n따라서 정답은 화요일입니다.",
                                             "10 - 4 = 6이다.\n따라서 정답은 6입니다."]
    for row, record in zip(ROWS, records):
        expected = _answer_ll(tiny_model, tiny_tokenizer, f"질문: {row['source']}\n답변:", " " + record["target"])
        assert record["loglikelihood"] == pytest.approx(expected, abs=1e-3)
        assert record["ll_per_char"] == pytest.approx(expected / len(record["target"]), abs=1e-5)
        assert "correct" not in record  # a continuous score has no right or wrong
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["results"]["kocot_heldout"]["ll_per_char,none"] == pytest.approx(
        sum(r["ll_per_char"] for r in records) / len(records))


@pytest.mark.parametrize("text, field, expected", [
    ('{"source": "q", "target": "5"}\n', "rationale", "a 'rationale' column"),
    ('{"source": "q", "rationale": "r", "target": " "}\n', "target", "non-empty text"),
    ('{"source": "q", "rationale": "r", "target": "5"}\n{"source": "", "rationale": "r", "target": "5"}\n',
     "source", "non-empty text"),
])
def test_a_bad_row_is_named_by_file_line_and_field(tmp_path, text, field, expected):
    data = _heldout_dir(tmp_path, text=text)
    with pytest.raises(DataError) as err:
        read_local("kocot_heldout", data)
    assert err.value.field == field and expected in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "data" / "kocot_heldout" / "test.jsonl") + ":line")


def _write_ll_run(folder, scores: list[float]):
    (folder / "samples").mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"results": {"kocot_heldout": {
        "ll_per_char,none": sum(scores) / len(scores), "ll_per_char_stderr,none": 0.1}}, "limacot": {"model": folder.name}}))
    records = [{"doc_id": i, "doc_hash": f"d{i}", "prompt_hash": f"p{i}", "target": "t", "loglikelihood": s * 10,
                "ll_per_char": s} for i, s in enumerate(scores)]
    (folder / "samples" / "kocot_heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_two_runs_are_compared_on_the_mean_per_doc_score(tmp_path):
    """B is better on 11 of 12 docs: the delta is the mean difference, tested by swapping the two
    scores of a doc (not McNemar, which would need 0/1 scores)."""
    a = [-2.0 - 0.05 * i for i in range(12)]
    b = [x + 0.3 for x in a[:11]] + [a[11] - 0.1]
    row = compare_runs(_write_ll_run(tmp_path / "a", a), _write_ll_run(tmp_path / "b", b), resamples=2000)["tasks"][0]
    m = row["metrics"]["ll_per_char"]
    assert row["primary"] == "ll_per_char" and m["test"] == metric_test("ll_per_char") == "permutation"
    assert m["diff"] == pytest.approx(sum(b) / 12 - sum(a) / 12)
    assert m["ci_low"] > 0
    assert m["p_value"] == paired_permutation_mean(a, b, resamples=2000) < 0.01


def test_permutation_of_the_mean_is_exact_on_a_small_case():
    """Three docs, all favouring B: 2 of the 8 sign patterns are as extreme (p = 0.25)."""
    assert paired_permutation_mean([-2.0, -2.1, -1.9], [-1.5, -1.6, -1.4]) == pytest.approx(0.25)
    assert paired_permutation_mean([1.0, 2.0], [1.0, 2.0]) == 1.0
    with pytest.raises(ValueError):
        paired_permutation_mean([1.0], [1.0, 2.0])


def test_the_run_names_the_tasks_that_stay_zero_shot():
    """The few-shot count a run states names the tasks that ignore it (their YAML fixes 0-shot),
    through groups too; the eval table's caption and `limacot run --dry-run` use this text."""
    from limacot.eval.scores import fewshot_label

    assert fewshot_label(5, ["kocot_heldout", "kobest_copa"]) == "5-shot (kocot_heldout: 0-shot, fixed by the task)"
    assert fewshot_label(5, ["kobest"]) == "5-shot"
    assert fewshot_label(0, ["kocot_heldout"]) == "0-shot"
