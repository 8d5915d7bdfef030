"""The data section: a summary of the dataset card (sources, counts, what dedup and
decontamination removed, the training files) from `data/manifest.json`, and the card's
"## Decontamination" section carried over as the contamination findings.

Card Markdown is turned into report blocks by `markdown_blocks`, which knows the card's three
shapes: tables, "- " bullet lines and paragraphs.

    "text\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\n- x"
    -> [Para("text"), Table(["a", "b"], [["1", "2"]]), Bullets(["x"])]
"""

from __future__ import annotations

import re
from pathlib import PurePath

from limacot.report.doc import Bullets, Heading, Para, Table
from limacot.report.study import Study

CONTAMINATION = "## Decontamination"
TWINS = "## Twin sources"


def data_section(study: Study) -> list:
    blocks: list = [Heading(2, "Training data")]
    manifest = study.manifest
    if not manifest:
        return blocks + [Para("No data manifest (`data/manifest.json`): the data build has not finished, so "
                              "there is no dataset summary.")] + contamination_blocks(study)
    inputs, pools = manifest.get("inputs", {}), manifest.get("pools", {})
    rows = [[name, PurePath(str(info.get("path", ""))).name, str(info.get("format", "")), _n(info.get("records")),
             _counts(info.get("filtered")), _counts(info.get("skipped")), _counts(info.get("trimmed")),
             _n(pools.get(name)), f"`{str(info.get('sha256', ''))[:16]}`"] for name, info in inputs.items()]
    blocks += [Heading(3, "Sources"),
               Table(["source", "file", "format", "read", "filtered out", "skipped", "trimmed", "after cleaning",
                      "sha256"], rows, [False, False, False, True, False, False, False, True, False])]
    removed = manifest.get("removed", {})
    blocks.append(Bullets([f"exact duplicates removed: {_n(removed.get('exact_duplicates'))}",
                           f"near duplicates removed: {_n(removed.get('near_duplicates'))}",
                           f"contaminated records (overlap with eval sets): {_n(removed.get('contaminated'))}"]
                          + ([f"removed with their twin: {_n(removed.get('removed_with_twin'))}"]
                             if "removed_with_twin" in removed else [])))
    twins = card_section(study.card or "", TWINS)
    if twins:
        blocks += [Heading(3, "Twin sources")] + markdown_blocks(twins)
    outputs = manifest.get("outputs", {})
    blocks += [Heading(3, "Training files"),
               Table(["file", "records", "by source", "sha256"],
                     [[f"`{rel}`", _n(info.get("records")), _counts(info.get("sources")),
                       f"`{str(info.get('sha256', ''))[:16]}`"] for rel, info in outputs.items()],
                     [False, True, False, False])]
    if manifest.get("build_key"):
        blocks.append(Para(f"Data build key `{manifest['build_key'][:16]}`; the full card is `data/card.md`."))
    return blocks + contamination_blocks(study)


def contamination_blocks(study: Study) -> list:
    blocks: list = [Heading(3, "Contamination findings")]
    if study.card is None:
        return blocks + [Para("No dataset card (`data/card.md`), so no contamination findings to show.")]
    section = card_section(study.card, CONTAMINATION)
    if section is None:
        return blocks + [Para("The dataset card has no Decontamination section.")]
    return blocks + (markdown_blocks(section) or [Para("The card's Decontamination section is empty.")])


def card_section(card: str, heading: str) -> str | None:
    """The text under `heading` up to the next heading of the same or higher level (None if absent)."""
    lines = card.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    for i, line in enumerate(lines):
        if line.strip() == heading:
            end = next((j for j in range(i + 1, len(lines))
                        if re.match(rf"^#{{1,{level}}}\s", lines[j])), len(lines))
            return "\n".join(lines[i + 1:end]).strip()
    return None


def markdown_blocks(text: str) -> list:
    """Card Markdown (tables, bullets, paragraphs) -> blocks; see the module docstring."""
    blocks: list = []
    table: list[list[str]] = []
    bullets: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if table:
            header, body = table[0], [r for r in table[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            blocks.append(Table(header, body, [all(_numeric(r[i]) for r in body if i < len(r)) and bool(body)
                                               for i in range(len(header))]))
        if bullets:
            blocks.append(Bullets(list(bullets)))
        if para:
            blocks.append(Para(" ".join(para)))
        table.clear(), bullets.clear(), para.clear()

    for line in text.splitlines():
        stripped = line.strip()
        kind = "table" if stripped.startswith("|") else "bullet" if stripped.startswith("- ") else "para"
        if not stripped or (kind != "table" and table) or (kind != "bullet" and bullets) or (kind != "para" and para):
            flush()
        if kind == "table" and stripped:
            table.append([c.strip() for c in re.split(r"(?<!\\)\|", stripped.strip("|"))])
        elif kind == "bullet":
            bullets.append(stripped[2:])
        elif stripped:
            para.append(stripped)
    flush()
    return blocks


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?\d[\d,]*(\.\d+)?%?", text.strip()))


def _n(value) -> str:
    return "—" if value is None else str(value)


def _counts(value) -> str:
    if not value:
        return "0" if isinstance(value, (dict, int)) else "—"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)
