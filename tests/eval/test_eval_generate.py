"""The generative CoT tasks through the real harness path on the tiny LLaMA: planted generations
scored strict and flexible (tokenization, stop sequences, decoding, extraction and scoring are
the real ones; only the model's `generate` is replaced), and generation batched as the config
says (batch_size per `generate` call, left padding, the config's dtype)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from limacot.eval.config import EvalConfig
from limacot.eval.harness import build_lm, run_eval

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# question -> (gold, planted generation, strict score, flexible score)
PLANTED = {
    "민수는 하루에 사과를 9개씩 이틀 동안 모았습니다. 모두 몇 개입니까?":
        ("18", "하루에 9개씩 이틀이므로 9 * 2 = 18개입니다. 따라서 정답은 18입니다.\n\n질문: 다음 문제 99", 1.0, 1.0),
    "영희는 사탕 5개 중 2개를 먹었습니다. 몇 개가 남았습니까?":
        ("3", "5개에서 2개를 먹었으므로 5 + 2 = 7개입니다. 따라서 정답은 7입니다.", 0.0, 0.0),
    "철수는 35,000원짜리 신발 두 켤레를 샀습니다. 모두 얼마입니까?":
        ("70000", "35,000 * 2 = 70,000이므로 철수는 모두 70,000원을 냈습니다.", 0.0, 1.0),
}


def _ko_gsm8k_dir(root, questions_and_golds) -> str:
    path = root / "data" / "ko_gsm8k" / "test.jsonl"
    path.parent.mkdir(parents=True)
    rows = [{"question": "q", "answer": "a", "kor_question": q, "kor_answer": "", "answer_s": gold}
            for q, gold in questions_and_golds]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(root / "data")


def test_planted_generations_are_scored_strict_and_flexible(tiny_model, tiny_tokenizer, tmp_path, monkeypatch):
    """Correct with the marker (1, 1); a wrong final answer (0, 0); the correct number last but no
    marker (0, 1). The first generation runs on past a stop sequence ("질문:") into a number
    that would make its flexible score wrong if the stop were not applied."""
    data = _ko_gsm8k_dir(tmp_path, [(q, gold) for q, (gold, *_) in PLANTED.items()])
    cfg = EvalConfig(tasks=["ko_gsm8k"], num_fewshot=1, data_dir=data, max_length=4096, max_gen_toks=64, batch_size=2)
    lm = build_lm(cfg, tiny_model, tiny_tokenizer)

    def planted_generate(input_ids, attention_mask=None, **kwargs):
        rows = []
        for ids in input_ids:
            context = tiny_tokenizer.decode(ids, skip_special_tokens=True)
            question = next(q for q in PLANTED if context.rstrip().endswith(f"질문: {q}\n답변:"))
            rows.append(tiny_tokenizer.encode(PLANTED[question][1], add_special_tokens=False))
        new = torch.full((len(rows), max(map(len, rows))), tiny_tokenizer.pad_token_id, dtype=torch.long)
        for r, tokens in enumerate(rows):
            new[r, : len(tokens)] = torch.tensor(tokens)
        return torch.cat([input_ids, new], dim=1)

    monkeypatch.setattr(lm.model, "generate", planted_generate)
    run = run_eval(cfg, tmp_path / "out", lm=lm)
    records = [json.loads(line) for line in (tmp_path / "out" / "samples" / "ko_gsm8k.jsonl").read_text().splitlines()]
    by_question = dict(zip(PLANTED, records))  # records keep the file's doc order
    for question, (gold, text, strict, flexible) in PLANTED.items():
        record = by_question[question]
        assert record["generation"] == text.split("질문:")[0]  # cut at the stop sequence
        assert (record["exact_match_strict"], record["exact_match_flexible"]) == (strict, flexible), question
        assert record["gold"] == gold and record["correct"] == bool(strict)
    assert [r["prediction"] for r in records] == ["18", "7", None]
    assert [r["prediction_flexible"] for r in records] == ["18", "7", "70000"]
    scores = run["results"]["ko_gsm8k"]
    assert scores["exact_match_strict,none"] == pytest.approx(1 / 3)
    assert scores["exact_match_flexible,none"] == pytest.approx(2 / 3)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| ko_gsm8k | exact_match_strict |" in summary and "| ko_gsm8k | exact_match_flexible |" in summary


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from conftest import build_tiny_llama, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    path = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_llama(len(tokenizer)).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("docs, batch_size", [(7, 3), (8, 8)])
def test_generation_runs_in_batches_of_the_config(tiny_dir, tmp_path, monkeypatch, docs, batch_size):
    """N docs take ceil(N / batch_size) `generate` calls (with 8 and 8: one, where progress
    chunks of 4 used to make two), left-padded, on the model in the config's dtype."""
    questions = [(f"사과가 {'아주 ' * (i % 4)}{i}개 있습니다. 몇 개입니까?", str(i)) for i in range(docs)]
    cfg = EvalConfig(model=str(tiny_dir), tasks=["ko_gsm8k"], num_fewshot=0, data_dir=_ko_gsm8k_dir(tmp_path, questions),
                     batch_size=batch_size, max_gen_toks=2, device="cpu", dtype="bfloat16")
    lm = build_lm(cfg)
    calls = []
    original = lm.model.generate

    def counting_generate(*args, **kwargs):
        calls.append((kwargs["input_ids"].shape[0], kwargs["attention_mask"].clone(), lm.model.dtype))
        return original(*args, **kwargs)

    monkeypatch.setattr(lm.model, "generate", counting_generate)
    run = run_eval(cfg, tmp_path / "out", lm=lm)
    assert len(calls) == math.ceil(docs / batch_size)
    assert sorted(rows for rows, _, _ in calls) == sorted([batch_size] * (docs // batch_size) +
                                                          ([docs % batch_size] if docs % batch_size else []))
    for _, mask, dtype in calls:
        assert dtype == torch.bfloat16
        assert torch.equal(mask, mask.sort(dim=1).values)  # zeros (padding) only on the left
    assert any(not bool(mask.all()) for _, mask, _ in calls)  # the contexts differ in length: some padding
    assert run["n-samples"]["ko_gsm8k"]["effective"] == docs
