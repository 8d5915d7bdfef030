"""Humans in the loop: blinded annotation sheets from a `limacot judge` output, and the filled
sheets back as human preference rates and their agreement with the judge and with each other.

`export_sheets(JUDGE_OUT, SHEET_DIR)` writes, for K annotators (files under SHEET_DIR/):

    sheet-1.csv ... sheet-K.csv        what an annotator fills: item, prompt, answer_x, answer_y, label, comment
    sheet-1.jsonl ... sheet-K.jsonl    the same rows as JSON lines (exact text, for tools other than a spreadsheet)
    instructions.md                    the task, the labels, how to hand a sheet back
    key.json                           for the organiser only: which run each answer is, the judge's verdicts

One item is one (B run, prompt) pair of records.jsonl; `n` samples prompts (every B run's pair of
a sampled prompt is an item). Items are shuffled once (the same order on every sheet). Per item
and sheet a hash of (seed, sheet, B run, prompt id) gives the opaque item id ("2-9f1c03ab5e") and
whether A's or B's answer is X, so the sheets name no run, each sheet has its own X/Y draw, and
exporting again with the same seed reproduces the ids, orders and key exactly.

The CSV is UTF-8 with a byte-order mark: Excel reads a CSV without one in the machine's legacy
code page (CP949 on Korean Windows) and garbles Hangul; with it, Excel, LibreOffice and Python
all read UTF-8. A cell starting with = + - @ gets one leading space, or a spreadsheet would run it
as a formula ("- 사과" shows #NAME?); the JSONL sheet keeps the exact text.

`import_sheets(SHEET_DIR, FILLED, HUMAN_OUT)` reads filled sheets (CSV or JSONL, one file per
annotator, named by its file stem), checks them against key.json, maps X/Y back to A/B and
writes HUMAN_OUT/human.json (see `limacot.judge.agreement` for its contents), labels.jsonl (one
row per label: annotator, item, B run, prompt id, the human's and the judge's outcome for B,
comment) and table.md. A label is X, Y or tie (any case; full-width letters too) or empty (not
annotated, counted); anything else, an unknown or repeated item id, or a missing column is an
input error naming the file, the row, the field and what was expected.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from limacot.errors import DataError, LimacotInputError
from limacot.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_jsonl, atomic_write_text
from limacot.judge.agreement import summarize_labels, summary_table
from limacot.judge.config import RESAMPLES
from limacot.judge.protocol import OUTCOMES
from limacot.stats.bootstrap import BOOTSTRAP_SEED

KEY = "key.json"
KEY_FORMAT = "limacot-annotation-key/1"
COLUMNS = ["item", "prompt", "answer_x", "answer_y", "label", "comment"]
REQUIRED = ("item", "label")
LABELS = ("x", "y", "tie")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXCEL_CELL_LIMIT = 32_767  # characters; Excel cuts a longer cell


def export_sheets(judge_out: str | Path, sheet_dir: str | Path, *, n: int | None = None, seed: int = 0,
                  annotators: int = 1) -> dict:
    """Write the blinded sheets and the key (see the module docstring); returns a summary:
    {"sheet_dir", "files", "annotators", "items", "prompts", "prompts_available", "b_runs",
    "over_excel_cell_limit" (texts of one sheet longer than an Excel cell holds)}."""
    if annotators < 1:
        raise LimacotInputError(f"--annotators {annotators}: expected 1 or more (one sheet per annotator)")
    if n is not None and n < 1:
        raise LimacotInputError(f"--n {n}: expected 1 or more prompts (leave it out for all of them)")
    judge_out, sheet_dir = Path(judge_out), Path(sheet_dir)
    summary, records = read_judge_out(judge_out)
    prompts = list(dict.fromkeys(r["id"] for r in records))
    rng = np.random.default_rng([seed, 0])
    chosen = set(prompts) if n is None or n >= len(prompts) else \
        {prompts[i] for i in rng.choice(len(prompts), size=n, replace=False)}
    picked = [r for r in records if r["id"] in chosen]
    picked = [picked[i] for i in rng.permutation(len(picked))]
    key_items, files = {}, []
    for sheet in range(1, annotators + 1):
        rows = []
        for record in picked:
            item, x = _draw(seed, sheet, record["b_run"], record["id"])
            answers = {"a": record["answer_a"], "b": record["answer_b"]}
            rows.append({"item": item, "prompt": record["prompt"], "answer_x": answers[x],
                         "answer_y": answers["b" if x == "a" else "a"], "label": "", "comment": ""})
            key_items[item] = {"sheet": sheet, "b_run": record["b_run"], "prompt_id": record["id"], "x": x,
                               "judge": record["outcome"], "flipped": record.get("flipped"),
                               "prefers": {o: (record["orders"].get(o) or {}).get("prefers") for o in ("ab", "ba")}}
        atomic_write_bytes(sheet_dir / f"sheet-{sheet}.csv", sheet_csv(rows))
        atomic_write_jsonl(sheet_dir / f"sheet-{sheet}.jsonl", rows)
        files += [f"sheet-{sheet}.csv", f"sheet-{sheet}.jsonl"]
    b_runs = list(dict.fromkeys(r["b_run"] for r in records))
    long_cells = sum(len(r[c]) > EXCEL_CELL_LIMIT for r in picked for c in ("prompt", "answer_a", "answer_b"))
    key = {"format": KEY_FORMAT, "judge_out": str(judge_out.resolve()), "a": summary["a"]["name"],
           "judge": summary.get("judge"), "b_runs": b_runs, "seed": seed, "n": n, "annotators": annotators,
           "prompts": len(chosen), "prompts_available": len(prompts), "items": key_items}
    atomic_write_text(sheet_dir / "instructions.md", INSTRUCTIONS)
    atomic_write_json(sheet_dir / KEY, key)
    return {"sheet_dir": str(sheet_dir), "files": files + ["instructions.md", KEY], "annotators": annotators,
            "items": len(picked), "prompts": len(chosen), "prompts_available": len(prompts), "b_runs": b_runs,
            "over_excel_cell_limit": long_cells}


def read_judge_out(judge_out: Path) -> tuple[dict, list[dict]]:
    """summary.json and records.jsonl of a `limacot judge` output folder, each record checked for
    the fields a sheet and the key need."""
    files = [judge_out / "summary.json", judge_out / "records.jsonl"]
    if not all(f.is_file() for f in files):
        raise LimacotInputError(f"{judge_out}: expected a folder written by `limacot judge` (holding summary.json "
                                f"and records.jsonl)")
    try:
        summary = json.loads(files[0].read_text(encoding="utf-8"))
        a_name = summary["a"]["name"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(str(files[0]), None, "a.name", "a judge summary naming run A (as `limacot judge` writes it)",
                        "bad_summary", got=f"{type(err).__name__}: {err}") from None
    if not isinstance(a_name, str):
        raise DataError(str(files[0]), None, "a.name", "run A's name", "bad_summary", got=_shown(a_name))
    records = []
    for where, row in _json_lines(files[1]):
        for field, kind in (("b_run", str), ("id", str), ("prompt", str), ("answer_a", str), ("answer_b", str),
                            ("outcome", str), ("orders", dict)):
            if not isinstance(row.get(field), kind):
                raise DataError(str(files[1]), where, field, f"a {kind.__name__} (a record as `limacot judge` "
                                f"writes it)", "bad_record", got=_shown(row.get(field)))
        if row["outcome"] not in OUTCOMES:
            raise DataError(str(files[1]), where, "outcome", f"one of {', '.join(OUTCOMES)}", "bad_record",
                            got=_shown(row["outcome"]))
        records.append(row)
    if not records:
        raise LimacotInputError(f"{files[1]}: no judged pairs in the file")
    return summary, records


def _draw(seed: int, sheet: int, b_run: str, prompt_id: str) -> tuple[str, str]:
    """(item id, "a" or "b": whose answer is X) from a hash of (seed, sheet, B run, prompt id)."""
    digest = hashlib.sha256(json.dumps([seed, sheet, b_run, prompt_id]).encode("utf-8")).hexdigest()
    return f"{sheet}-{digest[:10]}", "b" if int(digest[-1], 16) % 2 else "a"


def sheet_csv(rows: list[dict]) -> bytes:
    """The CSV bytes of a sheet: UTF-8 with a BOM, every text cell safe from formula parsing.

        {"answer_x": "- 사과 3개", ...} -> b'\\xef\\xbb\\xbfitem,prompt,answer_x,...\\r\\n1-3f...," - 사과 3개",...'
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: (" " + v if v.startswith(FORMULA_START) else v) for k, v in row.items()} for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def import_sheets(sheet_dir: str | Path, filled: Sequence[str | Path], out: str | Path, *,
                  resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Read the filled sheets against SHEET_DIR/key.json and write HUMAN_OUT (see the module
    docstring); returns what human.json holds."""
    sheet_dir, out = Path(sheet_dir), Path(out)
    key = read_key(sheet_dir)
    if not filled:
        raise LimacotInputError("give at least one filled sheet (CSV or JSONL) after SHEET_DIR")
    labels, annotators, seen = [], [], {}
    for path in map(Path, filled):
        if path.resolve() in seen:
            raise LimacotInputError(f"{path}: given twice (also as {seen[path.resolve()]}); one file per annotator")
        seen[path.resolve()] = path
        name, n = path.stem, 1
        while name in {a["name"] for a in annotators}:
            n += 1
            name = f"{path.stem}-{n}"
        rows, info = read_filled(path, key)
        annotators.append({"name": name, "file": str(path), **info})
        labels += [{"annotator": name, **row} for row in rows]
    if not any(row["label"] for row in labels):
        raise LimacotInputError(f"no labels in {', '.join(map(str, filled))}: every `label` cell is empty (expected "
                                f"X, Y or tie in the items that were judged)")
    result = {"format": "limacot-human/1", "sheet_dir": str(sheet_dir.resolve()), "judge_out": key["judge_out"],
              "a": key["a"], "judge": key.get("judge"), "annotators": annotators,
              **summarize_labels(labels, key, resamples=resamples, seed=seed)}
    atomic_write_jsonl(out / "labels.jsonl", labels)
    atomic_write_text(out / "table.md", summary_table(result))
    atomic_write_json(out / "human.json", result)
    return result


def read_key(sheet_dir: Path) -> dict:
    path = sheet_dir / KEY
    if not path.is_file():
        raise LimacotInputError(f"{sheet_dir}: no {KEY} (expected the SHEET_DIR `limacot judge export` wrote; the "
                                f"key says which run each answer is)")
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LimacotInputError(f"{path}: not a readable JSON key ({err})") from None
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT or not isinstance(key.get("items"), dict):
        raise LimacotInputError(f"{path}: expected a key written by `limacot judge export` (format {KEY_FORMAT})")
    return key


def read_filled(path: Path, key: dict) -> tuple[list[dict], dict]:
    """One annotator's labels: a row per item of the file, checked (module docstring), with the
    item's run names and both outcomes for B; and {"sheet", "rows", "labelled", "not_annotated",
    "missing"} (missing: items of the sheet the file lacks)."""
    rows, first, sheet = [], {}, None
    for where, raw in _sheet_rows(path):
        item = str(raw.get("item") or "").strip()
        if not item:
            raise DataError(str(path), where, "item", "the item id the sheet gave this row", "missing_item")
        entry = key["items"].get(item)
        if entry is None:
            raise DataError(str(path), where, "item", f"an item id of this export (see its {KEY})", "unknown_item",
                            got=repr(item))
        if item in first:
            raise DataError(str(path), where, "item", f"each item once; '{item}' is also on {first[item]}",
                            "duplicate_item")
        first[item] = where
        sheet = entry["sheet"] if sheet is None else sheet
        if entry["sheet"] != sheet:
            raise DataError(str(path), where, "item", f"items of one sheet (this file's first item is from "
                            f"sheet-{sheet}, this one from sheet-{entry['sheet']}): one file per annotator",
                            "mixed_sheets", got=repr(item))
        label = parse_label(raw.get("label"), path, where)
        human = None if label is None else "tie" if label == "tie" else b_outcome(label, entry["x"])
        rows.append({"item": item, "where": where, "sheet": entry["sheet"], "b_run": entry["b_run"],
                     "prompt_id": entry["prompt_id"], "label": label, "human": human, "judge": entry["judge"],
                     "comment": str(raw.get("comment") or "")})
    if not rows:
        raise LimacotInputError(f"{path}: no rows (expected a sheet from `limacot judge export`, filled)")
    in_sheet = sum(entry["sheet"] == sheet for entry in key["items"].values())
    labelled = sum(r["label"] is not None for r in rows)
    return rows, {"sheet": sheet, "rows": len(rows), "labelled": labelled, "not_annotated": len(rows) - labelled,
                  "missing": in_sheet - len(rows)}


def b_outcome(label: str, x: str) -> str:
    """B's outcome when the annotator preferred X or Y and `x` ("a" or "b") is whose answer X was:
    ("x", "b") -> "win", ("y", "b") -> "loss", ("x", "a") -> "loss", ("y", "a") -> "win"."""
    preferred = x if label == "x" else {"a": "b", "b": "a"}[x]
    return "win" if preferred == "b" else "loss"


def parse_label(value, path: Path, where: str) -> str | None:
    """'X', ' y ', 'TIE', 'Ｘ' (full width) -> 'x', 'y', 'tie'; '' or None -> None (not annotated)."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    if not text:
        return None
    if text not in LABELS:
        raise DataError(str(path), where, "label", "X, Y or tie (any case), or empty for an item not annotated",
                        "bad_label", got=_shown(value))
    return text


