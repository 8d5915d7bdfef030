"""Prompt reading and answer generation on the tiny random LLaMA."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from limacot.cli import app
from limacot.data.sources import read_prompts
from limacot.data.templates import get_template, prepare_tokenizer
from limacot.errors import DataError, LimacotInputError
from limacot.generate.generation import GenerationSettings, answer, generate_file


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
    with pytest.raises(ValidationError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=0)
    with pytest.raises(ValidationError, match="sampling needs temperature > 0"):
        GenerationSettings(temperature=0)
    assert GenerationSettings(greedy=True, temperature=0).greedy  # greedy decoding does not sample


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
    assert settings["prompt_format"] == "chat"  # the tokenizer's chat template


# --- batching, incremental writes, resume ----------------------------------------------------

CONVERSATIONS = [[{"role": "user", "content": text}] for text in
                 ["Hello world", "민수는 사과 3개를 가지고 있었고 2개를 더 샀습니다. 모두 몇 개입니까?",
                  "What is the capital of France? Answer in one word.", "So the answer is 42."]]


@pytest.mark.parametrize("greedy", [True, False], ids=["greedy", "sampled"])
def test_batching_does_not_change_answers(chat_model, greedy):
    from limacot.generate.generation import answer_batch

    model, tokenizer = chat_model
    settings = GenerationSettings(max_new_tokens=12, greedy=greedy, seed=7)
    alone = [answer(model, tokenizer, m, settings, seed=7 + i) for i, m in enumerate(CONVERSATIONS)]
    together = answer_batch(model, tokenizer, CONVERSATIONS, settings, seeds=[7, 8, 9, 10])
    assert together == alone
    assert answer_batch(model, tokenizer, CONVERSATIONS[2:], settings, seeds=[9, 10]) == alone[2:]
    if not greedy:  # each row has its own generator: other seeds, other samples
        assert answer_batch(model, tokenizer, CONVERSATIONS, settings, seeds=[70, 80, 90, 100]) != alone


def test_rows_are_cut_after_their_first_stop_token(tiny_tokenizer):
    from limacot.generate.generation import _reply

    eos, pad = tiny_tokenizer.eos_token_id, tiny_tokenizer.pad_token_id
    hello = tiny_tokenizer("Hello", add_special_tokens=False)["input_ids"]
    # a row that ended early is followed by batch padding; a row that did not is cut by max_new_tokens
    assert _reply(hello + [eos, pad, pad], [eos], tiny_tokenizer) == {"answer": "Hello", "tokens": len(hello) + 1,
                                                                      "finish_reason": "stop"}
    assert _reply(hello + [eos, eos], [eos], tiny_tokenizer)["tokens"] == len(hello) + 1  # pad == eos
    assert _reply(hello, [eos], tiny_tokenizer) == {"answer": "Hello", "tokens": len(hello), "finish_reason": "length"}


@pytest.fixture()
def saved_model(chat_model, tmp_path):
    model, tokenizer = chat_model
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    return str(tmp_path / "model")


def prompts_file(tmp_path, n):
    texts = [m[0]["content"] for m in CONVERSATIONS]
    return write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"{texts[i % 4]} ({i})"} for i in range(n)])


def test_resume_answers_only_the_rest_and_matches_a_fresh_run(saved_model, tmp_path):
    prompts = prompts_file(tmp_path, 5)
    settings = GenerationSettings(max_new_tokens=6)
    fresh = generate_file(saved_model, prompts, tmp_path / "fresh", settings, batch_size=3)
    generate_file(saved_model, prompts, tmp_path / "run", settings, limit=2)
    with open(tmp_path / "run" / "generations.jsonl", "ab") as handle:
        handle.write(b'{"id": "torn", "prom')  # what kill -9 mid-write would leave
    seen = []
    rows = generate_file(saved_model, prompts, tmp_path / "run", settings, on_answer=seen.append, resume=True,
                         batch_size=2)
    assert len(seen) == 3 and rows == fresh
    written = [json.loads(line) for line in (tmp_path / "run" / "generations.jsonl").read_text().splitlines()]
    assert written == fresh
    again = []
    generate_file(saved_model, prompts, tmp_path / "run", settings, on_answer=again.append, resume=True)
    assert again == []
    restarted = generate_file(saved_model, prompts, tmp_path / "run", settings, limit=1)  # no --resume: start over
    assert len((tmp_path / "run" / "generations.jsonl").read_text().splitlines()) == 1 == len(restarted)


def test_resume_refuses_other_settings_and_duplicate_ids(saved_model, tmp_path):
    prompts = prompts_file(tmp_path, 2)
    generate_file(saved_model, prompts, tmp_path / "run", GenerationSettings(max_new_tokens=4))
    with pytest.raises(LimacotInputError, match=r"--resume: .* different max_new_tokens"):
        generate_file(saved_model, prompts, tmp_path / "run", GenerationSettings(max_new_tokens=5), resume=True)
    twice = write_jsonl(tmp_path / "twice.jsonl", [{"prompt": "Same"}, {"prompt": "Other"}, {"prompt": "Same"}])
    with pytest.raises(LimacotInputError, match=r"prompts 1 and 3 have the same id"):
        generate_file(saved_model, twice, tmp_path / "dup", GenerationSettings(max_new_tokens=4))
    with pytest.raises(LimacotInputError, match="batch size"):
        generate_file(saved_model, prompts, tmp_path / "x", GenerationSettings(), batch_size=0)


SLOW_CLI = """
import sys, time
import limacot.generate.generation as generation
original = generation.answer_batch
def slow(*args, **kwargs):
    rows = original(*args, **kwargs)
    time.sleep(0.5)  # each batch takes at least 0.5 s, so the test can kill between writes
    return rows
