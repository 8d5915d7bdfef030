"""`limacot run` end to end on the tiny random LLaMA: every stage, the store, caching, the
report, and kill -9 in the middle of the grid followed by a rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import table

from limacot.io.yaml_config import load_config
from limacot.run.config import StudyConfig
from limacot.run.runner import run_study


def test_study_runs_every_stage_then_is_cached(tiny_study):
    config = load_config(tiny_study / "study.yaml", StudyConfig)
    states = []
    plan = run_study(config, tiny_study / "out", on_job=lambda job, state: states.append((job.stage, state)))
    assert {s for s, _ in states} == {"data", "train", "eval", "generate", "judge", "compare"}
    assert [state for _, state in states] == ["run", "done"] * len(plan.jobs)
    db = tiny_study / "out" / "results.sqlite"
    assert len(table(db, "cells")) == 3
    metrics = table(db, "metrics")
    assert {dict(r)["cell_id"] for r in metrics} == {"tiny/base/-/s0", "tiny/lima/4/s0", "tiny/lima+cot/4/s0"}
    assert {dict(r)["metric"] for r in metrics} == {"acc", "f1"}  # scores only, no lm-eval bookkeeping
    assert len(table(db, "judgments")) == 2 and len(table(db, "comparisons")) >= 2
    assert all(dict(r)["status"] == "done" for r in table(db, "stage_runs"))
    again = []
    run_study(config, tiny_study / "out", on_job=lambda job, state: again.append(state))
    assert again == ["cached"] * len(plan.jobs)

    from limacot.report import write_report
    paths = write_report(tiny_study / "out")
    assert paths["html"].is_file() and paths["markdown"].is_file()
    assert "kobest_copa" in paths["markdown"].read_text(encoding="utf-8")


def test_kill_9_mid_grid_then_rerun_equals_uninterrupted(tiny_study):
    cmd = [sys.executable, "-m", "limacot", "run", "--config", str(tiny_study / "study.yaml")]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    subprocess.run(cmd + ["--out", str(tiny_study / "whole")], check=True, capture_output=True, timeout=600, env=env)

    proc = subprocess.Popen(cmd + ["--out", str(tiny_study / "killed")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not list((tiny_study / "killed" / "stages").glob("eval/*/limacot-stage.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((tiny_study / "killed" / "stages").glob("judge/*/limacot-stage.json")), "finished before the kill"
    finished = len(list((tiny_study / "killed").rglob("limacot-stage.json")))
    rerun = subprocess.run(cmd + ["--out", str(tiny_study / "killed")], check=True, capture_output=True, text=True,
                           timeout=600, env={**env, "COLUMNS": "250"})
    states = [line.split()[0] for line in rerun.stderr.splitlines()
              if line.split() and line.split()[0] in ("cached", "run", "resume", "done")]
    total = len(list((tiny_study / "whole").rglob("limacot-stage.json")))
    assert finished >= 2 and states.count("cached") == finished  # the rerun ran no finished job again...
    assert states.count("run") + states.count("resume") == states.count("done") == total - finished  # ...only the rest

    for name, drop in (("cells", ()), ("metrics", ()), ("comparisons", ()), ("judgments", ()),
                       ("stage_runs", ("started", "finished", "seconds", "output", "config"))):
        assert table(tiny_study / "killed" / "results.sqlite", name, drop) == \
            table(tiny_study / "whole" / "results.sqlite", name, drop), name
