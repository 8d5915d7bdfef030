"""Executing one job of the plan through the stages' library functions.

Each `run_<stage>` writes the job's output folder and returns the rows the results store
records for it (as (sql, params) pairs). Stages that can continue themselves (train,
generate, judge) run in place; the others run into a temporary folder renamed into place,
so an interrupted one restarts cleanly.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from limacot.atomic import atomic_write_json
from limacot.run.plan import MARKER, Job, Plan

Rows = list[tuple[str, tuple]]
NOT_SCORES = {"alias", "sample_len", "sample_count"}  # lm-eval bookkeeping in results.json, not metrics


def run_job(plan: Plan, job: Job, *, mark: bool = True) -> Rows:
    """Run `job` and (if `mark`) leave its completion marker; returns the store rows.
    Processes other than the main one of a multi-process job run with mark=False."""
    runner = {"data": _data, "train": _train, "eval": _eval, "generate": _generate, "judge": _judge,
              "compare": _compare}[job.stage]
    if job.resumable:
        job.out.mkdir(parents=True, exist_ok=True)
        rows = runner(plan, job, job.out)
    else:
        tmp = job.out.with_name(job.out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        rows = runner(plan, job, tmp)
        if tmp.exists():
            shutil.rmtree(job.out, ignore_errors=True)
            tmp.rename(job.out)
    if mark:
        atomic_write_json(job.out / MARKER, {"stage": job.stage, "key": job.key, "inputs": job.inputs})
    return rows


def stored_rows(plan: Plan, job: Job) -> Rows:
    """The store rows of an already finished job (adopting outputs made elsewhere, e.g. by slurm)."""
    return {"eval": _eval_rows, "judge": _judge_rows, "compare": _compare_rows}.get(
        job.stage, lambda p, j, out: [])(plan, job, job.out)


def _data(plan: Plan, job: Job, out: Path) -> Rows:
    from limacot.config import DataBuildConfig, load_config
    from limacot.data.build import build_data

    build_data(load_config(plan.config.data, DataBuildConfig), out)
    return []


def _train(plan: Plan, job: Job, out: Path) -> Rows:
    from limacot.train.config import TrainConfig
    from limacot.train.recipe import CONFIG_FILE, train

    config = TrainConfig.model_validate(job.inputs["config"])
    train(config, out, resume=(out / CONFIG_FILE).exists(), progress=False)
    return []


def _eval(plan: Plan, job: Job, out: Path) -> Rows:
    from limacot.eval.config import EvalConfig
    from limacot.eval.harness import run_eval

    settings = plan.config.eval
    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # its per-task notices drown the study's progress
    run_eval(EvalConfig(model=job.inputs["model"], **settings.model_dump()), out)
    return _eval_rows(plan, job, out)


def _eval_rows(plan: Plan, job: Job, out: Path) -> Rows:
    """metrics rows: every task x metric of results.json, and each few-shot seed's value."""
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    n_samples = results.get("n-samples", {})
    rows: Rows = []
    sql = "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    for task, metrics in results.get("results", {}).items():
        n = (n_samples.get(task) or {}).get("effective")
        for name, value in metrics.items():
            metric, _, flt = name.partition(",")
            if not isinstance(value, (int, float)) or metric.endswith("_stderr") or metric in NOT_SCORES:
                continue
            stderr = metrics.get(f"{metric}_stderr,{flt}")
            rows.append((sql, (job.cell.id, job.key, task, metric, float(value),
                               stderr if isinstance(stderr, (int, float)) else None, n, -1)))
    variance = results.get("limacot", {}).get("seed_variance", {})
    for task, metrics in variance.items():
        for metric, summary in metrics.items():
            for seed, value in zip(results["limacot"].get("seeds_run", []), summary.get("values", [])):
                rows.append((sql, (job.cell.id, job.key, task, metric.partition(",")[0], value, None, None, seed)))
    return rows


def _generate(plan: Plan, job: Job, out: Path) -> Rows:
    from limacot.generation import GenerationSettings, generate_file

    judge = plan.config.judge
    settings = GenerationSettings(max_new_tokens=judge.max_new_tokens, greedy=judge.greedy, seed=job.cell.seed)
    generate_file(job.inputs["model"], judge.prompts, out, settings, resume=(out / "settings.json").exists(),
                  limit=judge.limit)
    return []


def _judge(plan: Plan, job: Job, out: Path) -> Rows:
    from limacot.judge.pairwise import JudgeConfig, judge_pairwise

    a, b = (plan_job(plan, "generate", cell) for cell in job.pair)
    judge_pairwise(a.out, [b.out], out, JudgeConfig(judge=plan.config.judge.judge))
    return _judge_rows(plan, job, out)


def _judge_rows(plan: Plan, job: Job, out: Path) -> Rows:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = []
    for run in summary["runs"]:
        low, high = run.get("ci95") or (None, None)
        rows.append(("INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (job.pair[0].id, job.pair[1].id, summary["judge"], run["win"], run["tie"], run["loss"],
                      run["unparseable"], run["b_equal_or_better"], low, high, run["n"])))
    return rows


def _compare(plan: Plan, job: Job, out: Path) -> Rows:
    from limacot.eval.compare import compare_runs

    a, b = (plan_job(plan, "eval", cell) for cell in job.pair)
    atomic_write_json(out / "compare.json", compare_runs(a.out, b.out))
    return _compare_rows(plan, job, out)


def _compare_rows(plan: Plan, job: Job, out: Path) -> Rows:
    result = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    kind = f"{job.pair[1].variant} vs {job.pair[0].variant}"
    rows = []
    for task in result["tasks"]:
        for metric, stats in task["metrics"].items():
            rows.append(("INSERT OR REPLACE INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (kind, task["task"], job.pair[0].id, job.pair[1].id, metric, stats["diff"],
                          stats["ci_low"], stats["ci_high"], task["mcnemar"]["p_value"],
                          task.get("p_holm"), task["n"])))
    return rows


def plan_job(plan: Plan, stage: str, cell) -> Job:
    return next(j for j in plan.jobs if j.stage == stage and j.cell == cell)
