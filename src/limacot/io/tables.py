"""The one Markdown table writer: summary.md, table.md, card.md and report.md all go through it.

    markdown_table(["task", "acc"], [["arc", 0.61], ["a|b", None]], numeric=[False, True])
    -> ["| task | acc |", "|---|---:|", "| arc | 0.61 |", "| a\\|b |  |"]

A cell is its text (`str`, None as empty); a `|` in it is escaped and a line break becomes a
space, so a cell never breaks the table. Numeric columns are right-aligned.
"""

from __future__ import annotations

from typing import Sequence


def markdown_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]],
                   numeric: Sequence[bool] | None = None) -> list[str]:
    """The table's lines: header, alignment row, one line per row (see the module docstring)."""
    align = numeric or [False] * len(header)
    lines = ["| " + " | ".join(markdown_cell(h) for h in header) + " |",
             "|" + "|".join("---:" if right else "---" for right in align) + "|"]
    return lines + ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in rows]
