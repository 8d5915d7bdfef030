"""`limacot report STUDY_DIR`: registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from limacot.io.cli_common import check_out_dir, handled_errors, out_console, print_json
from limacot.report.write import write_report


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)


def report_command(
    study_dir: Path = typer.Argument(..., help="A study folder written by `limacot run` (holds results.sqlite)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default: STUDY_DIR/report)."),
    as_json: bool = typer.Option(False, "--json", help="Print the written files as JSON."),
) -> None:
    """Write the study's report into STUDY_DIR/report/ (or --out): report.md, a self-contained
    report.html, PNG charts and CSV tables."""
    with handled_errors():
        check_out_dir(out)
        paths = write_report(study_dir, out)
    if as_json:
        print_json({name: str(path) for name, path in paths.items()})
    else:
        out_console.print(f"[green]wrote[/] {escape(str(paths['html']))} and {escape(str(paths['markdown']))} "
                          f"({sum(p.suffix == '.png' for p in paths.values())} charts)")
