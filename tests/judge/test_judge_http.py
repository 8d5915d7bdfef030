"""The HTTP judge against a small local server that misbehaves on purpose: 429, 500, garbage,
hangs, connections dropped mid-body, refused JSON mode, an echoed key. Retries are bounded, errors are clear, the key never
leaks, and a killed or failed run leaves nothing half-written. The server is tests/fault_server.py's
(`server_factory` in tests/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from limacot.cli import app
from limacot.errors import LimacotInputError
from limacot.judge.clients import HttpOptions, JudgeCallError, OpenAIJudge, chat_endpoint, parse_judge_spec
from test_judge_support import write_generations

KEY = "sk-test-SECRET-0123456789abcdef"
runner = CliRunner()


def client(server, sleeps=None, **options):
    settings = {"timeout": 0.5, "max_retries": 5, "backoff": 0.01, "max_backoff": 0.2, **options}
    return OpenAIJudge("judge-model", server.url, HttpOptions(**settings),
                       sleep=(sleeps.append if sleeps is not None else time.sleep))


MESSAGES = [{"role": "user", "content": "Which is better?"}]


def test_retries_429_500_garbage_and_a_hang_then_succeeds(server_factory):
    server = server_factory(["429", "500", "garbage", "hang", "ok"])
    sleeps: list[float] = []
    reply = client(server, sleeps).complete(MESSAGES)
    assert reply.text == '{"reason": "clearer", "verdict": "2"}' and reply.usage["prompt_tokens"] == 100
    assert len(server.requests) == 5 and len(sleeps) == 4
    assert sleeps[0] >= 0.05  # Retry-After of the 429 honoured
    assert all(later >= 0.0075 for later in sleeps[1:])  # exponential backoff with jitter (base 0.01)
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions" and body["model"] == "judge-model"
    assert body["temperature"] == 0 and body["response_format"] == {"type": "json_object"}


def test_gives_up_after_the_retry_budget_with_a_clear_error(server_factory):
    server = server_factory(default="500")
    with pytest.raises(JudgeCallError, match=r"failed after 3 attempts; last error: HTTP 500: internal error"):
        client(server, [], max_retries=2).complete(MESSAGES)
    assert len(server.requests) == 3


def test_connections_dropped_mid_body_are_retried_like_a_5xx(server_factory):
    server = server_factory(["cut-body", "reset", "hangup", "bad-status", "ok"])
    sleeps: list[float] = []
    reply = client(server, sleeps).complete(MESSAGES)
    assert reply.text == '{"reason": "clearer", "verdict": "2"}'
    assert len(server.requests) == 5 and len(sleeps) == 4
    cut = server_factory(default="cut-body")
    with pytest.raises(JudgeCallError, match=r"after 2 attempts; last error: connection dropped mid-response "
                                             r"\(20 bytes received"):
        client(cut, [], max_retries=1).complete(MESSAGES)


class FakeTime:
    """A clock that only the injected sleep moves: retries are tested without waiting."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def fake_time_client(server, fake: FakeTime, **options):
    settings = {"timeout": 0.5, "max_retries": 5, "backoff": 0.01, "max_backoff": 0.2, **options}
    return OpenAIJudge("judge-model", server.url, HttpOptions(**settings), sleep=fake.sleep, clock=fake.clock)


def test_backoff_is_capped_from_above_even_with_a_huge_retry_after(server_factory):
    server = server_factory(["429-forever", "500", "429-forever"], default="500")
    fake = FakeTime()
    with pytest.raises(JudgeCallError, match="failed after 9 attempts"):
        fake_time_client(server, fake, backoff=0.05, max_backoff=0.3, max_retries=8).complete(MESSAGES)
    assert len(server.requests) == 9 and len(fake.sleeps) == 8  # never more than max_retries + 1 attempts
    assert all(0 < delay <= 0.3 for delay in fake.sleeps)  # never above max_backoff (Retry-After: one day)
    assert fake.sleeps[0] == fake.sleeps[2] == 0.3  # ...and the long Retry-After does raise it to the cap
    assert 0.0375 <= fake.sleeps[1] <= 0.1 and fake.sleeps[-1] >= 0.225  # 0.05 x 2^(n-1), jittered, capped


