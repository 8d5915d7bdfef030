"""`limacot generate`: registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from limacot.generate.generation import GenerationSettings, generate_file
from limacot.io.cli_common import (ATTN_FLAG, DEVICE_FLAG, DTYPE_FLAG, check_out_dir, compute_flags, handled_errors,
                                   out_console, print_json)
from limacot.io.yaml_config import validate_config
from limacot.models.compute import ComputeOptions, is_main_process


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


def generate(
    prompts: str = typer.Option(..., "--prompts", help='JSONL of {"prompt": ...}, or any data file (first user turn).'),
    out: Path = typer.Option(..., "--out", help="Output folder (generations.jsonl, settings.json)."),
    model: str = typer.Option("embedded", "--model", help="embedded | local dir | hf:org/name | file.gguf"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Prompts per forward pass (answers do not "
                                   "depend on it)."),
    resume: bool = typer.Option(False, "--resume", help="Keep finished answers in OUT and answer only the rest."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Answer only the first N prompts."),
    greedy: bool = typer.Option(False, "--greedy", help="Greedy decoding instead of LIMA sampling."),
    seed: int = typer.Option(0, "--seed", help="Prompt i is sampled with seed + i."),
    device: Optional[str] = DEVICE_FLAG,
    dtype: Optional[str] = DTYPE_FLAG,
    attn: Optional[str] = ATTN_FLAG,
    as_json: bool = typer.Option(False, "--json", help="Print the generations as JSON."),
) -> None:
    """Answer each prompt with the model's own chat template; appends to OUT/generations.jsonl.
    Under `accelerate launch --num_processes N` the prompts are split across the processes."""
    with handled_errors():
        check_out_dir(out)
        settings = GenerationSettings(max_new_tokens=max_new_tokens, greedy=greedy, seed=seed)
        compute = validate_config(compute_flags(device, dtype, attn), ComputeOptions, origin="flags")
        rows = generate_file(model, prompts, out, settings, on_answer=None if as_json else _show_answer,
                             batch_size=batch_size, resume=resume, limit=limit, compute=compute)
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
