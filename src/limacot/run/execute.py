"""Executing one job of the plan through the stages' library functions.

Each stage function writes the job's output into a work folder; `stored_rows` then reads the
rows the results store records for it (as (sql, params) pairs) from the published output.
Stages that can continue themselves (train, generate, judge) work in place; the others work in
a fresh temporary folder renamed into place, so an interrupted one restarts cleanly.

    run_job = start_work -> run_stage -> finish_job (publish, rows, completion marker)

A job launched across processes (`limacot.run.launch`) splits the same steps: the main
`limacot run` process starts and finishes it, every launched process runs `run_stage`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from limacot.data.build import build_data
from limacot.data.sources import read_prompts
from limacot.eval.compare import compare_runs
from limacot.eval.config import EvalConfig
from limacot.eval.scores import metric_base, metric_rows
from limacot.eval.views import request_labels
from limacot.generate.api import generate_api
from limacot.generate.generation import GenerationSettings, generate_file
from limacot.generate.imported import import_answers
from limacot.io.atomic import atomic_write_json
from limacot.io.cli_common import progress_bars
from limacot.judge.absolute import GradeConfig, grade_runs
from limacot.judge.config import JudgeConfig
from limacot.judge.pairwise import judge_pairwise
from limacot.models.api import ApiOptions
from limacot.run.plan import MARKER, Job, Plan, data_build_config
from limacot.study.store import Rows, comparison_rows, grade_rows, judgment_rows
from limacot.train.config import TrainConfig

NOT_SCORES = {"alias", "sample_len", "sample_count"}  # lm-eval bookkeeping in results.json, not metrics


def run_job(plan: Plan, job: Job, *, mark: bool = True) -> Rows:
    """Run `job` and (if `mark`) publish it and leave its completion marker; returns the store
    rows. Processes other than the main one of a multi-process job run with mark=False."""
    run_stage(plan, job, start_work(job))
    return finish_job(plan, job) if mark else []


def work_dir(job: Job) -> Path:
    """Where the stage writes: the output folder itself, or its temporary sibling."""
    return job.out if job.resumable else job.out.with_name(job.out.name + ".tmp")


def start_work(job: Job) -> Path:
    """The work folder: created for a stage that continues itself, else removed (the stage
    writes it afresh)."""
    work = work_dir(job)
    if job.resumable:
        work.mkdir(parents=True, exist_ok=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return work


def run_stage(plan: Plan, job: Job, work: Path) -> None:
    """The job's stage function, writing into `work` (every process of a launched job runs it)."""
    stages = {"data": _data, "train": _train, "eval": _eval, "generate": _generate, "judge": _judge,
              "compare": _compare, "grade": _grade}
    stages[job.stage](plan, job, work)


def finish_job(plan: Plan, job: Job) -> Rows:
    """Publish the work folder as the job's output, read its store rows, write the marker."""
    work = work_dir(job)
    if work != job.out and work.exists():
        shutil.rmtree(job.out, ignore_errors=True)
        work.rename(job.out)
    rows = stored_rows(plan, job)
    atomic_write_json(job.out / MARKER, {"stage": job.stage, "key": job.key, "inputs": job.inputs})
    return rows


def stored_rows(plan: Plan, job: Job) -> Rows:
    """The store rows of a finished job's output (also to adopt outputs made elsewhere, e.g. by slurm)."""
    return {"eval": _eval_rows, "judge": _judge_rows, "compare": _compare_rows, "grade": _grade_rows}.get(
        job.stage, lambda p, j, out: [])(plan, job, job.out)


def count_into(update, label: str, total: int):
    """A callback that counts one more done item into the progress bar `label` of `total`."""
    done = 0
    update(label, done, total)

    def one() -> None:
        nonlocal done
        done += 1
        update(label, done, total)
    return one


def _data(plan: Plan, job: Job, out: Path) -> None:
    build_data(data_build_config(plan, job), out)


def _train(plan: Plan, job: Job, out: Path) -> None:
    from limacot.train.recipe import CONFIG_FILE, train  # deferred: imports torch, transformers and peft

    config = TrainConfig.model_validate(job.inputs["config"])
    train(config, out, resume=(out / CONFIG_FILE).exists(), progress=plan.show_progress)


def _eval(plan: Plan, job: Job, out: Path) -> None:
    from limacot.eval.harness import run_eval  # deferred: imports lm_eval

    settings = {**plan.config.eval.model_dump(), **plan.config.compute.model_dump()}
    with progress_bars(plan.show_progress) as update:
        run_eval(EvalConfig(model=job.inputs["model"], **settings), out, report=request_labels(update))


