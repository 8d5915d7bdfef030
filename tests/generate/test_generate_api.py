"""Reference answers from an OpenAI-compatible server (`limacot generate --model openai:...`):
against a scripted server (retries, the cache on resume and rerun, decoding fields, the key)
and once end to end against `transformers serve`, judged with `limacot judge --a OUT`."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from conftest import build_tiny_llama, build_tiny_tokenizer
from limacot.cli import app
from limacot.generate.api import API_CACHE, generate_api
from limacot.generate.config import GenerationSettings
from limacot.models.api import ApiCallError, ApiOptions
from serving import transformers_serve

KEY = "sk-test-SECRET-0123456789abcdef"
runner = CliRunner()
FAST = ApiOptions(timeout=0.5, max_retries=5, backoff=0.01, max_backoff=0.2)


def write_prompts(path, prompts: dict[str, str]):
    path.write_text("".join(json.dumps({"id": pid, "prompt": text}, ensure_ascii=False) + "\n"
                            for pid, text in prompts.items()), encoding="utf-8")
    return path


PROMPTS = {"p1": "Capital of France?", "p2": "한국의 수도는?", "p3": "2+3?"}


def echo_answer(body: dict) -> str:
    """The scripted server's answer: which prompt it answers, so rows can be checked per prompt."""
    return f"  answer to {body['messages'][-1]['content']}  "


def rows_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "generations.jsonl").read_text(encoding="utf-8").splitlines()]


def test_retries_429_and_5xx_and_writes_a_local_models_layout(server_factory, tmp_path):
    server = server_factory(["429", "500", "ok"], reply=echo_answer)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    rows = generate_api(f"openai:ref-model@{server.url}", prompts, tmp_path / "G",
                        GenerationSettings(max_new_tokens=32, greedy=True, seed=5), FAST, concurrency=1)
    assert [r["id"] for r in rows] == ["p1", "p2", "p3"] == [r["id"] for r in rows_of(tmp_path / "G")]
    assert rows[1] == {"id": "p2", "prompt": "한국의 수도는?", "answer": "answer to 한국의 수도는?", "tokens": 9,
                       "finish_reason": "stop"}
    assert len(server.requests) == 5  # p1 took three attempts
    bodies = [r["body"] for r in server.requests[2:]]
    assert [b["seed"] for b in bodies] == [5, 6, 7]  # prompt i is asked with seed + i, as a local model samples it
    assert all(b["max_tokens"] == 32 and b["temperature"] == 0 and "top_p" not in b and "response_format" not in b
               for b in bodies)
    settings = json.loads((tmp_path / "G" / "settings.json").read_text())
    assert settings["model"] == {"kind": "openai", "model": "ref-model", "endpoint": f"{server.url}/v1/chat/completions"}
    assert settings["request"] == {"max_tokens": 32, "temperature": 0} and settings["greedy"] is True


def test_lima_sampling_sends_temperature_and_top_p_and_says_the_penalty_is_not_sent(server_factory, tmp_path, caplog):
    server = server_factory()
    prompts = write_prompts(tmp_path / "p.jsonl", {"p1": "Hi?"})
    with caplog.at_level(logging.WARNING, logger="limacot.generate.api"):
        generate_api(f"openai:m@{server.url}", prompts, tmp_path / "G", GenerationSettings(max_new_tokens=8), FAST)
    body = server.requests[0]["body"]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.7, 0.9, 8, 0)
    assert "repetition_penalty" not in body and "no repetition penalty" in caplog.text and "1.2" in caplog.text


def test_resume_and_rerun_are_served_from_the_cache(server_factory, tmp_path):
    """A run that fails on its third prompt keeps the two answers; --resume asks only the third,
    and a rerun without --resume (the file starts over) asks nothing."""
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    failing = server_factory(["ok", "ok"], default="500", reply=echo_answer)
    spec = f"openai:m@{failing.url}"
    settings = GenerationSettings(max_new_tokens=16, greedy=True)
    with pytest.raises(ApiCallError, match=r"generation request to .* failed after 1 attempt; last error: HTTP 500"):
        generate_api(spec, prompts, tmp_path / "G", settings, FAST.model_copy(update={"max_retries": 0}),
                     concurrency=1)
    assert [r["id"] for r in rows_of(tmp_path / "G")] == ["p1", "p2"] and len(failing.requests) == 3
    failing.default = "ok"
    rows = generate_api(spec, prompts, tmp_path / "G", settings, FAST, resume=True)
    assert [r["answer"] for r in rows] == [f"answer to {text}" for text in PROMPTS.values()]
    assert len(failing.requests) == 4  # only p3 was asked again
    again = generate_api(spec, prompts, tmp_path / "G", settings, FAST)  # no resume: rewritten from the cache
    assert again == rows == rows_of(tmp_path / "G") and len(failing.requests) == 4
    assert len((tmp_path / "G" / API_CACHE).read_text().splitlines()) == 3
    changed = generate_api(spec, prompts, tmp_path / "G", settings.model_copy(update={"max_new_tokens": 17}), FAST)
    assert len(changed) == 3 and len(failing.requests) == 7  # other decoding: other requests, asked afresh
    with pytest.raises(Exception, match=r"--resume: .* was generated with different max_new_tokens"):
        generate_api(spec, prompts, tmp_path / "G", settings, FAST, resume=True)


