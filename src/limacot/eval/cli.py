"""`limacot eval`, `limacot eval compare`, `limacot eval list`: registered by `register(app)`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from limacot.errors import LimacotInputError
from limacot.eval.catalog import TASKS_DIR, leaves_of, task_manager
from limacot.eval.compare import compare_runs
from limacot.eval.config import EvalConfig
from limacot.eval.scores import metric_rows
from limacot.eval.views import request_labels, show_comparison, show_results
from limacot.io.cli_common import (ATTN_FLAG, DEVICE_FLAG, DTYPE_FLAG, check_out_dir, compute_flags, config_flag,
                                   handled_errors, out_console, print_json, progress_bars)
from limacot.io.yaml_config import load_config
from limacot.models.compute import is_main_process
from limacot.stats.bootstrap import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

eval_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                       help="Few-shot benchmark evaluation on lm-evaluation-harness (KoBEST, KMMLU, HAE-RAE, "
                            "MMLU, ARC, GSM8K, Ko-GSM8K, and lm-eval's own tasks).")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.callback()
def evaluate(
    ctx: typer.Context,
    model: Optional[str] = config_flag(EvalConfig, "model"),
    tasks: Optional[str] = config_flag(EvalConfig, "tasks"),
    num_fewshot: Optional[int] = config_flag(EvalConfig, "num_fewshot"),
    data_dir: Optional[Path] = config_flag(EvalConfig, "data_dir"),
    limit: Optional[int] = config_flag(EvalConfig, "limit"),
    backend: Optional[str] = config_flag(EvalConfig, "backend"),
    fewshot_seeds: Optional[int] = config_flag(EvalConfig, "fewshot_seeds"),
    seed: Optional[int] = config_flag(EvalConfig, "seed"),
    batch_size: Optional[int] = config_flag(EvalConfig, "batch_size"),
    dtype: Optional[str] = DTYPE_FLAG,
    device: Optional[str] = DEVICE_FLAG,
    attn: Optional[str] = ATTN_FLAG,
    max_gen_toks: Optional[int] = config_flag(EvalConfig, "max_gen_toks"),
    threads: Optional[int] = config_flag(EvalConfig, "threads"),
    config: Optional[Path] = typer.Option(None, "--config", help="Eval YAML; flags override its keys."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as one JSON object."),
) -> None:
    """Evaluate a model: OUT/results.json, samples/<task>.jsonl, summary.md, config.resolved.yaml."""
    if ctx.invoked_subcommand is not None:
        return
    with handled_errors():
        if out is None:
            raise LimacotInputError("--out DIR is required (where results.json, samples/ and summary.md go)")
        check_out_dir(out)
        flags = {"model": model, "tasks": tasks, "num_fewshot": num_fewshot, "limit": limit,
                 "data_dir": str(data_dir) if data_dir else None, "backend": backend,
                 "fewshot_seeds": fewshot_seeds, "seed": seed, "batch_size": batch_size,
                 "max_gen_toks": max_gen_toks, "threads": threads, **compute_flags(device, dtype, attn)}
        if config is None and tasks is None:
            raise LimacotInputError("--tasks is required (or --config FILE.yaml naming them); "
                                    "e.g. --tasks kobest. `limacot eval list` prints every task and group.")
        cfg = load_config(config, EvalConfig, flags)
        run = _run_with_progress(cfg, out, quiet=as_json or not is_main_process())
    if not run:  # a non-main process of a multi-process launch: the main one reports
        return
    if as_json:
        print_json(_json_summary(run, out))
    else:
        show_results(out_console, run, out)


def _run_with_progress(cfg, out: Path, quiet: bool) -> dict:
    from limacot.eval.harness import offline_if_local, run_eval  # deferred: imports lm_eval

    offline_if_local(cfg.data_dir, cfg.model, cfg.tasks)
    if quiet:
        return run_eval(cfg, out)
    with progress_bars() as update:
        return run_eval(cfg, out, report=request_labels(update))


def _json_summary(run: dict, out: Path) -> dict:
    info = run["limacot"]
    return {"out": str(out), "scores": metric_rows(run.get("results", {})), "n_samples": run.get("n-samples", {}),
            "seed_variance": info["seed_variance"], "seeds": info["seeds"], "skipped_tasks": info["skipped_tasks"],
            "notes": info["notes"], "wall_seconds": info["wall_seconds"]}


@eval_app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="Output folder of run A (the baseline)."),
    run_b: Path = typer.Argument(..., help="Output folder of run B."),
    resamples: int = typer.Option(BOOTSTRAP_RESAMPLES, "--resamples", min=100, help="Bootstrap resamples."),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--seed", help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Paired comparison of B vs A on the same docs: McNemar, bootstrap CIs, Holm across tasks."""
    with handled_errors():
        result = compare_runs(run_a, run_b, resamples=resamples, seed=seed)
    if as_json:
        print_json(result)
    else:
        show_comparison(out_console, result)


@eval_app.command("list")
def list_tasks(as_json: bool = typer.Option(False, "--json", help="Print groups and tasks as JSON.")) -> None:
    """The task pack: groups, tasks, and the folder to pass to plain lm-eval as --include_path."""
    with handled_errors():
        manager = task_manager(None)
        groups = {g: leaves_of(manager, g) for g in manager.all_groups}
    if as_json:
        print_json({"include_path": str(TASKS_DIR), "groups": groups, "tasks": manager.all_subtasks})
        return
    out_console.print(f"[bold]include path[/] (plain lm-eval: --include_path): {TASKS_DIR}", highlight=False)
    for group, leaves in groups.items():
        shown = ", ".join(leaves[:6]) + (f", ... ({len(leaves)} tasks)" if len(leaves) > 6 else "")
        out_console.print(f"[bold cyan]{group}[/]: {shown}", highlight=False)
    out_console.print("lm-eval's own tasks and groups can be named too (`lm-eval ls tasks`); these names are the "
                      "pack's.", highlight=False)
