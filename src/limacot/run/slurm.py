"""`limacot run --launcher slurm`: one sbatch script per job that needs a node, chained by dependencies.

    STUDY_DIR/slurm/data-<key16>.sbatch      the data build (CPU only); every train job waits for it
    STUDY_DIR/slurm/<stage>-<key16>.sbatch   train: multi-node `accelerate launch` with the preset's
                                            accelerate config (one task per node, torchrun inside);
                                            eval/generate: one GPU. On a CPU study (compute device
                                            `cpu`) one plain process each, no GPU requested
    STUDY_DIR/slurm/finish[-<only8>].sbatch  after all of them: `limacot run --launcher local`
                                            (the references' answers, compare, judge, report: the
                                            rest, in that job)
    STUDY_DIR/slurm/submitted.json          what limacot submitted: job ids, logs
                                            (`limacot.study.submissions`)
    STUDY_DIR/slurm/submit.sh               the last submission as a script, for the record, or to
                                            submit by hand where limacot cannot call sbatch

Each script runs exactly one job with `limacot run --job KEY`, which writes the same output
folder and completion marker as a local run; the final `limacot run` adopts them into the
results store. Submitting again submits only what is neither done (completion marker) nor
still pending or running in Slurm; a queued job whose dependency is submitted anew is
cancelled and submitted again behind it.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from limacot.io.fingerprint import sha256_json
from limacot.run import queue
from limacot.run.launch import job_device
from limacot.run.plan import GPU_STAGES, Job, Plan, record_plan
from limacot.study.store import STORE, ResultsStore
from limacot.study.submissions import RECORD, SLURM_DIR, load_submissions, new_submission, record

SLURM_STAGES = ("data",) + GPU_STAGES
CPUS_PER_GPU = 8
HEADER = """#!/usr/bin/env bash
#SBATCH --job-name=limacot-{name}
#SBATCH --output={logs}/%x-%j.out
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
{gres}#SBATCH --time={time}
{extra}set -euo pipefail
cd {cwd}
"""


@dataclass
class SlurmJob:
    """One sbatch script: the plan jobs it runs, its resources and the scripts it waits for."""

    name: str
    jobs: list[Job]
    nodes: int
    gpus: int                      # per node; 0 requests no GPU
    body: str
    after: list[str] = field(default_factory=list)
    final: bool = False            # the last script: done only when everything is

    @property
    def label(self) -> str:
        return "the rest + report" if self.final else self.jobs[0].label

    def is_done(self) -> bool:
        return all(job.is_done() for job in self.jobs)


@dataclass
class Action:
    """What a submission does with one script: submit it, or leave it (done / queued)."""

    slurm: SlurmJob
    action: str                    # submit | done | queued
    job_id: str | None = None      # the queued job's id (once submitted, the new one)
    state: str = ""                # Slurm's state of the recorded job
    cancel: str | None = None      # a recorded job still queued behind a dependency submitted anew


def script_name(job: Job) -> str:
    return f"{job.stage}-{job.key[:16]}"


def slurm_jobs(plan: Plan, config_path: Path, only: str | None = None) -> list[SlurmJob]:
    """Every script of the study in dependency order; the final one (`finish`) runs the rest."""
    base = f"run --config {shlex.quote(str(config_path))} --out {shlex.quote(str(plan.study_dir.resolve()))}"
    by_key, jobs = {}, []
    for job in (j for j in plan.jobs if _own_script(j)):
        body, nodes, gpus = _body(plan, job, f"{base} --job {job.key}")
        by_key[job.key] = SlurmJob(script_name(job), [job], nodes, gpus, body,
                                   [by_key[d.key].name for d in job.deps if d.key in by_key])
        jobs.append(by_key[job.key])
    rest = [j for j in plan.jobs if not _own_script(j)]
    finish = f"{base} --launcher local" + (f" --only {shlex.quote(only)}" if only else "")  # in this job
    gpus = 0 if _on_cpu(plan, None) else 1
    name = "finish" + (f"-{sha256_json(only)[:8]}" if only else "")
    jobs.append(SlurmJob(name, rest, 1, gpus, f"{_python()} -m limacot {finish}\n", [j.name for j in jobs], True))
    return jobs


def _own_script(job: Job) -> bool:
    """Whether `job` gets a script of its own: data, train, eval and a cell's generate job; a
    reference's answers (an API or a file, no GPU) are made in the final job with the rest."""
    return job.stage in SLURM_STAGES and not job.is_reference


def _python() -> str:
    return shlex.quote(sys.executable)


def _on_cpu(plan: Plan, job: Job | None) -> bool:
    """Whether a job runs on CPU (its device as the local launcher resolves it; for the final
    job, the study's). Any other device, `auto` included, means GPUs on a cluster."""
    return (job_device(plan, job) if job else plan.config.compute.device) == "cpu"


def _body(plan: Plan, job: Job, run_cmd: str) -> tuple[str, int, int]:
    """The commands of one script, its node count and GPUs per node."""
    if job.stage == "data" or _on_cpu(plan, job):
        return f"{_python()} -m limacot {run_cmd}\n", 1, 0
    if job.stage == "train":
        return _train_body(job, run_cmd)
    return f"{_python()} -m limacot {run_cmd}\n", 1, 1


def _accelerate_config(job: Job) -> dict:
    import yaml

    path = job.inputs["config"].get("accelerate_config")
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else {}


