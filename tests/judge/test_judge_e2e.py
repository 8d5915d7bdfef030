"""End to end against a real OpenAI-compatible server: `transformers serve` on 127.0.0.1,
serving a local tiny checkpoint offline. Two answer sets are generated, judged in both orders,
and judged again from the cache (zero calls, counted in the server's own access log)."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from limacot.cli import app
from limacot.generate.generation import GenerationSettings, generate_file
from serving import transformers_serve
from test_judge_support import save_tiny_chat_model, save_verdict_model

runner = CliRunner()
PROMPTS = [{"prompt": "What is the capital of France?"}, {"prompt": "사과 3개와 2개를 더하면 몇 개입니까?"},
           {"prompt": "Hello world"}]


@pytest.fixture(scope="module")
def served_judge(tmp_path_factory):
    """(base URL, model path, log path) of `transformers serve` pinned to a verdict model."""
    folder = tmp_path_factory.mktemp("served")
    model = save_verdict_model(folder / "judge", "Verdict: 1")  # a judge that always picks the first answer
    log = folder / "serve.log"
    with transformers_serve(model, log) as url:
        yield url, model, log


@pytest.fixture(scope="module")
def answer_sets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("answers")
    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PROMPTS), encoding="utf-8")
    runs = []
    for name, seed in (("G", 0), ("G2", 1)):
        model = save_tiny_chat_model(folder / f"model-{name}", seed=seed)
        generate_file(str(model), prompts, folder / name, GenerationSettings(max_new_tokens=6, seed=seed),
                      batch_size=2)
        runs.append(folder / name)
    return runs


def test_judge_against_transformers_serve_both_orders_and_cache(served_judge, answer_sets, tmp_path):
    url, model, log = served_judge
    a, b = answer_sets
    args = ["judge", "--a", str(a), "--b", str(b), "--judge", f"openai:{model}@{url}", "--out", str(tmp_path / "J"),
            "--json"]

    def posts() -> int:  # requests in the server's own access log
        return log.read_text().count("POST /v1/chat/completions")

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["calls"] == {"requests": 6, "made": 6, "from_cache": 0} and posts() == 6
    run = summary["runs"][0]
    # "Verdict: 1" in both orders prefers A, then B: a flip, so a tie on every prompt
    assert (run["n"], run["win"], run["tie"], run["loss"], run["unparseable"], run["flipped"]) == (3, 0, 3, 0, 0, 3)
    assert run["b_equal_or_better"] == 1.0 and run["ci95"] == [1.0, 1.0]
    assert summary["tokens"]["completion_tokens"] > 0 and summary["tokens"]["prompt_tokens"] > 0
    records = [json.loads(line) for line in (tmp_path / "J" / "records.jsonl").read_text().splitlines()]
    for record in records:
        assert record["orders"]["ab"]["raw"] == record["orders"]["ba"]["raw"] == "Verdict: 1"
        assert (record["orders"]["ab"]["prefers"], record["orders"]["ba"]["prefers"]) == ("a", "b")
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout)["calls"]["made"] == 0
    assert posts() == 6  # the second run asked the server nothing
    assert (tmp_path / "J" / "preference.png").stat().st_size > 1000


def test_local_model_judge_generating_through_the_cli(answer_sets, tmp_path):
    a, b = answer_sets
    judge = save_verdict_model(tmp_path / "judge", "Verdict: 2")
    out = tmp_path / "J"
    result = runner.invoke(app, ["judge", "--a", str(a), "--b", str(b), "--b", str(a), "--judge", str(judge),
                                 "--out", str(out), "--concurrency", "3", "--json-mode", "off"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [r["b_run"] for r in summary["runs"]] == ["G2", "G"]
    assert [(r["tie"], r["flipped"]) for r in summary["runs"]] == [(3, 3), (3, 3)]
    assert summary["calls"] == {"requests": 9, "made": 9, "from_cache": 0}  # G against itself: one request a prompt
    assert "| G2 | 3 | 0 | 3 | 0 | 0 | 100.0% |" in (out / "table.md").read_text()
    said = 'G2: all 3 verdicts flipped with the order: the judge did not decide, so its 100% "B equal or better" means'
    assert said in (out / "table.md").read_text() and said in " ".join(result.output.split())


def test_judge_reads_a_config_file_and_flags_override_it(answer_sets, tmp_path, monkeypatch):
    """`limacot judge --config`: the judge path is relative to the YAML, a flag given wins over its key."""
    a, b = answer_sets
    save_verdict_model(tmp_path / "configs" / "judge", "Verdict: 2")
    (tmp_path / "configs" / "judge.yaml").write_text(yaml.safe_dump(
        {"judge": "judge", "json_mode": "off", "max_tokens": 8, "concurrency": 3, "resamples": 100, "seed": 5}))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["judge", "--config", "configs/judge.yaml", "--a", str(a), "--b", str(b),
                                 "--out", "J", "--seed", "9", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["judge"] == str(tmp_path / "configs" / "judge")
    assert summary["judge_identity"]["mode"] == "generate" and summary["judge_identity"]["max_tokens"] == 8
    assert summary["bootstrap"] == {"resamples": 100, "seed": 9, "level": 0.95}


def test_judge_config_errors_name_the_file_key_and_flag(answer_sets, tmp_path, monkeypatch):
    a, b = answer_sets
    monkeypatch.chdir(tmp_path)
    (tmp_path / "judge.yaml").write_text("judge: openai:gpt-4o\nretries: 3\n")
    result = runner.invoke(app, ["judge", "--config", "judge.yaml", "--a", str(a), "--b", str(b), "--out", "J",
                                 "--bootstrap", "0", "--dry-run"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "judge.yaml: retries: unknown key; valid keys:" in message and "max_retries" in message
    assert "--bootstrap (resamples): expected greater than or equal to 1 (got 0)" in message
    result = runner.invoke(app, ["judge", "--a", str(a), "--b", str(b), "--out", "J", "--dry-run"])
    assert result.exit_code == 2 and "--judge is required" in result.output
    assert not (tmp_path / "J").exists()
