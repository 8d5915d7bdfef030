"""`limacot eval`: run lm-eval on the task pack and write the run's files.

    run_eval(EvalConfig(model="embedded", tasks=["kobest"], data_dir="../shared/data", limit=20), "OUT")

writes

    OUT/results.json             lm-eval's results (per task and group, n-shot, configs, versions)
                                 plus a "limacot" section: model, backend, seeds, seed variance,
                                 skipped tasks, data fallbacks, timing, fast-backend counters
    OUT/samples/<task>.jsonl     one record per doc (see limacot.eval.scores), first seed
    OUT/samples/seed-<s>/<task>.jsonl   the same for every further few-shot seed
    OUT/summary.md               the score table and notes
    OUT/config.resolved.yaml     the EvalConfig that ran

Every task runs once per few-shot seed (seed, seed+1, ...); tasks whose few-shot examples do
not depend on the seed (first_n samplers, fixed exemplars) run once and are marked so.
"""

from __future__ import annotations

import json
import logging
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

from limacot.io.atomic import atomic_write_jsonl, atomic_write_text
from limacot.models.compute import process_group, resolve_device
from limacot.models.loading import load_model, load_tokenizer
from limacot.io.yaml_config import dump_config
from limacot.eval.catalog import from_pack, plan_tasks, task_manager
from limacot.eval.config import EvalConfig
from limacot.eval.parallel import DataParallelLM
from limacot.eval.progress import ProgressLM
from limacot.eval.scores import metric_rows, sample_records, summary_markdown
from limacot.stats.intervals import seed_summary

log = logging.getLogger(__name__)
Report = Callable[[str, int, int], None]


def offline_if_local(data_dir, model: str = "", tasks: list[str] | tuple[str, ...] = ()) -> None:
    """With local data nothing may reach a hub: set the offline switches before the hub
    libraries are imported (they read them at import time). A `hf:` model spec is an explicit
    request for hub weights, so it keeps hub access for the model (datasets stay offline).
    A task the pack does not define (one of lm-eval's own) reads its data from the hub, so
    with one among `tasks` the switches are left as they are (said once, in the log)."""
    if not data_dir:
        return
    outside = tuple(name for name in tasks if not from_pack(name))
    if outside:
        _say_hub_stays_on(outside)
        return
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
    if not str(model).startswith("hf:"):
        os.environ["HF_HUB_OFFLINE"] = "1"


@lru_cache(maxsize=None)
def _say_hub_stays_on(names: tuple[str, ...]) -> None:
    log.warning("limacot eval: %s %s not in limacot's task pack (lm-eval's own) and read data from the hub, so "
                "--data-dir does not switch the hub off; it serves the pack's tasks", ", ".join(names),
                "is" if len(names) == 1 else "are")


def build_lm(cfg: EvalConfig, model=None, tokenizer=None):
    """The lm-eval backend for `cfg.backend`, around `model`/`tokenizer` or the model spec
    (loaded where `cfg`'s device/dtype/attention settings say, `limacot.models.compute`)."""
    from lm_eval.models.huggingface import HFLM

    from limacot.eval.fastlm import FastHFLM  # deferred: imports torch and transformers

    if model is None:
        model = load_model(cfg.model, cfg)
        tokenizer = tokenizer or load_tokenizer(cfg.model)
    cls = FastHFLM if cfg.backend == "fast" else HFLM
    quiet = logging.getLogger("lm_eval.models.huggingface")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "pretrained is not a str" warnings: passing a loaded model is the intent
    try:
        return cls(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size, max_length=cfg.max_length)
    finally:
        quiet.setLevel(level)


