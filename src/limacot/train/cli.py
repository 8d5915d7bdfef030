"""`limacot train`: registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from limacot.errors import LimacotInputError
from limacot.io.cli_common import (ATTN_FLAG, DEVICE_FLAG, check_out_dir, compute_flags, config_flag, handled_errors,
                                   out_console, print_json)
from limacot.io.yaml_config import load_config, missing_files
from limacot.train.config import TrainConfig


INPUT_FILES = ("data", "dev_prompts", "dev_data")  # read by a run: checked before it starts


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    config: Optional[Path] = typer.Option(None, "--config", help="Train YAML (recipe, model, data, overrides)."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints/, final/, metrics.jsonl, selection.json."),
    model: Optional[str] = config_flag(TrainConfig, "model"),
    data: Optional[str] = config_flag(TrainConfig, "data"),
    method: Optional[str] = config_flag(TrainConfig, "method"),
    recipe: Optional[str] = config_flag(TrainConfig, "recipe"),
    epochs: Optional[int] = config_flag(TrainConfig, "epochs"),
    max_steps: Optional[int] = config_flag(TrainConfig, "max_steps"),
    seed: Optional[int] = config_flag(TrainConfig, "seed"),
    merge: Optional[bool] = config_flag(TrainConfig, "merge"),
    device: Optional[str] = DEVICE_FLAG,
    dtype: Optional[str] = typer.Option(None, "--dtype", help="auto | bfloat16 | float16 | float32 (auto: float32 "
                                        "for full fine-tuning, a bf16 base for LoRA on a GPU, fp32 on CPU)."),
    attn: Optional[str] = ATTN_FLAG,
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last complete checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the selection and summary as JSON."),
) -> None:
    """Fine-tune a backbone with the LIMA recipe (or `sft`)."""
    from limacot.train.recipe import train  # deferred: imports torch, transformers and peft

    with handled_errors():
        check_out_dir(out)
        flags = {"model": model, "data": data, "method": method, "recipe": recipe, "epochs": epochs,
                 "max_steps": max_steps, "seed": seed, "merge": merge, **compute_flags(device, dtype, attn)}
        cfg = load_config(config, TrainConfig, flags)
        problems = [f"--{p}" if flags.get(p.partition(":")[0]) else f"{config}: {p}"  # a flag or the file
                    for p in missing_files(cfg, INPUT_FILES)]
        if problems:  # found before the model loads, not when training is done
            raise LimacotInputError("; ".join(problems))
        result = train(cfg, out, resume=resume, progress=not as_json)
    if as_json:
        print_json({"run_dir": str(result.run_dir), "final": str(result.final), "selection": result.selection,
                    "summary": result.summary})
    else:
        chosen, summary = result.selection.get("chosen_epoch"), result.summary
        if summary.get("stopped_after_window"):
            out_console.print(f"stopped after epoch {summary['epochs_trained']:g} of {summary['epochs_scheduled']}: "
                              f"the save window ends there (stop_after_window)")
        reason = escape(str(result.selection.get("reason")))
        out_console.print(f"[green]trained[/]: final/ = epoch {chosen} ({reason}); run folder "
                          f"{escape(str(result.run_dir))}")
