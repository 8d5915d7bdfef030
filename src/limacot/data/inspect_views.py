"""Rich renderings of command summaries for people (the --json output is for machines).

Everything that came from the user (paths, source names, record text, error messages) is printed
as plain text, never as rich markup: a path such as '[red]x.jsonl' keeps its brackets."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def _counts_table(title: str, counts: dict, key: str, value: str = "count") -> Table:
    table = Table(title=escape(title), title_justify="left")
    table.add_column(key)
    table.add_column(value, justify="right")
    for name, count in counts.items():
        table.add_row(Text(str(name)), Text(str(count)))
    return table


def show_inspect(console: Console, summary: dict) -> None:
    """Print what `data inspect` found: records, skips with reasons, sources, turns, tokens."""
    console.print(f"[bold]{escape(str(summary['path']))}[/]: {summary['records']} records, "
                  f"format {escape(str(summary['format']))}", highlight=False)
    if summary["skipped"]:
        console.print(_counts_table("skipped (bad records)", summary["skipped"], "reason"))
        for message in summary["errors"]:
            console.print(Text(f"  {message}", style="dim"), highlight=False)
    if summary["trimmed"]:
        console.print(_counts_table("trimmed", summary["trimmed"], "what"))
    console.print(_counts_table("sources", summary["sources"], "source"))
    console.print(_counts_table("turns per conversation", summary["turns"], "turns", "conversations"))
    tokens = summary.get("tokens")
    if tokens:
        table = _counts_table(f"tokens per example ({tokens['template']} template)", tokens["percentiles"],
                              "percentile", "tokens")
        console.print(table)
        console.print(f"{tokens['over_max_length']} example(s) longer than {tokens['max_length']} tokens; "
                      f"{tokens['trained']} of {tokens['total']} tokens trained", markup=False)