def _eval_rows(plan: Plan, job: Job, out: Path) -> Rows:
    """metrics rows: every task x metric of results.json, and each few-shot seed's value."""
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    n_samples = results.get("n-samples", {})
    rows: Rows = []
    sql = "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    for row in metric_rows(results.get("results", {})):
        if row["value"] is None or metric_base(row["metric"]) in NOT_SCORES:
            continue
        n = (n_samples.get(row["task"]) or {}).get("effective")
        rows.append((sql, (job.cell.id, job.key, row["task"], row["metric"], row["value"], row["stderr"], n, -1)))
    variance = results.get("limacot", {}).get("seed_variance", {})
    for task, metrics in variance.items():
        for metric, summary in metrics.items():
            for seed, value in zip(results["limacot"].get("seeds_run", []), summary.get("values", [])):
                rows.append((sql, (job.cell.id, job.key, task, metric, value, None, None, seed)))
    return rows


def _generate(plan: Plan, job: Job, out: Path) -> None:
    judge = plan.config.judge
    if job.is_reference:
        _reference(plan, job, out)
        return
    settings = GenerationSettings(max_new_tokens=judge.max_new_tokens, greedy=judge.greedy, seed=job.cell.seed)
    total = len(read_prompts(judge.prompts)[:judge.limit])
    with progress_bars(plan.show_progress) as update:
        answered = count_into(update, f"answers {job.cell.id}", total)
        generate_file(job.inputs["model"], judge.prompts, out, settings, resume=(out / "settings.json").exists(),
                      limit=judge.limit, compute=plan.config.compute, batch_size=judge.batch_size,
                      on_answer=lambda row: answered())


def _reference(plan: Plan, job: Job, out: Path) -> None:
    """A reference's answers: asked of its API model with the study's decoding (and the judge's
    key variable, concurrency, timeouts and retries), or imported from its file."""
    judge = plan.config.judge
    if "answers" in job.inputs:
        import_answers(job.inputs["answers"], judge.prompts, out, limit=judge.limit)
        return
    settings = GenerationSettings(max_new_tokens=judge.max_new_tokens, greedy=judge.greedy, seed=job.inputs["seed"])
    options = ApiOptions(**judge.model_dump(include=set(ApiOptions.model_fields)))
    generate_api(job.inputs["spec"], judge.prompts, out, settings, options, concurrency=judge.concurrency,
                 resume=(out / "settings.json").exists(), limit=judge.limit)


def _judge(plan: Plan, job: Job, out: Path) -> None:
    settings = plan.config.judge.model_dump(include=set(JudgeConfig.model_fields))  # api_key_env, lang, ...
    a, b = (plan_job(plan, "generate", cell) for cell in job.pair)
    with progress_bars(plan.show_progress) as update:
        judge_pairwise(a.out, [b.out], out, JudgeConfig(**settings, **plan.config.compute.model_dump()),
                       progress=lambda done, total: update(f"judge {job.pair.id}", done, total))


def _judge_rows(plan: Plan, job: Job, out: Path) -> Rows:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return judgment_rows(job.pair.a.id, job.pair.b.id, summary)


def _grade(plan: Plan, job: Job, out: Path) -> None:
    """The cell's answers graded 1-6 by the study's judge (`limacot judge grade`)."""
    judge = plan.config.judge.model_dump(include=set(GradeConfig.model_fields) - {"max_tokens"})
    config = GradeConfig(**judge, **plan.config.grade.model_dump(), **plan.config.compute.model_dump())
    with progress_bars(plan.show_progress) as update:
        grade_runs([plan_job(plan, "generate", job.cell).out], out, config,
                   progress=lambda done, total: update(f"grade {job.cell.id}", done, total))


def _grade_rows(plan: Plan, job: Job, out: Path) -> Rows:
    return grade_rows(job.cell.id, json.loads((out / "summary.json").read_text(encoding="utf-8")))


def _compare(plan: Plan, job: Job, out: Path) -> None:
    a, b = (plan_job(plan, "eval", cell) for cell in job.pair)
    atomic_write_json(out / "compare.json", compare_runs(a.out, b.out))


def _compare_rows(plan: Plan, job: Job, out: Path) -> Rows:
    result = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    return comparison_rows(job.pair.kind, job.pair.a.id, job.pair.b.id, result)


def link_current_data(study_dir: Path, job: Job) -> None:
    """Point the links the data job names (`STUDY_DIR/data`, and `data-s<seed>` when each training
    seed selects its own data) at `job`'s build (relative symlinks, replaced atomically), so
    `data/lima/8/train.jsonl` is always the build the current plan trains on; older builds stay
    under `stages/data/<key>/`. A real folder there (the layout before builds were keyed) is
    moved to `stages/data/unkeyed/`."""
    for name in job.inputs.get("links", ["data"]):
        link = study_dir / name
        if link.is_dir() and not link.is_symlink():
            legacy = job.out.parent / "unkeyed"
            shutil.rmtree(legacy, ignore_errors=True)
            link.rename(legacy)
            logging.getLogger(__name__).warning("%s was a data build from before builds were keyed; moved to %s",
                                                link, legacy)
        tmp = link.with_name(name + ".tmp-link")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(job.out.relative_to(study_dir) if job.out.is_relative_to(study_dir) else job.out.resolve())
        tmp.replace(link)


def plan_job(plan: Plan, stage: str, cell) -> Job:
    return next(j for j in plan.jobs if j.stage == stage and j.cell == cell)
