"""`limacot run` end to end on the tiny random LLaMA: every stage, the store, caching, the
report, and kill -9 in the middle of the grid followed by a rerun."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from limacot.config import load_config
from limacot.data.templates import get_template
from limacot.run.config import StudyConfig
from limacot.run.runner import run_study

REPO = Path(__file__).resolve().parents[1]
ROWS = [{"conversations": [f"Question {i} about apples?", f"Answer {i}: apples are red."], "source": "s"}
        for i in range(8)]
COT = [{"source": f"사과 {i}개와 2개는?", "rationale": f"{i}+2={i + 2}", "target": str(i + 2)} for i in range(8)]


@pytest.fixture()
def study(tmp_path, tiny_model):
    from conftest import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()  # a fresh one: the chat template below must not leak into other tests
    tokenizer.chat_template = get_template("chatml").jinja.replace("<|im_start|>", "<s>").replace("<|im_end|>", "</s>")
    tiny_model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    (tmp_path / "lima.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    (tmp_path / "cot.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in COT),
                                        encoding="utf-8")
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "Hello?"}\n{"prompt": "사과?"}\n', encoding="utf-8")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({
        "sources": {"lima": {"path": "lima.jsonl"}, "kocot": {"path": "cot.jsonl"}},
        "variants": {"lima": {"mix": {"lima": "all"}}, "lima+cot": {"mix": {"lima": "all", "kocot": "all"}}},
        "sizes": [4]}))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({
        "epochs": 1, "save_window": [1, 1], "effective_batch_size": 2, "per_device_batch_size": 2,
        "max_length": 64, "report_to": [], "deterministic": True}))
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "backbones": {"tiny": "tiny"}, "data": "data.yaml", "variants": ["base", "lima", "lima+cot"],
        "sizes": [4], "seeds": [0], "train": {"preset": "train.yaml"},
        "eval": {"tasks": ["kobest_copa"], "num_fewshot": 1, "limit": 4,
                 "data_dir": str(REPO / "examples" / "eval_data")},
        "judge": {"prompts": "prompts.jsonl", "judge": "tiny", "max_new_tokens": 4, "greedy": True},
        "comparisons": [["base", "lima"], ["lima", "lima+cot"]]}))
    return tmp_path


def table(db: Path, name: str, drop=()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(f"SELECT * FROM {name}")]
    return sorted((tuple((k, v) for k, v in r.items() if k not in drop) for r in rows), key=repr)


def test_study_runs_every_stage_then_is_cached(study):
    config = load_config(study / "study.yaml", StudyConfig)
    states = []
    plan = run_study(config, study / "out", on_job=lambda job, state: states.append((job.stage, state)))
    assert {s for s, _ in states} == {"data", "train", "eval", "generate", "judge", "compare"}
    assert [state for _, state in states] == ["run", "done"] * len(plan.jobs)
    db = study / "out" / "results.sqlite"
    assert len(table(db, "cells")) == 3
    metrics = table(db, "metrics")
    assert {dict(r)["cell_id"] for r in metrics} == {"tiny/base/-/s0", "tiny/lima/4/s0", "tiny/lima+cot/4/s0"}
    assert {dict(r)["metric"] for r in metrics} == {"acc", "f1"}  # scores only, no lm-eval bookkeeping
    assert len(table(db, "judgments")) == 2 and len(table(db, "comparisons")) >= 2
    assert all(dict(r)["status"] == "done" for r in table(db, "stage_runs"))
    again = []
    run_study(config, study / "out", on_job=lambda job, state: again.append(state))
    assert again == ["cached"] * len(plan.jobs)

    from limacot.report import write_report
    paths = write_report(study / "out")
    assert paths["html"].is_file() and paths["markdown"].is_file()
    assert "kobest_copa" in paths["markdown"].read_text(encoding="utf-8")


def test_kill_9_mid_grid_then_rerun_equals_uninterrupted(study):
    cmd = [sys.executable, "-m", "limacot", "run", "--config", str(study / "study.yaml")]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    subprocess.run(cmd + ["--out", str(study / "whole")], check=True, capture_output=True, timeout=600, env=env)

    proc = subprocess.Popen(cmd + ["--out", str(study / "killed")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not list((study / "killed" / "stages").glob("eval/*/limacot-stage.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((study / "killed" / "stages").glob("judge/*/limacot-stage.json")), "finished before the kill"
    subprocess.run(cmd + ["--out", str(study / "killed")], check=True, capture_output=True, timeout=600, env=env)

    for name, drop in (("cells", ()), ("metrics", ()), ("comparisons", ()), ("judgments", ()),
                       ("stage_runs", ("started", "finished", "seconds", "output", "config"))):
        assert table(study / "killed" / "results.sqlite", name, drop) == \
            table(study / "whole" / "results.sqlite", name, drop), name