generation.answer_batch = slow
from limacot.cli import app
sys.argv = ["limacot"] + sys.argv[1:]
app()
"""


def test_kill_9_then_resume_gives_every_answer_once(saved_model, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from typer.testing import CliRunner

    from limacot.cli import app
    from limacot.generate.generation import answer_batch
    from limacot.models.loading import load_model, load_tokenizer

    prompts, out = prompts_file(tmp_path, 8), tmp_path / "G"
    args = ["generate", "--model", saved_model, "--prompts", str(prompts), "--out", str(out), "--max-new-tokens", "6",
            "--seed", "3"]
    process = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = out / "generations.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lines.exists() and lines.read_bytes().count(b"\n") >= 1):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = lines.read_bytes().count(b"\n")
    assert 1 <= killed_at < 8
    result = CliRunner().invoke(app, args + ["--resume", "--batch-size", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    expected_ids = [pid for pid, _ in read_prompts(prompts)]
    assert [r["id"] for r in rows] == expected_ids
    model, tokenizer = load_model(saved_model), load_tokenizer(saved_model)
    messages = [m for _, m in read_prompts(prompts)]
    fresh = answer_batch(model, tokenizer, messages, GenerationSettings(max_new_tokens=6, seed=3),
                         seeds=[3 + i for i in range(8)])
    assert [{k: r[k] for k in ("answer", "tokens", "finish_reason")} for r in rows] == fresh


def test_batches_hold_prompts_of_similar_length_and_the_file_keeps_prompt_order(saved_model, tmp_path, monkeypatch):
    import limacot.generate.generation as generation

    texts = ["short", "a much longer prompt " * 6, "mid length prompt here", "a much longer prompt " * 5]
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": str(i), "prompt": t} for i, t in enumerate(texts)])
    batches, original = [], generation.answer_batch

    def spy(model, tokenizer, conversations, settings, **kwargs):
        batches.append([m[-1]["content"] for m in conversations])
        return original(model, tokenizer, conversations, settings, **kwargs)

    monkeypatch.setattr(generation, "answer_batch", spy)
    rows = generate_file(saved_model, prompts, tmp_path / "out", GenerationSettings(max_new_tokens=3), batch_size=2)
    assert batches == [[texts[1], texts[3]], [texts[2], texts[0]]]  # longest first, the two long ones together
    written = [json.loads(line)["id"] for line in (tmp_path / "out" / "generations.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == written == ["0", "1", "2", "3"]


def test_generate_reads_a_config_file_and_flags_override_it(saved_model, tmp_path, monkeypatch):
    """`limacot generate --config`: the YAML's paths are relative to it, a flag given wins over its key."""
    folder = tmp_path / "configs"
    folder.mkdir()
    prompts_file(folder, 3)
    (folder / "gen.yaml").write_text(yaml.safe_dump({"model": "../model", "prompts": "prompts.jsonl", "seed": 3,
                                                     "max_new_tokens": 6, "greedy": True, "limit": 2}))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["generate", "--config", "configs/gen.yaml", "--max-new-tokens", "2",
                                      "--out", "G", "--json"])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "G" / "settings.json").read_text())
    assert settings["prompts"] == str(folder / "prompts.jsonl") and settings["model"]["source"] == saved_model
    assert {k: settings[k] for k in ("max_new_tokens", "greedy", "seed")} == {"max_new_tokens": 2, "greedy": True,
                                                                           "seed": 3}
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and all(row["tokens"] <= 2 for row in rows)


def test_generate_config_errors_name_the_file_key_and_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen.yaml").write_text("prompts: p.jsonl\ntop_k: 5\n")
    result = CliRunner().invoke(app, ["generate", "--config", "gen.yaml", "--batch-size", "0", "--out", "o"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "gen.yaml: top_k: unknown key; valid keys:" in message and "max_new_tokens" in message
    assert "--batch-size: expected greater than or equal to 1 (got 0)" in message
    (tmp_path / "bare.yaml").write_text("max_new_tokens: 4\n")
    result = CliRunner().invoke(app, ["generate", "--config", "bare.yaml", "--out", "o"])
    assert result.exit_code == 2 and "bare.yaml: prompts: required key missing (or give --prompts)" in result.output
    result = CliRunner().invoke(app, ["generate", "--out", "o"])
    assert result.exit_code == 2 and "--prompts is required" in result.output
