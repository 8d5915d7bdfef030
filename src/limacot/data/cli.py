"""`limacot data inspect|build|render`: registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from limacot.data.build import build_data
from limacot.data.config import DataBuildConfig
from limacot.data.inspect import summarize
from limacot.data.inspect_views import show_inspect
from limacot.data.sources import read_records
from limacot.data.templates import get_template, highlight, prepare_tokenizer, render_many, token_counts
from limacot.errors import LimacotInputError
from limacot.io.cli_common import check_out_dir, config_flag, err_console, handled_errors, out_console, print_json
from limacot.io.yaml_config import load_config
from limacot.models.loading import load_tokenizer

data_app = typer.Typer(no_args_is_help=True, help="Read, inspect, render and build training data.")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def parse_columns(text: Optional[str]) -> dict[str, str] | None:
    """'source=question,target=answer' -> {'source': 'question', 'target': 'answer'}."""
    if not text:
        return None
    mapping = {}
    for part in text.split(","):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise LimacotInputError(f"--columns: expected OUR=THEIRS pairs separated by commas, got {part!r}")
        mapping[ours.strip()] = theirs.strip()
    return mapping


FORMAT_HELP = "lima | sharegpt | messages | alpaca | kocot (default: detected from the fields)"
COLUMNS_HELP = "Column mapping OUR=THEIRS,..., e.g. source=question,rationale=reason,target=answer"


@data_app.command("inspect")
def data_inspect(
    file: str = typer.Argument(..., help="A .jsonl/.json/.csv/.tsv/.parquet file, a hub file "
                              "hf:ORG/NAME/FILE (@REV optional), or a dataset hf:org/name[:split]."),
    format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
    columns: Optional[str] = typer.Option(None, "--columns", help=COLUMNS_HELP),
    cot_style: str = typer.Option("ko", "--cot-style", help="ko | en | answer-only (kocot records)"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed records and count them."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Model SPEC or tokenizer.model for token lengths."),
    template: str = typer.Option("lima", "--template", help="Chat template used for token lengths."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Counts, skipped records by reason, turns, sources and token lengths of a data file."""
    with handled_errors():
        report = read_records(file, format=format, columns=parse_columns(columns), cot_style=cot_style,
                              skip_bad=skip_bad)
        tok = load_tokenizer(tokenizer) if tokenizer else None
        summary = summarize(report, tok, template)
    if as_json:
        print_json(summary)
    else:
        show_inspect(out_console, summary)


@data_app.command("build")
def data_build(
    config: Path = typer.Option(..., "--config", help="Data build YAML (sources, variants, sizes...)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    seed: Optional[int] = config_flag(DataBuildConfig, "seed"),
    skip_bad: Optional[bool] = config_flag(DataBuildConfig, "skip_bad"),
    force: bool = typer.Option(False, "--force", help="Rebuild even when the outputs are up to date."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Build train.jsonl per variant and size, a dataset card and a manifest."""
    with handled_errors():
        check_out_dir(out)
        cfg = load_config(config, DataBuildConfig, {"seed": seed, "skip_bad": skip_bad})
        log = (lambda msg: None) if as_json else \
            (lambda msg: err_console.print(f"  {msg}", highlight=False, markup=False))
        result = build_data(cfg, out, force=force, log=log)
    if as_json:
        print_json({"out": str(result.out_dir), "up_to_date": result.up_to_date, **result.manifest})
    elif result.up_to_date:
        out_console.print(f"[green]up to date[/]: {escape(str(out))} already holds this build (no work done; "
                          f"--force rebuilds)")
    else:
        out_console.print(f"[green]built[/] {len(result.manifest['outputs'])} training files under "
                          f"{escape(str(out))} (card: {escape(str(out / 'card.md'))})")


@data_app.command("render")
def data_render(
    file: str = typer.Argument(..., help="A data file (any supported format), hf:ORG/NAME/FILE "
                              "(@REV optional) or hf:org/name[:split]."),
    template: str = typer.Option("lima", "--template", help="llama-2 | llama-3 | chatml | lima | tokenizer"),
    tokenizer: str = typer.Option("embedded", "--tokenizer", help="Model SPEC or a tokenizer.model file/folder."),
    n: int = typer.Option(1, "--n", min=1, help="How many examples to show."),
    format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
    columns: Optional[str] = typer.Option(None, "--columns", help=COLUMNS_HELP),
    cot_style: str = typer.Option("ko", "--cot-style", help="ko | en | answer-only (kocot records)"),
    max_length: int = typer.Option(2048, "--max-length", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print text, token counts and labels as JSON."),
) -> None:
    """Show examples as the model will see them, trained spans highlighted, with token counts."""
    with handled_errors():
        report = read_records(file, format=format, columns=parse_columns(columns), cot_style=cot_style)
        tok = load_tokenizer(tokenizer)
        chat_template = get_template(template)
        prepare_tokenizer(tok, chat_template)
        examples, dropped = render_many(report.records[:n], tok, chat_template, max_length=max_length)
    if as_json:
        print_json([{"id": r.id, "text": e.text, **token_counts(e)}
                    for r, e in zip(report.records, examples)] + ([{"dropped": dict(+dropped)}] if any(dropped.values()) else []))
        return
    for record, example in zip(report.records, examples):
        counts = token_counts(example)
        out_console.rule(escape(f"{record.id} ({record.source}): {counts['tokens']} tokens, "
                                f"{counts['trained_tokens']} trained"))
        out_console.print(highlight(example, tok), soft_wrap=True)
    if any(dropped.values()):
        err_console.print(f"dropped or truncated: {dict(+dropped)}", markup=False)