def _train_body(job: Job, run_cmd: str) -> tuple[str, int, int]:
    """The srun line for a (multi-node) training job, its node count and GPUs per node."""
    config_path = job.inputs["config"].get("accelerate_config")
    accelerate = _accelerate_config(job)
    nodes = int(accelerate.get("num_machines", 1))
    gpus = max(1, int(accelerate.get("num_processes", 1)) // nodes)
    launch = ["accelerate", "launch", "--num_machines", "$SLURM_NNODES", "--num_processes",
              "$((SLURM_NNODES * %d))" % gpus, "--machine_rank", "$SLURM_NODEID",
              "--main_process_ip", "$MASTER_ADDR", "--main_process_port", "29500"]
    if config_path:
        launch[2:2] = ["--config_file", shlex.quote(config_path)]
    body = ('MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\nexport MASTER_ADDR\n'
            f"srun bash -c '{' '.join(launch)} -m limacot {run_cmd}'\n")
    return body, nodes, gpus


def render(slurm: SlurmJob, folder: Path, *, partition: str | None, time: str) -> str:
    """The sbatch script of one job (GPUs and CPUs requested only when it uses GPUs)."""
    gres = (f"#SBATCH --gpus-per-node={slurm.gpus}\n#SBATCH --cpus-per-task={CPUS_PER_GPU * slurm.gpus}\n"
            if slurm.gpus else "")
    return HEADER.format(name=slurm.name, logs=folder / "logs", nodes=slurm.nodes, gres=gres, time=time,
                         extra=f"#SBATCH --partition={partition}\n" if partition else "",
                         cwd=shlex.quote(str(Path.cwd()))) + slurm.body


def decide(plan: Plan, jobs: list[SlurmJob]) -> list[Action]:
    """For each script: `done` (every job it runs has its completion marker; for the final one,
    every script before it is done too), `queued` (its recorded submission is still pending or
    running, behind nothing submitted anew) or `submit`. Slurm is asked before the markers are
    read: a job that ends in between has left its marker, so it is never submitted twice."""
    submissions = load_submissions(plan.study_dir / SLURM_DIR)
    states = queue.queue_states([s.job_id for s in submissions.values()])
    actions: dict[str, Action] = {}
    for slurm in jobs:
        recorded = submissions.get(slurm.name)
        state = states.get(recorded.job_id) if recorded else None
        if slurm.is_done() and (not slurm.final or all(actions[a].action == "done" for a in slurm.after)):
            actions[slurm.name] = Action(slurm, "done")
        elif state and state.active and not any(actions[a].action == "submit" for a in slurm.after):
            actions[slurm.name] = Action(slurm, "queued", recorded.job_id, str(state))
        else:
            stale = recorded.job_id if state and state.state in queue.ACTIVE else None
            actions[slurm.name] = Action(slurm, "submit", None, str(state or ""), stale)
    return list(actions.values())


def submit_study(plan: Plan, config_path: Path, *, only: str | None = None, partition: str | None = None,
                 time: str = "24:00:00", submit: bool | None = None) -> list[Action]:
    """Write the scripts of what is to be submitted and `submit.sh`; submit them with sbatch
    (when it is on PATH, or `submit`) and record the job ids; the plan goes into the store.
    Returns every script's action."""
    folder = plan.study_dir / SLURM_DIR
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    store = ResultsStore(plan.study_dir / STORE)
    try:
        record_plan(plan, store)
    finally:
        store.close()
    actions = decide(plan, slurm_jobs(plan, config_path.resolve(), only))
    for action in actions:
        if action.action == "submit":
            text = render(action.slurm, folder.resolve(), partition=partition, time=time)
            (folder / f"{action.slurm.name}.sbatch").write_text(text, encoding="utf-8")
    (folder / "submit.sh").write_text(_submit_script(actions, folder), encoding="utf-8")
    (folder / "submit.sh").chmod(0o755)
    if submit if submit is not None else shutil.which("sbatch"):
        _submit(actions, folder)
    return actions


def _submit(actions: list[Action], folder: Path) -> None:
    ids = {a.slurm.name: a.job_id for a in actions if a.action == "queued"}
    queue.scancel([a.cancel for a in actions if a.cancel])
    for action in (a for a in actions if a.action == "submit"):
        name, script = action.slurm.name, (folder / f"{action.slurm.name}.sbatch").resolve()
        action.job_id = ids[name] = queue.sbatch(script, [ids[n] for n in action.slurm.after if n in ids])
        log = folder.resolve() / "logs" / f"limacot-{name}-{action.job_id}.out"
        record(folder, name, new_submission(action.job_id, script, log, [j.key for j in action.slurm.jobs]))


def _submit_script(actions: list[Action], folder: Path) -> str:
    """The submission as a shell script: the same sbatch calls, chained through variables."""
    lines = ["#!/usr/bin/env bash", "# The study's last submission, in dependency order. limacot ran these sbatch",
             f"# calls itself when sbatch was on PATH (job ids in {RECORD}); run this by hand only",
             "# where it could not.", "set -euo pipefail", f"cd {shlex.quote(str(folder.resolve()))}"]
    ids = {a.slurm.name: a.job_id for a in actions if a.action == "queued"}
    if any(a.cancel for a in actions):
        lines.append("scancel " + " ".join(a.cancel for a in actions if a.cancel))
    for n, action in enumerate(a for a in actions if a.action == "submit"):
        after = [ids[name] for name in action.slurm.after if name in ids]
        dependency = f"--dependency=afterok:{':'.join(after)} --kill-on-invalid-dep=yes " if after else ""
        lines.append(f"J{n}=$(sbatch --parsable {dependency}{action.slurm.name}.sbatch)")
        ids[action.slurm.name] = f"$J{n}"
    return "\n".join(lines) + "\n"
