"""The record of what `limacot run --launcher slurm` submitted, read by `--status` and the report.

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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from limacot.io.atomic import atomic_write_json

SLURM_DIR = "slurm"  # STUDY_DIR/slurm: the scripts, their logs and the record
RECORD = "submitted.json"


@dataclass
class Submission:
    job_id: str
    script: str
    log: str
    keys: list[str] = field(default_factory=list)
    submitted: float = 0.0


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


def record(folder: Path, name: str, submission: Submission) -> None:
    """Add one submission to the record (written after each sbatch, so none is lost)."""
    submissions = load_submissions(folder)
    submissions[name] = submission
    save_submissions(folder, submissions)


def new_submission(job_id: str, script: Path, log: Path, keys: list[str]) -> Submission:
    return Submission(job_id, str(script), str(log), keys, time.time())