def _sheet_rows(path: Path) -> list[tuple[str, dict]]:
    """(where, row) of a filled sheet: 'row N' as a spreadsheet numbers a CSV (the header is row 1),
    'line N' in a JSONL file. Blank CSV rows are skipped."""
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = _json_lines(path)
        for where, row in rows:
            if "label" not in row:
                raise DataError(str(path), where, "label", "a `label` key (X, Y, tie, or empty)", "missing_column")
        return rows
    if path.suffix.lower() != ".csv":
        raise LimacotInputError(f"{path}: expected a filled sheet as .csv or .jsonl")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise LimacotInputError(f"{path}: cannot read the file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise DataError(str(path), None, None, "UTF-8 text (in Excel: Save As > 'CSV UTF-8 (Comma delimited)')",
                        "encoding") from None
    header = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)  # a spreadsheet set to another locale may use ; or tab
    limit = csv.field_size_limit(1 << 30)  # an answer may be longer than csv's default 128 KiB field
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        reader.fieldnames = [(name or "").strip().casefold() for name in (reader.fieldnames or [])]
        for column in REQUIRED:
            if column not in reader.fieldnames:
                raise DataError(str(path), "row 1", column, f"a column named '{column}' in the header (a sheet's "
                                f"header: {', '.join(COLUMNS)})", "missing_column", got=f"columns {reader.fieldnames}")
        return [(f"row {number}", row) for number, row in enumerate(reader, start=2)
                if any((value or "").strip() for value in row.values() if isinstance(value, str))]
    finally:
        csv.field_size_limit(limit)


