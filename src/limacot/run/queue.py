"""The Slurm queue: `sbatch`, `squeue`/`sacct`, `scancel`, and the record of what limacot submitted.

    STUDY_DIR/slurm/submitted.json   one entry per sbatch script, its latest submission:
        {"train-1a2b3c4d5e6f7a8b": {"job_id": "42", "script": ".../train-1a2b....sbatch",
                                    "log": ".../logs/limacot-train-1a2b...-42.out",
                                    "keys": ["1a2b3c4d..."], "submitted": 1700000000.0}}

`keys` are the plan jobs the script runs (one for a stage job; the compare and judge jobs for
the final job), so a job's Slurm id and log are found from its key. Only limacot writes the
record: a `submit.sh` run by hand submits without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from limacot.io.atomic import atomic_write_json

RECORD = "submitted.json"
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
STARTED = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED"}
QUERY_TIMEOUT_S = 60


@dataclass
class Submission:
    job_id: str
    script: str
    log: str
    keys: list[str] = field(default_factory=list)
    submitted: float = 0.0


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


def load_submissions(folder: Path) -> dict[str, Submission]:
    """The record in `folder` ({} when there is none or it is unreadable)."""
    try:
        raw = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        return {name: Submission(**entry) for name, entry in raw.items()}
    except (OSError, ValueError, TypeError):
        return {}


def save_submissions(folder: Path, submissions: dict[str, Submission]) -> None:
    atomic_write_json(folder / RECORD, {name: asdict(s) for name, s in submissions.items()})


def submission_of(submissions: dict[str, Submission], key: str) -> Submission | None:
    """The latest submission that runs the plan job `key`."""
    found = [s for s in submissions.values() if key in s.keys]
    return max(found, key=lambda s: s.submitted) if found else None


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


def record(folder: Path, name: str, submission: Submission) -> None:
    """Add one submission to the record (written after each sbatch, so none is lost)."""
    submissions = load_submissions(folder)
    submissions[name] = submission
    save_submissions(folder, submissions)


def new_submission(job_id: str, script: Path, log: Path, keys: list[str]) -> Submission:
    return Submission(job_id, str(script), str(log), keys, time.time())
