"""Prompt reading and answer generation on the tiny random LLaMA."""

from __future__ import annotations

import json

import pytest

from limacot.data.sources import read_prompts
from limacot.data.templates import get_template, prepare_tokenizer
from limacot.errors import DataError, LimacotInputError
from limacot.generation import GenerationSettings, answer, generate_file


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_read_prompts_from_every_layout(tmp_path):
    plain = read_prompts(write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Hi?", "id": 7}, {"prompt": "안녕?"}]))
    assert plain[0] == ("7", [{"role": "user", "content": "Hi?"}])
    assert plain[1][1][0]["content"] == "안녕?" and len(plain[1][0]) == 16
    lima = read_prompts(write_jsonl(tmp_path / "l.jsonl", [{"conversations": ["Only a question"]}]))
    assert lima[0][1] == [{"role": "user", "content": "Only a question"}]
    messages = read_prompts(write_jsonl(tmp_path / "m.jsonl", [{"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"}]}]))
    assert [m["role"] for m in messages[0][1]] == ["system", "user"]
    kocot = read_prompts(write_jsonl(tmp_path / "k.jsonl", [{"source": "2+3?", "rationale": "r", "target": 5}]))
    assert kocot[0][1] == [{"role": "user", "content": "2+3?"}]
    with pytest.raises(DataError, match=r"e.jsonl:line 1: field 'prompt'"):
        read_prompts(write_jsonl(tmp_path / "e.jsonl", [{"prompt": "  "}]))


@pytest.fixture()
def chat_model(tiny_model, tiny_tokenizer):
    import copy

    tokenizer = copy.deepcopy(tiny_tokenizer)
    prepare_tokenizer(tokenizer, "chatml")
    tokenizer.chat_template = get_template("chatml").jinja
    tiny_model.resize_token_embeddings(len(tokenizer))
    return tiny_model, tokenizer


def test_answer_reports_tokens_and_finish_reason(chat_model):
    model, tokenizer = chat_model
    messages = [{"role": "user", "content": "Hello world"}]
    model.generation_config.eos_token_id = None
    greedy = answer(model, tokenizer, messages, GenerationSettings(max_new_tokens=5, greedy=True))
    assert greedy["tokens"] == 5 and greedy["finish_reason"] == "length" and isinstance(greedy["answer"], str)
    sampled = [answer(model, tokenizer, messages, GenerationSettings(max_new_tokens=8), seed=3) for _ in range(2)]
    assert sampled[0] == sampled[1]  # same seed, same sample
    with pytest.raises(LimacotInputError):
        GenerationSettings(max_new_tokens=0)


def test_generate_file_writes_one_line_per_prompt(chat_model, tmp_path):
    model, tokenizer = chat_model
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Hello"}, {"prompt": "사과 3개"}])
    rows = generate_file(str(tmp_path / "model"), prompts, tmp_path / "out", GenerationSettings(max_new_tokens=4))
    written = [json.loads(line) for line in (tmp_path / "out" / "generations.jsonl").read_text().splitlines()]
    assert written == rows and [r["prompt"] for r in rows] == ["Hello", "사과 3개"]
    assert all(set(r) == {"id", "prompt", "answer", "tokens", "finish_reason"} for r in rows)
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["top_p"] == 0.9 and settings["temperature"] == 0.7 and settings["model"]["kind"] == "local"
