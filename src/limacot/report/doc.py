"""A tiny document model and its two renderings: Markdown (report.md) and one self-contained
HTML page (report.html: inline CSS, images as base64 data URIs, nothing fetched from anywhere).

Sections build a list of blocks; `to_markdown` and `to_html` render the same list, so the two
files always show the same numbers. Inline markup in text is only `code` (backticks). Markdown
tables are written by `limacot.io.tables`, the one table writer.

    [Heading(2, "Main results"), Table(["task", "lima"], [["arc", Num("0.612", "[0.580, 0.644]")]],
                                       numeric=[False, True])]
    -> Markdown:  | task | lima |  /  |---|---:|  /  | arc | 0.612 [0.580, 0.644] |
    -> HTML:      <td class="num">0.612 <span class="ci">[0.580, 0.644]</span></td>
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Union

from limacot.io.tables import markdown_table


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Num:
    """A numeric table entry: the number, an optional detail (an interval), an optional flag."""

    main: str
    detail: str = ""
    flag: str = ""

    def plain(self) -> str:
        return " ".join(part for part in (self.main, self.detail, self.flag) if part)


Entry = Union[str, Num]


@dataclass
class Table:
    header: list[str]
    rows: list[list[Entry]]
    numeric: list[bool] | None = None   # right-aligned, tabular figures
    caption: str = ""
    stacked: bool = False               # HTML: a Num's detail on its own line (narrow columns)


@dataclass
class Image:
    filename: str     # beside report.md
    alt: str
    png: bytes


@dataclass
class Code:
    text: str


@dataclass
class Details:
    """Collapsible in HTML (closed by default); a bold lead-in line in Markdown."""

    summary: str
    blocks: list = field(default_factory=list)


Block = Union[Heading, Para, Bullets, Table, Image, Code, Details]


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


# --- Markdown ---------------------------------------------------------------------------------


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        out += _md(block)
    return "\n".join(out).rstrip() + "\n"


def _md(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text, ""]
    if isinstance(block, Para):
        return [block.text, ""]
    if isinstance(block, Bullets):
        return [f"- {item}" for item in block.items] + [""]
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Image):
        return [f"![{block.alt}]({block.filename})", ""]
    if isinstance(block, Code):
        return ["```", block.text.rstrip("\n"), "```", ""]
    lines = [f"**{block.summary}**", ""]
    for inner in block.blocks:
        lines += _md(inner)
    return lines


def _md_table(table: Table) -> list[str]:
    lines = [f"*{table.caption}*", ""] if table.caption else []
    rows = [[e.plain() if isinstance(e, Num) else e for e in row] for row in table.rows]
    return lines + markdown_table(table.header, rows, table.numeric) + [""]


# --- HTML -------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Helvetica Neue",Arial,sans-serif;
 color:#1f2328;background:#fff;margin:0 auto;max-width:1180px;padding:24px 32px 64px;line-height:1.45;font-size:15px}
h1{font-size:1.9em;border-bottom:2px solid #d0d7de;padding-bottom:.3em}
h2{font-size:1.45em;border-bottom:1px solid #d0d7de;padding-bottom:.25em;margin-top:2.2em}
h3{font-size:1.15em;margin-top:1.6em}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em;background:#f3f4f6;
 padding:.1em .3em;border-radius:4px}
pre{background:#f6f8fa;padding:12px;overflow:auto;border-radius:6px;font-size:.85em}
.scroll{overflow-x:auto;margin:.6em 0 1.2em}
table{border-collapse:collapse;font-size:.9em}
caption{caption-side:top;text-align:left;color:#57606a;font-style:italic;padding-bottom:4px}
th,td{border:1px solid #d0d7de;padding:4px 9px;vertical-align:top}
th{background:#f6f8fa;text-align:left;white-space:nowrap}
th.num{text-align:right}
tbody tr:nth-child(even){background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;
 font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.95em}
.ci{color:#57606a;font-size:.88em}
.flag{color:#8250df;font-weight:600;display:inline-block;width:.9em;text-align:left}
img{max-width:100%;height:auto;border:1px solid #eaeef2;margin:.5em 0 1em}
nav ul{columns:2;padding-left:1.2em}
details{margin:.6em 0 1.2em}
summary{cursor:pointer;font-weight:600}
"""


def to_html(blocks: list[Block], title: str) -> str:
    """One self-contained page: a table of contents from the level-2 headings, then the blocks."""
    toc = [f'<li><a href="#{anchor(b.text)}">{_inline(b.text)}</a></li>'
           for b in blocks if isinstance(b, Heading) and b.level == 2]
    body = [_html(block) for block in blocks]
    head = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n")
    nav = f'<nav><strong>Contents</strong><ul>{"".join(toc)}</ul></nav>\n' if toc else ""
    first, rest = (body[0], body[1:]) if blocks and isinstance(blocks[0], Heading) else ("", body)
    return head + first + "\n" + nav + "\n".join(rest) + "\n</body>\n</html>\n"


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        return f'<h{block.level} id="{anchor(block.text)}">{_inline(block.text)}</h{block.level}>'
    if isinstance(block, Para):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return f'<figure><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}"></figure>'
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text)}</pre>"
    inner = "\n".join(_html(b) for b in block.blocks)
    return f"<details><summary>{_inline(block.summary)}</summary>\n{inner}\n</details>"


def _html_entry(entry: Entry, stacked: bool) -> str:
    if not isinstance(entry, Num):
        return _inline(str(entry))
    flag = f'<span class="flag">{html.escape(entry.flag)}</span>'  # always there: keeps the digits aligned
    detail = f'<span class="ci">{html.escape(entry.detail)}</span>' if entry.detail else ""
    if stacked:
        return f"{html.escape(entry.main)} {flag}" + (f'<br>{detail}<span class="flag"></span>' if detail else "")
    return " ".join(part for part in (html.escape(entry.main), detail, flag) if part)


def _html_table(table: Table) -> str:
    numeric = table.numeric or [False] * len(table.header)
    cls = [' class="num"' if n else "" for n in numeric]
    caption = f"<caption>{_inline(table.caption)}</caption>" if table.caption else ""
    head = "".join(f"<th{c}>{_inline(h)}</th>" for h, c in zip(table.header, cls))
    rows = "".join("<tr>" + "".join(f"<td{c}>{_html_entry(e, table.stacked)}</td>" for e, c in zip(row, cls))
                   + "</tr>" for row in table.rows)
    return f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
