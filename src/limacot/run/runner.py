"""`limacot run`: the plan, executed in dependency order, each job once.

A job is skipped when its output carries the completion marker (the store is brought up to
date from that output if it lacks the rows, e.g. after a slurm job made it). A job that was
interrupted (status `running` in the store) resumes (train, generate, judge) or restarts
cleanly (the others). After the last job the report is written. Before the first, the plan (its
cells and jobs) is recorded in the store, so the report knows what never started.

With `launcher.processes` > 1, train, eval and generate jobs run as an `accelerate launch`
(`limacot.run.launch`) whose processes run `run_worker`; this process records them.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import platform
import subprocess
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from limacot import __version__
from limacot.errors import LimacotInputError
from limacot.io.atomic import atomic_write_text
from limacot.io.yaml_config import dump_config
from limacot.run.config import StudyConfig
from limacot.run.execute import link_current_data, run_job, run_stage, stored_rows, work_dir
from limacot.run.launch import RESOLVED_CONFIG, is_launched, launch_job, process_count
from limacot.run.plan import Job, Plan, build_plan, record_plan
from limacot.study.store import STORE, ResultsStore

log = logging.getLogger(__name__)
PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "lm_eval")


@dataclass
class PlannedJob:
    label: str
    stage: str
    key: str
    cached: bool


def cell_filter(pattern: str | None) -> Callable:
    """--only: a glob over cell ids such as 'smol/lima*/20/*'."""
    return (lambda cell: True) if not pattern else (lambda cell: fnmatch.fnmatch(cell.id, pattern))


def describe(plan: Plan) -> list[PlannedJob]:
    return [PlannedJob(j.label, j.stage, j.key[:16], j.is_done()) for j in plan.jobs]


def run_study(config: StudyConfig, study_dir: str | Path, *, only: str | None = None,
              stages: set[str] | None = None, on_job: Callable[[Job, str], None] | None = None,
              progress: bool = False) -> Plan:
    """Run every job that is not done yet; returns the plan (see `describe` for its state).
    `on_job(job, state)` sees each job's state change (cached, run, resume, done); with
    `progress`, the stages run in this process draw their progress bars, with time left."""
    study_dir = Path(study_dir)
    plan = build_plan(config, study_dir, cell_filter(only))
    plan.show_progress = progress
    atomic_write_text(study_dir / RESOLVED_CONFIG, dump_config(config))
    processes = process_count(config)
    store = ResultsStore(study_dir / STORE)
    try:
        store.set_provenance(provenance())
        record_plan(plan, store)
        for job in plan.jobs:
            if stages and job.stage not in stages:
                continue
            _run_one(plan, job, store, on_job or (lambda j, state: None), processes=processes)
    finally:
        store.close()
    return plan


def _run_one(plan: Plan, job: Job, store: ResultsStore, on_job, *, processes: int = 1) -> None:
    cell_id = job.cell.id if job.cell else (job.pair.id if job.pair else None)
    status = store.stage_status(job.key)
    if job.is_done():
        if status is None or status["status"] != "done":  # made elsewhere (slurm) or killed after the marker
            store.start_stage(job.stage, job.key, cell_id, job.inputs)
            store.finish_stage(job.key, str(job.out), stored_rows(plan, job))
        _link_data(plan, job)
        on_job(job, "cached")
        return
    on_job(job, "resume" if status is not None and status["status"] == "running" and job.resumable else "run")
    store.start_stage(job.stage, job.key, cell_id, job.inputs)
    try:
        rows = launch_job(plan, job, processes) if is_launched(job, processes) else run_job(plan, job)
    except BaseException as err:
        store.fail_stage(job.key, "".join(traceback.format_exception_only(type(err), err)))
        raise
    store.finish_stage(job.key, str(job.out), rows)
    _link_data(plan, job)
    on_job(job, "done")


def _link_data(plan: Plan, job: Job) -> None:
    if job.stage == "data":
        link_current_data(plan.study_dir, job)


def provenance() -> dict[str, str]:
    """What produced the numbers: limacot and package versions, python, git commit (if any)."""
    values = {"limacot": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            values[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            values[name] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parent)
        values["git_commit"] = commit.stdout.strip() if commit.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        values["git_commit"] = "unknown"
    return values


def run_single_job(config: StudyConfig, study_dir: str | Path, key: str) -> Job:
    """Run the one job whose key starts with `key` (what a slurm script does). In a
    multi-process launch only RANK 0 writes the store and the completion marker."""
    study_dir = Path(study_dir)
    plan = build_plan(config, study_dir)
    job = find_job(plan, key)
    if int(os.environ.get("RANK", "0")) != 0:
        run_job(plan, job, mark=False)
        return job
    store = ResultsStore(study_dir / STORE)
    try:
        if job.cell:
            store.add_cell(job.cell)
        _run_one(plan, job, store, lambda j, state: None)
    finally:
        store.close()
    return job


def run_worker(config: StudyConfig, study_dir: str | Path, key: str) -> Job:
    """One process of a launched job (`--worker`): the job's stage function into its work
    folder, nothing else; the `limacot run` that launched it writes the store and the marker."""
    plan = build_plan(config, Path(study_dir))
    job = find_job(plan, key)
    run_stage(plan, job, work_dir(job))
    return job


def find_job(plan: Plan, key: str) -> Job:
    """The one job whose key starts with `key`."""
    matches = [j for j in plan.jobs if j.key.startswith(key)]
    if len(matches) != 1:
        why = (" (keys follow content: the config, a data or model file, or the commit an hf: id resolves to "
               "changed since the job was planned; run `limacot run` again to plan anew)") if not matches else ""
        raise LimacotInputError(f"--job {key}: matches {len(matches)} jobs of this study (expected one){why}")
    return matches[0]
