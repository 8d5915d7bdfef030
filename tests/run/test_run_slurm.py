"""`limacot run --launcher slurm` against a real single-node Slurm cluster started for this module
(munged, slurmctld and slurmd with a generated slurm.conf in a temporary folder): the data job
runs first and the train jobs wait for it, the store ends equal to a local run's, a second
submission submits nothing, and a failed job shows in `--status` with its Slurm id and log.

Needs the Debian packages slurm-wlm and munge (`.ci/run` installs them); when they are missing
the fixture installs them with apt-get as root, and skips only where that is impossible."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import table, write_study

pytestmark = pytest.mark.slow

TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
PACKAGES = ("slurm-wlm", "munge")
WAIT_S = 240
# the tiny study on CPU, base vs lima only: every stage runs, each job is one process that pays
# its imports (about 10-20 s here), so fewer cells keep the module within a few minutes
# (`launcher.kind: slurm` as a user would set it: the final job must still run the rest itself)
TINY = {"compute": {"device": "cpu"}, "launcher": {"kind": "slurm"}, "variants": ["base", "lima"],
        "comparisons": [["base", "lima"]]}


def _install() -> str | None:
    """Install PACKAGES when a tool is missing; the reason when they cannot be installed."""
    if all(shutil.which(tool) for tool in TOOLS):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"Slurm is not installed and cannot be here (needs root and apt-get: apt-get install {' '.join(PACKAGES)})"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        failed = subprocess.run(install, env=env, capture_output=True, text=True)
        if failed.returncode != 0:
            return f"apt-get install {' '.join(PACKAGES)} failed: {failed.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _slurm_conf(folder: Path) -> str:
    """One node (this machine's CPUs and memory), one default partition, no GPUs, no accounting."""
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return "\n".join([
        "ClusterName=limacot-test", "SlurmctldHost=localhost", "SlurmUser=root", "AuthType=auth/munge",
        f"AuthInfo=socket={folder / 'munge.socket'}", f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "ReturnToService=2",
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={len(os.sched_getaffinity(0))} RealMemory={memory_mb * 9 // 10}",
        "PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP", ""])


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_idle(folder: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if state.stdout.strip() == "idle":
            return
        time.sleep(0.5)
    logs = "".join((folder / name).read_text(errors="replace")[-1500:] for name in ("slurmctld.log", "slurmd.log")
                   if (folder / name).is_file())
    pytest.fail(f"the Slurm node did not become idle within 60 s; logs:\n{logs}")


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """munged + slurmctld + slurmd on this machine; SLURM_CONF points every Slurm command at them."""
    reason = _install()
    if reason:
        pytest.skip(reason)
    if os.geteuid() != 0:
        pytest.skip("slurmd runs jobs as their user and must run as root")
    folder = tmp_path_factory.mktemp("slurm")
    for name in ("state", "spool"):
        (folder / name).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))  # a munge key is random bytes
    key.chmod(0o600)
    (folder / "slurm.conf").write_text(_slurm_conf(folder), encoding="utf-8")
    before, daemons = os.environ.get("SLURM_CONF"), []
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    with open(folder / "daemons.out", "wb") as logs:
        try:
            for command in (["munged", "-F", "-f", "-S", str(folder / "munge.socket"), f"--key-file={key}",
                             f"--log-file={folder / 'munged.log'}", f"--pid-file={folder / 'munged.pid'}",
                             f"--seed-file={folder / 'munged.seed'}"],
                            ["slurmctld", "-D", "-f", str(folder / "slurm.conf")],
                            ["slurmd", "-D", "-N", "localhost", "-f", str(folder / "slurm.conf")]):
                daemons.append(subprocess.Popen(command, stdout=logs, stderr=logs))
                time.sleep(0.5)
            _wait_idle(folder)
            yield folder
        finally:
            subprocess.run(["scancel", "--user", str(os.getuid())], capture_output=True)
            wait_for_jobs([], timeout=30, all_jobs=True)
            for daemon in reversed(daemons):
                _stop(daemon)
            if before is None:
                del os.environ["SLURM_CONF"]
            else:
                os.environ["SLURM_CONF"] = before


def wait_for_jobs(job_ids: list[str], timeout: float = WAIT_S, all_jobs: bool = False) -> None:
    """Until none of `job_ids` (or, with all_jobs, no job at all) is pending or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        command = ["squeue", "-h", "-o", "%i"] + ([] if all_jobs else ["-j", ",".join(job_ids)])
        queued = subprocess.run(command, capture_output=True, text=True)
        if not queued.stdout.split():  # (a single finished and forgotten id: exit 1, no output)
            return
        time.sleep(1)
    if not all_jobs:
        pytest.fail(f"Slurm jobs {job_ids} still queued after {timeout} s")


def run_cli(config: Path, out: Path, *args: str, **env: str) -> str:
    """`limacot run` in a subprocess, as a user runs it; its stdout."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1", **env}
    done = subprocess.run([sys.executable, "-m", "limacot", "run", "--config", str(config), "--out", str(out), *args],
                          capture_output=True, text=True, env=env, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr
    return done.stdout


def limacot(config: Path, out: Path, *args: str) -> dict | list:
    """`limacot run ... --json`, parsed."""
    return json.loads(run_cli(config, out, *args, "--json"))


def test_slurm_study_equals_local_run_and_is_not_resubmitted(tiny_study, slurm_cluster):
    config = write_study(tiny_study, **TINY)
    out = tiny_study / "on-slurm"
    first = limacot(config, out, "--launcher", "slurm")
    scripts = {row["script"]: row for row in first["slurm"]}
    data = next(name for name in scripts if name.startswith("data-"))
    trains = [row for name, row in scripts.items() if name.startswith("train-")]
    assert first["submitted"] and all(row["action"] == "submit" and row["job_id"] for row in first["slurm"])
    assert len(trains) == 1 and all(row["after"] == [data] for row in trains)  # train waits for the data build
    assert [r["depends_on"] for r in first["plan"] if r["stage"] == "train"] == [[f"data {data[len('data-'):]}"]]
    assert all(row["gpus_per_node"] == 0 for row in first["slurm"])
    assert not any("--gpus-per-node" in p.read_text() for p in (out / "slurm").glob("*.sbatch"))
    record = json.loads((out / "slurm" / "submitted.json").read_text())
    assert {name: entry["job_id"] for name, entry in record.items()} == {r["script"]: r["job_id"] for r in first["slurm"]}

    queued = limacot(config, out, "--launcher", "slurm")  # while the jobs are queued: nothing new
    assert not queued["submitted"] and {r["action"] for r in queued["slurm"]} <= {"queued", "done"}
    assert any(r["action"] == "queued" for r in queued["slurm"])
    wait_for_jobs([r["job_id"] for r in first["slurm"]])
    status = limacot(config, out, "--status")
    assert [s["state"] for s in status] == ["done"] * len(status), status

    limacot(config, tiny_study / "local", "--launcher", "local")
    for name in ("metrics", "comparisons", "judgments"):
        assert table(out / "results.sqlite", name) == table(tiny_study / "local" / "results.sqlite", name), name
    assert table(out / "results.sqlite", "metrics")
    again = limacot(config, out, "--launcher", "slurm")
    assert not again["submitted"] and {r["action"] for r in again["slurm"]} == {"done"}
    assert json.loads((out / "slurm" / "submitted.json").read_text()) == record


def test_failed_slurm_job_is_reported_with_its_id_and_log(tiny_study, slurm_cluster):
    config = write_study(tiny_study, **TINY)
    with open(tiny_study / "lima.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"conversations": ["a question without its answer"\n')  # truncated JSON on line 9
    out, only = tiny_study / "broken", "tiny/lima/*"
    first = limacot(config, out, "--launcher", "slurm", "--only", only)
    ids = {row["script"].split("-")[0]: row["job_id"] for row in first["slurm"]}
    assert set(ids) == {"data", "train", "eval", "generate", "finish"}
    wait_for_jobs(list(ids.values()))

    status = {s["stage"]: s for s in limacot(config, out, "--status", "--only", only)}
    data = status["data"]
    assert data["state"] == "failed" and data["slurm_job"] == ids["data"] and "lima.jsonl" in data["detail"]
    assert data["slurm_state"].startswith("FAILED") and "lima.jsonl:line 9" in Path(data["log"]).read_text()
    assert Path(data["log"]).parent == out.resolve() / "slurm" / "logs"
    for stage in ("train", "eval", "generate"):  # cancelled by Slurm: the job they wait for failed
        assert status[stage]["state"] == "failed" and status[stage]["slurm_job"] == ids[stage], status[stage]
        assert status[stage]["slurm_state"].startswith("CANCELLED"), status[stage]
    assert [dict(r)["status"] for r in table(out / "results.sqlite", "stage_runs")] == ["failed"]
    shown = run_cli(config, out, "--status", "--only", only, COLUMNS="400")  # the table, unwrapped
    assert "0 done, 4 failed" in shown and f"{ids['data']} FAILED" in shown and data["log"] in shown
    from limacot.report import write_report

    assert f"{ids['data']}: `{data['log']}`" in write_report(out)["markdown"].read_text(encoding="utf-8")

    retry = limacot(config, out, "--launcher", "slurm", "--only", only)  # failed jobs are submitted again
    assert retry["submitted"] and {r["action"] for r in retry["slurm"]} == {"submit"}
    assert not {r["job_id"] for r in retry["slurm"]} & set(ids.values())
