"""`limacot run` with `launcher.processes`: train, eval and generate jobs under `accelerate launch`
(2 processes, gloo on CPU) give the same results store as one process; the launcher settings,
the study's compute settings and what the job keys hash."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import table, write_study
from safetensors.torch import load_file
from typer.testing import CliRunner

from limacot.cli import app
from limacot.io.yaml_config import load_config
from limacot.errors import LimacotInputError
from limacot.run.config import StudyConfig
from limacot.run.launch import LaunchFailed, process_count, worker_command, worker_env
from limacot.run.plan import build_plan
from limacot.run.runner import run_study

LAUNCHED = ("train", "eval", "generate")
# Global batch 4 = 2 per device x 2 processes (x 1 accumulation) = 2 x 1 process x 2 accumulation
# steps; no dropout, whose masks differ between processes.
SAME_BATCH = {"preset": "train.yaml", "overrides": {"effective_batch_size": 4, "epochs": 3, "save_window": [3, 3],
                                                    "residual_dropout": 0.0}}


def small_study(folder, name: str, **changes):
    """base vs lima only: one train job, two eval and two generate jobs, one judge and one compare."""
    return write_study(folder, name, **{"variants": ["base", "lima"], "comparisons": [["base", "lima"]],
                                        "train": SAME_BATCH, **changes})


def keys(config: StudyConfig, folder) -> dict[str, str]:
    return {job.label: job.key for job in build_plan(config, folder).jobs}


@pytest.mark.slow
def test_two_processes_give_the_same_store_as_one(tiny_study):
    one = load_config(small_study(tiny_study, "one.yaml"), StudyConfig)
    plan = run_study(one, tiny_study / "one")
    two = small_study(tiny_study, "two.yaml", launcher={"processes": 2})
    done = subprocess.run([sys.executable, "-m", "limacot", "run", "--config", str(two), "--out",
                           str(tiny_study / "two")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr[-4000:]

    for job in plan.jobs:  # each launched job ran in 2 processes, each one its worker
        log = tiny_study / "two" / "logs" / f"{job.stage}-{job.key[:16]}.log"
        assert log.is_file() == (job.stage in LAUNCHED), job.label
        if job.stage in LAUNCHED:
            text = log.read_text(encoding="utf-8")
            assert "worker rank 0 of 2 done" in text and "worker rank 1 of 2 done" in text, text[-2000:]
    train = plan.of("train")[0].out.relative_to(tiny_study / "one")
    checkpoint = max((tiny_study / "two" / train / "trainer").glob("checkpoint-*"))
    assert (checkpoint / "rng_state_1.pth").is_file()  # the Trainer saved the state of 2 processes

    stores = [tiny_study / run / "results.sqlite" for run in ("one", "two")]
    for name in ("cells", "comparisons", "judgments"):
        assert table(stores[0], name) == table(stores[1], name), name
    metrics = [table(store, "metrics") for store in stores]
    assert len(metrics[0]) >= 4 and [dict(r).keys() for r in metrics[0]] == [dict(r).keys() for r in metrics[1]]
    for a, b in zip(*metrics):
        assert {k: v for k, v in a if k != "value"} == {k: v for k, v in b if k != "value"}
        assert dict(a)["value"] == pytest.approx(dict(b)["value"], abs=1e-6)
    runs = [table(store, "stage_runs", drop=("started", "finished", "seconds", "output", "config")) for store in stores]
    assert runs[0] == runs[1] and all(dict(r)["status"] == "done" for r in runs[1])
    for job in plan.of("generate"):
        out = job.out.relative_to(tiny_study / "one")
        assert (tiny_study / "one" / out / "generations.jsonl").read_bytes() == \
            (tiny_study / "two" / out / "generations.jsonl").read_bytes(), job.label
    weights = [load_file(str(tiny_study / run / train / "final" / "model.safetensors")) for run in ("one", "two")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.allclose(weights[0][k], weights[1][k], atol=1e-5) for k in weights[0])


@pytest.mark.slow
def test_a_failed_launch_is_recorded_with_its_output(tiny_study):
    """A launched job that fails: the store says failed, with the tail of the launch's log."""
    (tiny_study / "train.yaml").write_text("epochs: 1\neffective_batch_size: 2\nper_device_batch_size: 2\n"
                                           "report_to: []\n")
    config = load_config(small_study(tiny_study, "bad.yaml", train={"preset": "train.yaml"},
                                     launcher={"processes": 2}), StudyConfig)
    with pytest.raises(LaunchFailed, match="exited with") as failed:
        run_study(config, tiny_study / "bad", stages={"data", "train"})
    assert "not a multiple of per_device_batch_size 2 x 2 process(es)" in str(failed.value)  # the worker's error
    rows = [dict(r) for r in table(tiny_study / "bad" / "results.sqlite", "stage_runs")]
    (row,) = [r for r in rows if r["stage"] == "train"]
    assert row["status"] == "failed" and "not a multiple of per_device_batch_size" in row["error"]
    train = build_plan(config, tiny_study / "bad").of("train")[0]
    assert not train.is_done()


