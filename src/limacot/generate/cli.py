"""`limacot generate`: registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from limacot.generate.config import GenerateConfig, GenerationSettings
from limacot.generate.generation import generate_file
from limacot.io.cli_common import (ATTN_FLAG, DEVICE_FLAG, DTYPE_FLAG, check_out_dir, compute_flags, config_flag,
                                   handled_errors, out_console, print_json)
from limacot.io.yaml_config import load_config
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
    device: Optional[str] = DEVICE_FLAG,
    dtype: Optional[str] = DTYPE_FLAG,
    attn: Optional[str] = ATTN_FLAG,
    as_json: bool = typer.Option(False, "--json", help="Print the generations as JSON."),
) -> None:
    """Answer each prompt with the model's own chat template (a model without one: the plain
    Question/Answer format); appends to OUT/generations.jsonl. Under `accelerate launch
    --num_processes N` the prompts are split across the processes."""
    with handled_errors():
        check_out_dir(out)
        flags = {"prompts": prompts, "model": model, "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                 "limit": limit, "greedy": greedy, "seed": seed, **compute_flags(device, dtype, attn)}
        cfg = load_config(config, GenerateConfig, flags)
        rows = generate_file(cfg.model, cfg.prompts, out, cfg.part(GenerationSettings),
                             on_answer=None if as_json else _show_answer, batch_size=cfg.batch_size, resume=resume,
                             limit=cfg.limit, compute=cfg.compute())
    if not is_main_process():
        return
    if as_json:
        print_json(rows)
    else:
        out_console.print(f"[green]wrote[/] {escape(str(out / 'generations.jsonl'))} ({len(rows)} answers)")


def _show_answer(row: dict) -> None:
    out_console.rule(escape(f"prompt {row['id']}"))
    out_console.print(f"[bold]user:[/] {escape(row['prompt'])}", highlight=False)
    out_console.print(f"[bold]assistant:[/] {escape(row['answer'])}", highlight=False)
