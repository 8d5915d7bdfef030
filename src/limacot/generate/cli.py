"""`limacot generate`: registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from limacot.generate.api import generate_api
from limacot.generate.config import GenerateConfig, GenerationSettings
from limacot.generate.generation import generate_file
from limacot.generate.imported import import_answers
from limacot.io.cli_common import (ATTN_FLAG, DEVICE_FLAG, DTYPE_FLAG, check_out_dir, compute_flags, config_flag,
                                   handled_errors, out_console, print_json)
from limacot.io.yaml_config import load_config
from limacot.models.api import ApiOptions
from limacot.models.compute import is_main_process


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


def generate(
    config: Optional[Path] = typer.Option(None, "--config", help="Generate YAML (model, prompts, decoding, "
                                          "compute); flags override its keys."),
    prompts: Optional[str] = config_flag(GenerateConfig, "prompts"),
    out: Path = typer.Option(..., "--out", help="Output folder (generations.jsonl, settings.json)."),
    model: Optional[str] = config_flag(GenerateConfig, "model"),
    max_new_tokens: Optional[int] = config_flag(GenerateConfig, "max_new_tokens"),
    batch_size: Optional[int] = config_flag(GenerateConfig, "batch_size"),
    resume: bool = typer.Option(False, "--resume", help="Keep finished answers in OUT and answer only the rest."),
    limit: Optional[int] = config_flag(GenerateConfig, "limit"),
    greedy: Optional[bool] = config_flag(GenerateConfig, "greedy"),
    seed: Optional[int] = config_flag(GenerateConfig, "seed"),
    answers: Optional[str] = config_flag(GenerateConfig, "answers"),
    api_key_env: Optional[str] = config_flag(GenerateConfig, "api_key_env"),
    concurrency: Optional[int] = config_flag(GenerateConfig, "concurrency"),
    timeout: Optional[float] = config_flag(GenerateConfig, "timeout"),
    max_retries: Optional[int] = config_flag(GenerateConfig, "max_retries"),
    device: Optional[str] = DEVICE_FLAG,
    dtype: Optional[str] = DTYPE_FLAG,
    attn: Optional[str] = ATTN_FLAG,
    as_json: bool = typer.Option(False, "--json", help="Print the generations as JSON."),
) -> None:
    """Answer each prompt with the model's own chat template (a model without one: the plain
    Question/Answer format); appends to OUT/generations.jsonl. Under `accelerate launch
    --num_processes N` the prompts are split across the processes. An openai:MODEL[@BASE_URL]
    model is asked through its server (retried, cached in OUT/api-cache.jsonl); --import writes
    answers made elsewhere as the same kind of folder."""
    with handled_errors():
        check_out_dir(out)
        flags = {"prompts": prompts, "model": model, "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                 "limit": limit, "greedy": greedy, "seed": seed, "answers": answers, "api_key_env": api_key_env,
                 "concurrency": concurrency, "timeout": timeout, "max_retries": max_retries,
                 **compute_flags(device, dtype, attn)}
        cfg = load_config(config, GenerateConfig, flags)
        show = None if as_json else _show_answer
        imported = None
        if cfg.answers:
            imported = import_answers(cfg.answers, cfg.prompts, out, limit=cfg.limit)
            rows = imported.rows
        elif cfg.is_api:
            rows = generate_api(cfg.model, cfg.prompts, out, cfg.part(GenerationSettings), cfg.part(ApiOptions),
                                concurrency=cfg.concurrency, resume=resume, limit=cfg.limit, on_answer=show)
        else:
            rows = generate_file(cfg.model, cfg.prompts, out, cfg.part(GenerationSettings), on_answer=show,
                                 batch_size=cfg.batch_size, resume=resume, limit=cfg.limit, compute=cfg.compute())
    if not is_main_process():
        return
    if as_json:
        print_json(rows if imported is None else {"rows": rows, "imported": imported.as_dict()})
    elif imported is not None:
        _show_import(imported, out)
    else:
        out_console.print(f"[green]wrote[/] {escape(str(out / 'generations.jsonl'))} ({len(rows)} answers)")


def _show_import(report, out: Path) -> None:
    out_console.print(f"[green]imported[/] {len(report.rows)} answers for the {report.prompts} prompts into "
                      f"{escape(str(out / 'generations.jsonl'))}")
    if report.missing:
        shown = ", ".join(report.missing[:10]) + (", ..." if len(report.missing) > 10 else "")
        out_console.print(f"[yellow]missing[/]: {len(report.missing)} prompts have no answer (ids {escape(shown)}); "
                          "as A, `limacot judge` leaves them out (each B run's coverage counts them as not in A); "
                          "as B, it refuses the run unless --min-coverage allows")
    if report.left_out:
        out_console.print(f"left out: {report.left_out} answers to prompts past --limit")


def _show_answer(row: dict) -> None:
    out_console.rule(escape(f"prompt {row['id']}"))
    out_console.print(f"[bold]user:[/] {escape(row['prompt'])}", highlight=False)
    out_console.print(f"[bold]assistant:[/] {escape(row['answer'])}", highlight=False)
