"""Training across processes: kill -9 and --resume, and a 2-process torchrun (gloo, CPU).

These run the real `limacot train` command in subprocesses, so they take a few seconds each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

ROWS = [{"conversations": [f"Question {i} about pears and apples?", f"Answer {i}: " + "fruit " * (2 + i % 5)],
         "source": "demo"} for i in range(16)]


@pytest.fixture()
def setup(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path / "tiny")
    tiny_tokenizer.save_pretrained(tmp_path / "tiny")
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")

    def write_config(name, **overrides):
        cfg = {"model": "tiny", "data": "train.jsonl", "epochs": 3, "save_window": [1, 3], "effective_batch_size": 4,
               "per_device_batch_size": 2, "max_length": 64, "report_to": [], "deterministic": True,
               "learning_rate": 1e-3, "min_learning_rate": 1e-4, **overrides}
        (tmp_path / name).write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return str(tmp_path / name)
    return tmp_path, write_config


def limacot(*args, cwd, env=None):
    return [sys.executable, "-m", "limacot", "train", *args], dict(cwd=cwd, env={**os.environ, **(env or {})})


def final_weights(run):
    from safetensors.torch import load_file
    return load_file(str(run / "final" / "model.safetensors"))


def test_kill_9_then_resume_equals_uninterrupted(setup):
    """Both runs stop after the save window (epoch 38 of 40, step 152 of 160)."""
    tmp, write_config = setup
    cfg = write_config("train.yaml", epochs=40, save_window=[36, 38])
    cmd, kw = limacot("--config", cfg, "--out", str(tmp / "whole"), cwd=tmp)
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, **kw)

    cmd, kw = limacot("--config", cfg, "--out", str(tmp / "killed"), cwd=tmp)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp / "killed" / "trainer").glob("checkpoint-*/trainer_state.json")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp / "killed" / "final").exists(), "the run finished before it could be killed"
    # Mark the first logged step: a resumed run keeps the lines of the steps it does not redo,
    # a restart from scratch would log step 1 again and lose the mark.
    metrics = tmp / "killed" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("".join(line + "\n" for line in [json.dumps({**json.loads(lines[0]), "mark": 1})] + lines[1:]))

    cmd, kw = limacot("--config", cfg, "--out", str(tmp / "killed"), "--resume", cwd=tmp)
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, **kw)
    assert json.loads(metrics.read_text().splitlines()[0]).get("mark") == 1  # resumed at step > 0
    whole, resumed = final_weights(tmp / "whole"), final_weights(tmp / "killed")
    for name, tensor in whole.items():
        assert torch.allclose(tensor, resumed[name], atol=1e-6), name
    steps = [json.loads(line)["step"] for line in (tmp / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 152


def test_torchrun_two_processes_match_one(setup):
    """Global batch preserved (2 x 2 per device x 1 accumulation = 1 x 2 x 2): same loss curve."""
    tmp, write_config = setup
    cfg = write_config("train.yaml", residual_dropout=0.0)
    cmd, kw = limacot("--config", cfg, "--out", str(tmp / "one"), cwd=tmp)
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, **kw)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                "-m", "limacot", "train", "--config", cfg, "--out", str(tmp / "two")]
    done = subprocess.run(torchrun, cwd=tmp, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    curves = [[json.loads(line) for line in (tmp / run / "metrics.jsonl").read_text().splitlines()]
              for run in ("one", "two")]
    assert [r["step"] for r in curves[0]] == [r["step"] for r in curves[1]] == list(range(1, 13))
    one, two = final_weights(tmp / "one"), final_weights(tmp / "two")
    assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)
    assert [r["loss"] for r in curves[1]] == pytest.approx([r["loss"] for r in curves[0]], rel=1e-4)


def test_kill_9_between_checkpoint_and_export_then_resume_exports_every_window_epoch(setup):
    """Killed (SIGKILL, injected through LIMACOT_FAULT) right after the Trainer saved epoch 2's
    checkpoint, before its export: --resume exports epoch 2 from that checkpoint, trains on from
    step 8, and selection sees all of the window's epochs 1..3."""
    tmp, write_config = setup
    cfg = write_config("train.yaml", epochs=4, save_window=[1, 3])  # 4 steps per epoch, stop after epoch 3
    run = tmp / "run"
    cmd, kw = limacot("--config", cfg, "--out", str(run), cwd=tmp,
                      env={"LIMACOT_FAULT": "kill-after-checkpoint:2", "OMP_NUM_THREADS": "1"})
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (run / "trainer" / "checkpoint-8" / "trainer_state.json").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch-*")) == ["epoch-1"]
    saved = (run / "trainer" / "checkpoint-8" / "model.safetensors").read_bytes()  # rotated away on resume
    # Mark the first logged step: a resumed run keeps it, a restart from scratch would not.
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("".join(line + "\n" for line in [json.dumps({**json.loads(lines[0]), "mark": 1})] + lines[1:]))

    cmd, kw = limacot("--config", cfg, "--out", str(run), "--resume", cwd=tmp, env={"OMP_NUM_THREADS": "1"})
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(metrics.read_text().splitlines()[0]).get("mark") == 1  # resumed at step > 0
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == list(range(1, 13))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-1", "epoch-2", "epoch-3"]
    assert (run / "checkpoints" / "epoch-2" / "model.safetensors").read_bytes() == saved
    selection = json.loads((run / "selection.json").read_text())
    assert [c["epoch"] for c in selection["candidates"]] == [1, 2, 3]
    assert selection["chosen_epoch"] == 3