def test_a_refused_json_mode_costs_one_resend_not_a_new_retry_budget(server_factory):
    server = server_factory(["500"], default="refuse-json-else-500")
    with pytest.raises(JudgeCallError, match="failed after 3 attempts"):
        client(server, [], max_retries=2).complete(MESSAGES)
    assert ["response_format" in r["body"] for r in server.requests] == [True, True, False, False]


def test_no_retry_starts_past_the_total_deadline(server_factory):
    server = server_factory(default="500")
    fake = FakeTime()
    with pytest.raises(JudgeCallError, match=r"gave up after 4 attempts .*--max-total-wait 100 s.*HTTP 500"):
        fake_time_client(server, fake, backoff=10, max_backoff=1000, max_retries=50,
                         max_total_wait=100).complete(MESSAGES)
    assert len(fake.sleeps) == 3 and sum(fake.sleeps) <= 100  # ~10 + ~20 + ~40; waiting ~80 more would pass 100
    assert len(server.requests) == 4
    nothing = FakeTime()
    with pytest.raises(JudgeCallError, match="gave up after 1 attempt in"):
        fake_time_client(server, nothing, max_total_wait=0).complete(MESSAGES)
    assert nothing.sleeps == []


def test_timeouts_are_bounded(server_factory):
    server = server_factory(default="hang")
    with pytest.raises(JudgeCallError, match=r"after 2 attempts; last error: no response within 0.3 s"):
        client(server, [], timeout=0.3, max_retries=1).complete(MESSAGES)
    assert len(server.requests) == 2


