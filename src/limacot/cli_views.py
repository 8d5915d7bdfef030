"""Rich renderings of command summaries for people (the --json output is for machines)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _counts_table(title: str, counts: dict, key: str, value: str = "count") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(key)
    table.add_column(value, justify="right")
    for name, count in counts.items():
        table.add_row(str(name), str(count))
    return table


def show_inspect(console: Console, summary: dict) -> None:
    """Print what `data inspect` found: records, skips with reasons, sources, turns, tokens."""
    console.print(f"[bold]{summary['path']}[/]: {summary['records']} records, format {summary['format']}",
                  highlight=False)
    if summary["skipped"]:
        console.print(_counts_table("skipped (bad records)", summary["skipped"], "reason"))
        for message in summary["errors"]:
            console.print(f"  [dim]{message}[/]", highlight=False)
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
                      f"{tokens['trained']} of {tokens['total']} tokens trained")