def test_launcher_and_device_keep_keys_dtype_and_attention_change_them(tiny_study):
    base = load_config(tiny_study / "study.yaml", StudyConfig)
    assert base.launcher.kind == "local" and base.launcher.processes == 1 and process_count(base) == 1
    first = keys(base, tiny_study)
    moved = base.model_copy(update={"launcher": base.launcher.model_copy(update={"processes": 4}),
                                    "compute": base.compute.model_copy(update={"device": "cpu"})})
    assert keys(moved, tiny_study) == first and process_count(moved) == 4
    for change in ({"dtype": "bfloat16"}, {"attn_implementation": "eager"}):
        changed = keys(base.model_copy(update={"compute": base.compute.model_copy(update=change)}), tiny_study)
        assert all((changed[k] != v) == (not k.startswith("data")) for k, v in first.items()), change


def test_train_compute_precedence(tiny_study):
    """study compute < the preset's own values < train.overrides < train.per_backbone."""
    (tiny_study / "train.yaml").write_text("epochs: 1\neffective_batch_size: 2\nper_device_batch_size: 2\n"
                                           "report_to: []\ndtype: float16\n")

    def train_config(**changes):
        config = load_config(small_study(tiny_study, "p.yaml", **changes), StudyConfig)
        return build_plan(config, tiny_study).of("train")[0].inputs["config"]

    compute = {"dtype": "bfloat16", "attn_implementation": "eager", "device": "cpu"}
    resolved = train_config(compute=compute)
    assert (resolved["dtype"], resolved["attn_implementation"], resolved["device"]) == ("float16", "eager", "cpu")
    resolved = train_config(compute=compute, train={**SAME_BATCH, "preset": "train.yaml",
                                                    "overrides": {"dtype": "float32", "device": "auto"},
                                                    "per_backbone": {"tiny": {"dtype": "bfloat16"}}})
    assert (resolved["dtype"], resolved["device"]) == ("bfloat16", "auto")


def test_launcher_settings_are_validated(tiny_study):
    for launcher, problem in (({"processes": 0}, "processes"), ({"kind": "ssh"}, "kind")):
        with pytest.raises(LimacotInputError, match=f"launcher.{problem}"):
            load_config(write_study(tiny_study, "bad.yaml", launcher=launcher), StudyConfig)
    with pytest.raises(LimacotInputError, match="pins every process to one GPU"):
        load_config(write_study(tiny_study, "bad.yaml", compute={"device": "cuda:1"}, launcher={"processes": 2}),
                    StudyConfig)
    auto = load_config(write_study(tiny_study, "auto.yaml", launcher={"processes": "auto"}), StudyConfig)
    assert process_count(auto) == max(1, torch.cuda.device_count())


def test_cli_flags_override_the_launcher(tiny_study):
    """--processes and --launcher over `launcher:`; what the study then runs with is recorded."""
    out = tiny_study / "flags"
    result = CliRunner().invoke(app, ["run", "--config", str(tiny_study / "study.yaml"), "--out", str(out),
                                      "--processes", "3", "--stages", "data", "--json"])
    assert result.exit_code == 0, result.output
    assert load_config(out / "study.resolved.yaml", StudyConfig).launcher.processes == 3
    bad = CliRunner().invoke(app, ["run", "--config", str(tiny_study / "study.yaml"), "--out", str(out),
                                   "--processes", "none", "--dry-run"])
    assert bad.exit_code == 2 and "launcher.processes" in bad.output
    worker = CliRunner().invoke(app, ["run", "--config", str(tiny_study / "study.yaml"), "--out", str(out), "--worker"])
    assert worker.exit_code == 2 and "--job" in worker.output


def test_worker_command_and_environment(tiny_study):
    plan = build_plan(load_config(tiny_study / "study.yaml", StudyConfig), tiny_study / "out")
    job = plan.of("eval")[0]
    command = worker_command(plan, job, 2, 29601)
    assert command[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in command
    assert command[command.index("--num_processes") + 1] == "2" and command[-3:] == ["--job", job.key, "--worker"]
    assert command[command.index("--config") + 1] == str(tiny_study / "out" / "study.resolved.yaml")
    zero3 = worker_command(plan, job, 2, 29601, "zero3.yaml")
    assert "--multi_gpu" not in zero3 and zero3[zero3.index("--config_file") + 1] == "zero3.yaml"
    env = worker_env("cpu", 2)
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["OMP_NUM_THREADS"] == str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert worker_env("auto", 2).get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")
