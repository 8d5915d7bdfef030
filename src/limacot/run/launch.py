"""The local launcher: a train, eval or generate job across N processes with `accelerate launch`.

With `launcher.processes` N > 1, `limacot run` starts each such job as

    accelerate launch --multi_gpu --mixed_precision no --dynamo_backend no --num_processes N \
        --num_machines 1 --main_process_port PORT \
        -m limacot run --config STUDY_DIR/study.resolved.yaml --out STUDY_DIR --job KEY --worker

(precision stays the stage's own setting, as in one process; a train job whose preset names an
`accelerate_config` and runs on CUDA gets `--config_file` with it instead of those three flags,
so DeepSpeed/FSDP and their precision come from that file). Every launched process
runs the job's stage function (`--worker`): training is DDP (gloo on CPU), generation and eval
split their prompts and documents across the processes and the main process writes one
merged output. The launched processes never write results.sqlite or the completion marker:
this (the main `limacot run`) process does, after the launch exits 0, exactly as for a job run
in-process. Each launch writes `STUDY_DIR/logs/<stage>-<key16>.log` (every process's stdout and
stderr); a launch that fails is recorded in the store with the workers' error lines and the
tail of that log. A launch stops when `limacot run` stops, even when it is killed (kill -9):
the next run resumes or restarts the job as it would an in-process one.

A job whose device is cpu is launched with no GPU visible (`CUDA_VISIBLE_DEVICES=""`), and
each process gets `OMP_NUM_THREADS` = this machine's cores / N.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from limacot.models.compute import resolve_device
from limacot.errors import LimacotInputError
from limacot.run.config import StudyConfig
from limacot.run.execute import Rows, finish_job, start_work
from limacot.run.plan import Job, Plan

LAUNCHED_STAGES = ("train", "eval", "generate")
RESOLVED_CONFIG = "study.resolved.yaml"  # what `run_study` writes and the launched processes read
TAIL_CHARS = 2000
_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None  # loaded before fork: prctl in the child


class LaunchFailed(RuntimeError):
    """A launched job exited non-zero; the message ends with the tail of its log."""


def process_count(config: StudyConfig) -> int:
    """`launcher.processes`, with `auto` = the visible CUDA GPUs (1 without any, or on cpu)."""
    processes = config.launcher.processes
    if processes != "auto":
        return processes
    if config.compute.device == "cpu":
        return 1
    import torch  # heavy; only `auto` needs it

    return max(1, torch.cuda.device_count())


def is_launched(job: Job, processes: int) -> bool:
    """Whether `job` runs as an `accelerate launch` (a reference's answers load no model: never)."""
    return processes > 1 and job.stage in LAUNCHED_STAGES and not job.is_reference


def launch_job(plan: Plan, job: Job, processes: int) -> Rows:
    """Run `job` as one `accelerate launch` of `processes` processes, then publish it, read its
    store rows and leave its marker (see the module docstring)."""
    device = job_device(plan, job)
    cuda = _uses_cuda(device)
    if cuda:
        _check_gpus(processes)
    start_work(job)
    log_path = plan.study_dir / "logs" / f"{job.stage}-{job.key[:16]}.log"
    command = worker_command(plan, job, processes, _free_port(), accelerate_config(job) if cuda else None)
    code = _run_logged(command, worker_env(device, processes), log_path)
    if code != 0:
        raise LaunchFailed(f"{job.label}: `accelerate launch` of {processes} processes exited with {code} "
                           f"(log: {log_path})\n{_failure_summary(log_path)}")
    return finish_job(plan, job)


def _failure_summary(log_path: Path) -> str:
    """The workers' own error lines, then the log's last output (tracebacks, torchrun's report)."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    errors = dict.fromkeys(line for line in text.splitlines() if line.startswith(("error:", "failed:")))
    return "".join(line + "\n" for line in errors) + f"last output:\n{text[-TAIL_CHARS:]}"


def worker_command(plan: Plan, job: Job, processes: int, port: int, config_file: str | None = None) -> list[str]:
    """The `accelerate launch` command line of `job` (see the module docstring)."""
    launcher = (["--config_file", config_file] if config_file else
                ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"])  # as an in-process run
    return [sys.executable, "-m", "accelerate.commands.launch", *launcher, "--num_processes", str(processes),
            "--num_machines", "1", "--main_process_port", str(port), "-m", "limacot", "run", "--config",
            str(plan.study_dir / RESOLVED_CONFIG), "--out", str(plan.study_dir), "--job", job.key, "--worker"]


def worker_env(device: str, processes: int) -> dict[str, str]:
    """This environment, with OMP_NUM_THREADS = cores / processes, no GPU for a cpu job, and
    tracebacks (not progress bars) in the log."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes)), "LIMACOT_DEBUG": "1",  # tracebacks
           "TQDM_DISABLE": os.environ.get("TQDM_DISABLE", "1")}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def job_device(plan: Plan, job: Job) -> str:
    """A train job's own (resolved) device, else the study's `compute.device`."""
    if job.stage == "train":
        return job.inputs["config"]["device"]
    return plan.config.compute.device


def accelerate_config(job: Job) -> str | None:
    """The train preset's `accelerate_config` (DeepSpeed/FSDP...), for a train job."""
    return job.inputs["config"].get("accelerate_config") if job.stage == "train" else None


def _uses_cuda(device: str) -> bool:
    """Whether the job runs on CUDA (`limacot.models.compute`'s resolution; a GPU asked for but absent is exit 2)."""
    return resolve_device(device).type == "cuda"


def _check_gpus(processes: int) -> None:
    import torch  # heavy; only a launched job needs it

    if processes > torch.cuda.device_count():
        raise LimacotInputError(f"launcher.processes {processes}: only {torch.cuda.device_count()} CUDA GPU(s) are "
                                f"visible here (one process per GPU); lower it, use `auto`, or compute.device cpu")


def _free_port() -> int:
    """A TCP port nobody listens on now (for the launch's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop_with_parent() -> None:
    """In the launch (Linux): SIGTERM when this process dies, even by kill -9, so that no
    orphaned launch keeps writing into a job folder that the next run resumes."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _run_logged(command: list[str], env: dict[str, str], log_path: Path) -> int:
    """Run `command` with stdout and stderr into `log_path`; on any interruption of this process
    the launch is stopped (SIGTERM, which accelerate passes to its processes) before re-raising."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_stop_with_parent)
        try:
            return proc.wait()
        except BaseException:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