def test_the_key_is_sent_but_never_written_printed_or_logged(server_factory, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MY_REF_KEY", KEY)
    server = server_factory(default="echo-key")
    prompts = write_prompts(tmp_path / "p.jsonl", {"p1": "Hi?"})
    with caplog.at_level(logging.DEBUG):
        result = runner.invoke(app, ["generate", "--model", f"openai:m@{server.url}", "--prompts", str(prompts),
                                     "--out", str(tmp_path / "G"), "--api-key-env", "MY_REF_KEY", "--greedy"])
    assert result.exit_code == 0, result.output
    assert server.requests[0]["auth"] == f"Bearer {KEY}"
    written = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "G").iterdir())
    assert "***" in written  # the echoed key was there, and was removed
    for text in (written, result.output, caplog.text):
        assert KEY not in text and "SECRET" not in text


def test_a_refused_key_is_an_input_error_that_does_not_show_it(server_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_REF_KEY", KEY)
    server = server_factory(default="401-echo")
    prompts = write_prompts(tmp_path / "p.jsonl", {"p1": "Hi?"})
    result = runner.invoke(app, ["generate", "--model", f"openai:m@{server.url}", "--prompts", str(prompts),
                                 "--out", str(tmp_path / "G"), "--api-key-env", "MY_REF_KEY"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and len(server.requests) == 1 and "Traceback" not in result.output
    assert "HTTP 401" in message and "$MY_REF_KEY" in message and KEY not in message and "SECRET" not in message


@pytest.fixture(scope="module")
def served_chat_model(tmp_path_factory):
    """(base URL, model path, log) of `transformers serve` serving a tiny random chat model."""
    from limacot.data.templates import get_template

    folder = tmp_path_factory.mktemp("served")
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = get_template("chatml").jinja.replace("<|im_start|>", "<s>").replace("<|im_end|>", "</s>")
    build_tiny_llama(len(tokenizer)).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    with transformers_serve(folder / "model", folder / "serve.log") as url:
        yield url, folder / "model", folder / "serve.log"


def test_reference_answers_from_transformers_serve_are_judged_like_a_local_models(served_chat_model, tmp_path):
    url, model, log = served_chat_model
    prompts = write_prompts(tmp_path / "p.jsonl", {"p1": "What is the capital of France?", "p2": "사과 3개와 2개는?"})

    def posts() -> int:
        return log.read_text().count("POST /v1/chat/completions")

    before = posts()
    args = ["generate", "--model", f"openai:{model}@{url}", "--prompts", str(prompts), "--out", str(tmp_path / "REF"),
            "--max-new-tokens", "6", "--greedy", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == ["p1", "p2"] and all(isinstance(r["answer"], str) for r in rows)
    assert all(r["finish_reason"] in ("stop", "length") for r in rows) and posts() - before == 2
    assert runner.invoke(app, args).exit_code == 0 and posts() - before == 2  # the rerun asked nothing
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "generations.jsonl").write_text("".join(
        json.dumps({"id": r["id"], "prompt": r["prompt"], "answer": "Paris."}) + "\n" for r in rows))
    judged = runner.invoke(app, ["judge", "--a", str(tmp_path / "REF"), "--b", str(tmp_path / "B"), "--judge",
                                 f"openai:{model}@{url}", "--json-mode", "off", "--max-tokens", "4", "--out",
                                 str(tmp_path / "J"), "--json"])
    assert judged.exit_code == 0, judged.output
    summary = json.loads(judged.stdout)
    assert summary["a"]["name"] == "REF" and summary["runs"][0]["n"] == 2 and summary["calls"]["made"] == 4