def _json_lines(path: Path) -> list[tuple[str, dict]]:
    """(where, object) per non-blank line of a JSONL file; any other line is an input error."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as err:
        raise LimacotInputError(f"{path}: cannot read the file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise DataError(str(path), None, None, "UTF-8 text", "encoding") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise DataError(str(path), f"line {number}", None, "one JSON object per line", "bad_json")
        rows.append((f"line {number}", row))
    return rows


def _shown(value) -> str:
    text = "nothing" if value is None else repr(value)
    return text[:80] + ("..." if len(text) > 80 else "")


INSTRUCTIONS = """# Which answer is better?

Each row of your sheet is one prompt and two answers to it, **X** and **Y**. Read the prompt and
both answers, then write in the `label` column:

- `X` if answer X is better,
- `Y` if answer Y is better,
- `tie` if neither is significantly better.

Upper or lower case are both fine. Leave `label` empty for a row you skip; it is counted as not
annotated. `comment` is optional. Do not change the `item` column, and do not add or reorder
columns. The answers come from different systems; the sheet does not say which, on purpose.

Hand back your sheet as it is: `sheet-N.csv` saved as CSV (in Excel: Save As > "CSV UTF-8"), or
`sheet-N.jsonl` with each row's `label` filled in. Rename it after yourself (`sheet-1-kim.csv`) if
several people fill copies of the same sheet.

---

# 어느 답변이 더 낫습니까?

시트의 각 행에는 질문 하나와 그에 대한 두 답변 **X**, **Y**가 있습니다. 질문과 두 답변을 읽고
`label` 열에 다음 중 하나를 적어 주세요: X가 더 나으면 `X`, Y가 더 나으면 `Y`, 어느 쪽도 뚜렷하게
낫지 않으면 `tie`. 대소문자는 상관없습니다. 건너뛰는 행은 `label`을 비워 두세요. `comment`는 선택입니다.
`item` 열은 바꾸지 말고, 열을 추가하거나 순서를 바꾸지 마세요. 엑셀에서는 "CSV UTF-8"로 저장해 주세요.
"""
