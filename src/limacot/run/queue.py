"""The Slurm queue: `sbatch`, `squeue`/`sacct`, `scancel`. What limacot submitted is recorded in
`STUDY_DIR/slurm/submitted.json` (`limacot.study.submissions`).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
STARTED = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED"}
QUERY_TIMEOUT_S = 60


@dataclass(frozen=True)
class QueueState:
    """A Slurm job's state (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...) and
    the reason Slurm gives (e.g. Dependency, DependencyNeverSatisfied, NonZeroExitCode)."""

    state: str
    reason: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE and self.reason != "DependencyNeverSatisfied"

    def __str__(self) -> str:
        return self.state + (f" ({self.reason})" if self.reason and self.reason != "None" else "")


def sbatch(script: Path, after: list[str]) -> str:
    """Submit `script`, to start once every job id in `after` has completed successfully (a
    job whose dependency fails is cancelled by Slurm, not left pending forever); its job id."""
    command = ["sbatch", "--parsable"]
    if after:
        command += [f"--dependency=afterok:{':'.join(after)}", "--kill-on-invalid-dep=yes"]
    done = subprocess.run(command + [str(script)], capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"sbatch {script.name} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip().split(";")[0]


def scancel(job_ids: list[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=QUERY_TIMEOUT_S)


def queue_states(job_ids: list[str]) -> dict[str, QueueState]:
    """The states Slurm knows for `job_ids`: `squeue --states=all` (queued jobs, and finished
    ones for a few minutes), then `sacct` for the rest where accounting is enabled. A job in
    neither has left the queue and its record (with it, whether it succeeded) is gone."""
    states = _query(["squeue", "-h", "--states=all", "-o", "%i|%T|%r", "-j"], job_ids)
    rest = [i for i in job_ids if i not in states]
    states.update(_query(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j"], rest))
    return states


def _query(command: list[str], job_ids: list[str]) -> dict[str, QueueState]:
    if not job_ids or not shutil.which(command[0]):
        return {}
    try:
        done = subprocess.run(command + [",".join(job_ids)], capture_output=True, text=True,
                              timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return {}
    states = {}
    for line in done.stdout.splitlines() if done.returncode == 0 else ():
        job_id, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if job_id in job_ids and state:
            states[job_id] = QueueState(state.split()[0], reason.strip())  # sacct: "CANCELLED by 0"
    return states