def run_eval(cfg: EvalConfig, out: str | Path, *, model=None, tokenizer=None, lm=None,
             report: Report | None = None) -> dict:
    """Evaluate and write OUT (see module docstring); returns the results.json object.

    Under a multi-process launch (`accelerate launch --num_processes N`) every process scores
    a share of the requests (`limacot.eval.parallel`) and the main process alone writes OUT,
    the same files as one process; the other processes return {}.
    """
    offline_if_local(cfg.data_dir, cfg.model, cfg.tasks)
    from lm_eval.evaluator import simple_evaluate

    started = time.perf_counter()
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    group = process_group(resolve_device(cfg.device))
    report = report if group.is_main else None
    manager = task_manager(cfg.data_dir, cfg.tasks)
    plan = plan_tasks(manager, cfg.tasks, cfg.data_dir)
    lm = lm or build_lm(cfg, model, tokenizer)
    wrapped = ProgressLM(lm, report or (lambda kind, done, total: None))
    if group.world > 1:
        wrapped = DataParallelLM(wrapped, group)
    out = Path(out)
    runs = []
    for index, seed in enumerate(cfg.seeds()):
        names = plan.requested if index == 0 else [t for t in plan.leaves if t not in plan.seed_independent]
        if not names:
            break
        if report:
            report(f"seed {seed}", index, len(cfg.seeds()))
        result = simple_evaluate(model=wrapped, tasks=names, num_fewshot=cfg.num_fewshot, limit=cfg.limit,
                                 task_manager=manager, fewshot_random_seed=seed, log_samples=True,
                                 gen_kwargs={"max_gen_toks": cfg.max_gen_toks} if cfg.max_gen_toks else None)
        runs.append((seed, result))
    if not group.is_main:
        return {}
    run = _assemble(cfg, plan, runs, lm, time.perf_counter() - started)
    _say_fallbacks(getattr(lm, "stats", None))
    run["limacot"]["requests_per_process"] = getattr(wrapped, "scored", None)
    _write(out, cfg, run, runs)
    return run


def _say_fallbacks(stats) -> None:
    """Once per eval: how many requests the fast backend sent to lm-eval's hf path, and why."""
    if stats is None or not stats.fallback_requests or stats.refused:  # a refused model was already named
        return
    why = ", ".join(f"{reason}: {n}" for reason, n in sorted(stats.fallback_reasons.items()))
    log.warning("limacot-fast: %d requests were scored on lm-eval's hf path (same scores, slower)%s; %d on "
                "shared KV caches", stats.fallback_requests, f" ({why})" if why else "", stats.continuations)


def _assemble(cfg: EvalConfig, plan, runs: list, lm, seconds: float) -> dict:
    primary = {k: v for k, v in runs[0][1].items() if k != "samples"}
    variance = _seed_variance(runs, plan)
    stats = getattr(lm, "stats", None)
    primary["limacot"] = {
        "model": cfg.model, "backend": cfg.backend, "num_fewshot": cfg.num_fewshot, "limit": cfg.limit,
        "data_dir": cfg.data_dir, "seeds": cfg.seeds(), "seeds_run": [seed for seed, _ in runs],
        "seed_independent_tasks": sorted(plan.seed_independent & set(plan.leaves)),
        "seed_variance": variance, "skipped_tasks": plan.skipped, "notes": plan.notes,
        "lm_eval_tasks": plan.lm_eval_tasks,
        "wall_seconds": seconds, "fast_backend": stats.__dict__ if stats is not None else None,
        "samples": {task: f"samples/{task}.jsonl" for task in runs[0][1].get("samples", {})},
    }
    return primary


def _seed_variance(runs: list, plan) -> dict:
    """task -> metric -> seed_summary over the seeds that ran it: a seed-independent task ran
    once, so its summary has n = 1 (not k copies of one value, which would read as sd 0 over k seeds)."""
    per_task: dict[str, dict[str, list[float]]] = {}
    for _, result in runs:
        for row in metric_rows(result.get("results", {})):
            if row["value"] is not None and row["task"] in plan.leaves:
                per_task.setdefault(row["task"], {}).setdefault(row["metric"], []).append(row["value"])
    return {task: {m: seed_summary(v) for m, v in metrics.items()} for task, metrics in per_task.items()}


def _write(out: Path, cfg: EvalConfig, run: dict, runs: list) -> None:
    from lm_eval.utils import handle_non_serializable

    out.mkdir(parents=True, exist_ok=True)
    for index, (seed, result) in enumerate(runs):
        folder = out / "samples" if index == 0 else out / "samples" / f"seed-{seed}"
        configs = result.get("configs", {})
        for task, samples in result.get("samples", {}).items():
            output_type = configs.get(task, {}).get("output_type", "multiple_choice")
            atomic_write_jsonl(folder / f"{task}.jsonl", sample_records(samples, output_type, task))
    atomic_write_text(out / "results.json",
                      json.dumps(run, ensure_ascii=False, indent=2, default=handle_non_serializable) + "\n")
    atomic_write_text(out / "summary.md", summary_markdown(run))
    atomic_write_text(out / "config.resolved.yaml", dump_config(cfg))
