"""`limacot generate` (and, later, `limacot judge`): registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path

import typer

from limacot.cli_common import handled_errors, out_console, print_json


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


def generate(
    prompts: str = typer.Option(..., "--prompts", help='JSONL of {"prompt": ...}, or any data file (first user turn).'),
    out: Path = typer.Option(..., "--out", help="Output folder (generations.jsonl)."),
    model: str = typer.Option("embedded", "--model", help="embedded | local dir | hf:org/name | file.gguf"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    greedy: bool = typer.Option(False, "--greedy", help="Greedy decoding instead of LIMA sampling."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the generations as JSON."),
) -> None:
    """Answer each prompt with the model's own chat template; writes OUT/generations.jsonl."""
    from limacot.generation import GenerationSettings, generate_file

    with handled_errors():
        settings = GenerationSettings(max_new_tokens=max_new_tokens, greedy=greedy, seed=seed)
        rows = generate_file(model, prompts, out, settings,
                             on_answer=None if as_json else lambda row: _show_answer(row))
    if as_json:
        print_json(rows)
    else:
        out_console.print(f"[green]wrote[/] {out / 'generations.jsonl'} ({len(rows)} answers)")


def _show_answer(row: dict) -> None:
    out_console.rule(f"prompt {row['id']}")
    out_console.print(f"[bold]user:[/] {row['prompt']}", highlight=False)
    out_console.print(f"[bold]assistant:[/] {row['answer']}", highlight=False)


