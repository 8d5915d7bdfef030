"""`limacot run --status`: each job of the plan as done, failed, pending or running.

    done      its completion marker exists
    running   its Slurm job is running, or (no Slurm job) the store says it started: a local
              run in progress, or one that was killed (the next run resumes it)
    pending   its Slurm job waits in the queue, or it was never started
    failed    the store recorded the job's error, or its Slurm job left the queue without
              leaving the marker (failed, cancelled because a dependency failed, timed out...)

For jobs submitted by `--launcher slurm` (`limacot.study.submissions`) the Slurm job id, Slurm's
state and the log path come with it. The store is only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from limacot.run import queue
from limacot.run.plan import Job, Plan
from limacot.study.store import STORE, StageRun, last_line, read_store
from limacot.study.submissions import SLURM_DIR, Submission, load_submissions, submission_of

STATES = ("done", "failed", "running", "pending")


@dataclass
class JobStatus:
    stage: str
    label: str
    key: str
    state: str
    depends_on: list[str] = field(default_factory=list)
    slurm_job: str | None = None
    slurm_state: str | None = None
    log: str | None = None
    detail: str = ""


def depends_on(job: Job) -> list[str]:
    """The jobs `job` waits for, as 'stage key16'."""
    return [f"{dep.stage} {dep.key[:16]}" for dep in job.deps]


def study_status(plan: Plan) -> list[JobStatus]:
    """The state of every job of `plan` (see the module docstring)."""
    runs = _stage_runs(plan.study_dir / STORE)
    submissions = load_submissions(plan.study_dir / SLURM_DIR)
    states = queue.queue_states(sorted({s.job_id for s in submissions.values()}))
    result = []
    for job in plan.jobs:
        submission = submission_of(submissions, job.key)
        slurm = states.get(submission.job_id) if submission else None
        state, detail = _state(job, runs.get(job.key), submission, slurm)
        result.append(JobStatus(job.stage, job.label, job.key[:16], state, depends_on(job),
                                submission.job_id if submission else None, str(slurm) if slurm else None,
                                submission.log if submission else None, detail))
    return result


def _state(job: Job, run: StageRun | None, submission: Submission | None,
           slurm: queue.QueueState | None) -> tuple[str, str]:
    """(state, a short reason) of one job."""
    if job.is_done():
        return "done", ""
    if slurm and slurm.active:
        return ("running" if slurm.state in queue.STARTED else "pending"), ""
    if run and run["status"] == "failed":
        return "failed", last_line(run["error"])
    if submission:
        return "failed", f"not finished; Slurm: {slurm or 'no longer in the queue'}; see the log"
    if run and run["status"] == "running":
        return "running", "started by a local run (in progress, or interrupted: rerun to resume)"
    return "pending", ""


def _stage_runs(path: Path) -> dict[str, StageRun]:
    """stage_runs by key, read-only ({} before the first run)."""
    if not path.is_file():
        return {}
    return {r["key"]: r for r in read_store(path, ("stage_runs",)).stage_runs}


def counts(statuses: list[JobStatus]) -> str:
    """'3 done, 1 failed, 0 running, 5 pending'."""
    return ", ".join(f"{sum(s.state == state for s in statuses)} {state}" for state in STATES)