def test_configuration_errors_are_not_retried_and_never_show_the_key(server_factory, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    server = server_factory(default="401-echo")
    with pytest.raises(LimacotInputError) as caught:
        client(server, [], api_key_env="MY_JUDGE_KEY").complete(MESSAGES)
    message = str(caught.value)
    assert len(server.requests) == 1 and server.requests[0]["auth"] == f"Bearer {KEY}"  # the key was sent...
    assert "HTTP 401" in message and "$MY_JUDGE_KEY" in message
    assert KEY not in message and "SECRET" not in message  # ...and is nowhere in the error


def test_a_key_with_a_line_break_is_refused_without_showing_it(server_factory, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", KEY + "\n")
    with pytest.raises(LimacotInputError, match=r"\$MY_JUDGE_KEY contains a line break") as caught:
        client(server_factory(), [], api_key_env="MY_JUDGE_KEY")
    assert "SECRET" not in str(caught.value) and "sk-" not in str(caught.value)


def test_a_key_echoed_in_a_long_error_body_is_removed_before_the_body_is_shortened(server_factory, monkeypatch):
    plain = "plainkey-SECRET-0123456789abcdef"  # no bearer or sk- shape for the patterns to catch
    monkeypatch.setenv("MY_JUDGE_KEY", plain)
    server = server_factory(default="400-long-echo")
    with pytest.raises(LimacotInputError, match="HTTP 400") as caught:
        client(server, [], api_key_env="MY_JUDGE_KEY").complete(MESSAGES)
    assert "plainkey" not in str(caught.value) and "***" in str(caught.value)  # not even a fragment of the key


def test_a_reply_echoing_the_key_is_stored_without_it(server_factory, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    server = server_factory(reply=f'{{"verdict": "2", "reason": "your key {KEY} works"}}')
    reply = client(server, [], api_key_env="MY_JUDGE_KEY").complete(MESSAGES)
    assert KEY not in reply.text and "***" in reply.text and '"verdict": "2"' in reply.text


def test_json_mode_falls_back_when_the_server_refuses_it(server_factory):
    server = server_factory(default="refuse-json")
    judge = client(server, [])
    assert judge.complete(MESSAGES).text.endswith('"verdict": "2"}')
    judge.complete(MESSAGES)
    assert ["response_format" in r["body"] for r in server.requests] == [True, False, False]
    plain = server_factory()
    client(plain, [], json_mode="off").complete(MESSAGES)
    assert "response_format" not in plain.requests[0]["body"]


def test_judge_specs_and_endpoints():
    assert parse_judge_spec("openai:gpt-4o") == ("openai", "gpt-4o", None)
    assert parse_judge_spec("openai:my/model@http://127.0.0.1:8000") == ("openai", "my/model", "http://127.0.0.1:8000")
    assert parse_judge_spec("embedded") == ("local", "embedded", None)
    assert chat_endpoint("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1/chat/completions"
    assert chat_endpoint("https://host/openai/v1/") == "https://host/openai/v1/chat/completions"
    with pytest.raises(LimacotInputError, match="no credentials"):
        chat_endpoint("https://user:sk-abc@host/v1")
    with pytest.raises(LimacotInputError):
        chat_endpoint("ftp://host")


@pytest.fixture()
def runs(tmp_path):
    answers_a = {"p1": "Paris.", "p2": "서울입니다."}
    answers_b = {"p1": "The capital is Paris.", "p2": "서울."}
    prompts = {"p1": "Capital of France?", "p2": "한국의 수도는?"}
    return write_generations(tmp_path / "A", answers_a, prompts), write_generations(tmp_path / "B", answers_b, prompts)


def test_cli_failure_exits_1_leaves_nothing_half_written_and_never_prints_the_key(
        server_factory, runs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    a, b = runs
    server = server_factory(default="500")
    out = tmp_path / "J"
    args = ["judge", "--a", str(a), "--b", str(b), "--judge", f"openai:m@{server.url}", "--out", str(out),
            "--max-retries", "1", "--timeout", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "failed after 2 attempts" in result.output and KEY not in result.output
    assert not (out / "summary.json").exists() and not (out / "records.jsonl").exists()
    result = runner.invoke(app, args + ["--max-total-wait", "0"])
    assert result.exit_code == 1 and "gave up after 1 attempt in" in result.output
    server.default = "ok"
    result = runner.invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["runs"][0]["win"] == 0 and summary["runs"][0]["flipped"] == 2  # always "2": position bias
    assert summary["tokens"] == {"prompt_tokens": 400, "completion_tokens": 36}
    assert all(r["auth"] == f"Bearer {KEY}" for r in server.requests)
    for path in out.iterdir():
        assert KEY not in path.read_bytes().decode("utf-8", "replace"), path.name
    ko = [r["body"]["messages"][0]["content"] for r in server.requests if "한국의 수도는?" in str(r["body"])]
    assert ko and all("[답변 1]" in text for text in ko)  # Korean prompt, Korean instruction


def test_a_key_echoed_in_replies_usage_and_errors_is_written_and_printed_nowhere(
        server_factory, runs, tmp_path, monkeypatch):
    plain = "plainkey-SECRET-0123456789abcdef"  # no bearer or sk- shape for the patterns to catch
    monkeypatch.setenv("MY_JUDGE_KEY", plain)
    a, b = runs
    server = server_factory(["500-echo", "500-echo"], default="echo-key")
    out = tmp_path / "J"
    args = ["judge", "--a", str(a), "--b", str(b), "--judge", f"openai:m@{server.url}", "--out", str(out),
            "--api-key-env", "MY_JUDGE_KEY", "--concurrency", "1", "--timeout", "2"]
    failed = runner.invoke(app, args + ["--max-retries", "1"])  # two echoed 500s: the run fails
    done = runner.invoke(app, args)  # every reply and usage echoes the key
    shown = runner.invoke(app, args + ["--json"])  # from the cache
    assert (failed.exit_code, done.exit_code, shown.exit_code) == (1, 0, 0), done.output
    assert "HTTP 500: upstream rejected ***" in failed.output
    assert all(r["auth"] == f"Bearer {plain}" for r in server.requests)  # the key was sent every time...
    assert json.loads(shown.stdout)["tokens"] == {"prompt_tokens": 400, "completion_tokens": 36}
    written = {path.name: path.read_bytes().decode("utf-8", "replace") for path in out.iterdir()}
    assert {"judge-cache.jsonl", "records.jsonl", "summary.json", "table.md"} <= set(written)
    printed = {f"{name} {stream}": getattr(result, stream) for name, result in
               (("failed", failed), ("done", done), ("shown", shown)) for stream in ("stdout", "stderr")}
    for where, text in {**written, **printed}.items():  # ...and is in no file and no output, not even half
        for fragment in (plain, plain[:16], plain[16:]):
            assert fragment not in text, f"{fragment!r} in {where}"
    record = json.loads(written["records.jsonl"].splitlines()[0])
    assert record["orders"]["ab"]["verdict"] == "2" and "your key *** works" in record["orders"]["ab"]["raw"]
    assert record["orders"]["ab"]["usage"]["details"]["seen"] == ["***", "x***x"]


def test_cli_refuses_a_b_run_missing_prompts_unless_min_coverage_allows_and_reports_it(
        server_factory, runs, tmp_path):
    a, _ = runs
    part = write_generations(tmp_path / "part", {"p1": "The capital is Paris."}, {"p1": "Capital of France?"})
    server = server_factory()
    out = tmp_path / "J"
    args = ["judge", "--a", str(a), "--b", str(part), "--judge", f"openai:m@{server.url}", "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and not server.requests and not out.exists()
    assert "answers 1 of the 2 prompts of A (50.0%; missing ids: p2)" in " ".join(refused.output.split())
    shown = runner.invoke(app, args + ["--min-coverage", "0.5"])
    assert shown.exit_code == 0, shown.output
    assert "| 1/2 |" in shown.stdout and "Coverage: part: judged on 1 of A's 2 prompts (1 missing in part" \
        in " ".join(shown.stdout.split())
    summary = json.loads(runner.invoke(app, args + ["--min-coverage", "0.5", "--json"]).stdout)
    assert summary["runs"][0]["coverage"] == {"a_prompts": 2, "b_prompts": 1, "judged": 1, "missing": 1,
                                              "not_in_a": 0}
    assert runner.invoke(app, args + ["--min-coverage", "1.5"]).exit_code == 2
    twice = tmp_path / "twice.jsonl"
    twice.write_text((a / "generations.jsonl").read_text(encoding="utf-8") * 2, encoding="utf-8")
    duplicate = runner.invoke(app, ["judge", "--a", str(twice), "--b", str(a), "--judge", f"openai:m@{server.url}",
                                    "--out", str(out)])
    assert duplicate.exit_code == 2 and "twice.jsonl:line 3: field 'id': expected each prompt id once; 'p1' is " \
        "also on line 1" in " ".join(duplicate.output.split())


def test_kill_9_mid_run_then_rerun_makes_only_the_missing_calls(server_factory, tmp_path):
    prompts = {f"p{i}": f"Question {i}?" for i in range(6)}
    a = write_generations(tmp_path / "A", {p: f"answer a{p}" for p in prompts}, prompts)
    b = write_generations(tmp_path / "B", {p: f"answer b{p}" for p in prompts}, prompts)
    server = server_factory(default="slow")
    out = tmp_path / "J"
    command = [sys.executable, "-m", "limacot", "judge", "--a", str(a), "--b", str(b), "--judge",
               f"openai:m@{server.url}", "--out", str(out), "--concurrency", "1"]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = out / "judge-cache.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not cache.exists() or cache.read_text().count("\n") < 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = cache.read_text().count("\n")
    assert 3 <= finished < 12 and not (out / "summary.json").exists()
    with open(cache, "ab") as handle:
        handle.write(b'{"key": "abc", "te')  # as if killed in the middle of a write
    before = len(server.requests)
    server.default = "ok"
    result = runner.invoke(app, command[3:] + ["--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["calls"] == {"requests": 12, "made": 12 - finished, "from_cache": finished}
    assert len(server.requests) - before == 12 - finished
    assert summary["runs"][0]["n"] == 6 and summary["runs"][0]["tie"] == 6
