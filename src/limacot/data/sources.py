"""Readers: rows of any supported file -> validated `Conversation` records.

Formats (auto-detected from the first row's fields, or forced with `format=`):

    lima      {"conversations": [user, assistant, ...], "source": str}
    sharegpt  {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]}
    messages  {"messages": [{"role": "user", "content": ...}, ...]}
    alpaca    {"instruction": ..., "input": ..., "output": ...}   (input optional)
    kocot     {"source": question, "rationale": ..., "target": ...} -> assistant text by a CoT style

Other layouts are read through a column mapping from our field names to the file's,
e.g. ``{"source": "question", "rationale": "reason", "target": "answer"}``.

A conversation that ends with a user turn loses that turn (counted in
`ReadReport.trimmed["trailing_user_turn"]`). Any other malformed record raises a
DataError naming file, line, field and what was expected; with `skip_bad=True` it
is skipped and counted by reason instead. Rows refused by the source's `include` /
`exclude` filters (`limacot.data.filters`) are counted in `ReadReport.filtered`.
Nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from limacot.data.cot import COT_FIELDS, CotStyle, get_style
from limacot.data.files import iter_raw_rows, iter_rows
from limacot.data.filters import RowFilter
from limacot.data.records import Conversation, Turn, TurnError, content_id
from limacot.errors import DataError, LimacotInputError

FORMATS = ("lima", "sharegpt", "messages", "alpaca", "kocot")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "system": "system"}
MAX_ERROR_EXAMPLES = 20

# A converter turns one row into (turns, field name of each turn in the file, source name or None).
Converted = tuple[list[Turn], list[str], "str | None"]


@dataclass
class ReadReport:
    """What a read produced and what it did not keep, with reasons.

    `locations[i]` is where `records[i]` came from in the file ("line 12", "row 5 (line 7)"):
    two reads of one file (twin sources) pair their records by it. `filtered` counts the rows
    the filters dropped, by reason; `filter_seen` the values each filtered field held;
    `filter_unmatched` the filter values no row held ({"include.source": ["stackexchnage"]}).
    """

    path: str
    format: str
    records: list[Conversation] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    trimmed: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    filter_seen: dict[str, Counter] = field(default_factory=dict)
    filter_unmatched: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # first few skipped-row messages


class _RowError(Exception):
    """Raised inside converters; turned into a DataError with the file and location."""

    def __init__(self, field_name: str | None, expected: str, reason: str, got: str | None = None):
        self.field_name, self.expected, self.reason, self.got = field_name, expected, reason, got


def _describe(value: object) -> str:
    text = f"{type(value).__name__} {value!r}"
    return text if len(text) <= 60 else text[:57] + "..."


def _text_field(row: Mapping, name: str, *, required: bool = True, scalars: bool = False) -> str | None:
    """A string field; `scalars=True` also accepts numbers/bools (answers such as 18)."""
    if name not in row or row[name] is None:
        if required:
            raise _RowError(name, "a string field", "missing_field")
        return None
    value = row[name]
    if scalars and isinstance(value, (int, float, bool)):
        value = str(value)
    if not isinstance(value, str):
        raise _RowError(name, "a string", "wrong_type", _describe(value))
    return value


def _list_field(row: Mapping, name: str) -> list:
    if name not in row:
        raise _RowError(name, "a list of turns", "missing_field")
    value = row[name]
    if not isinstance(value, list):
        raise _RowError(name, "a list of turns", "wrong_type", _describe(value))
    return value


def _lima(row: Mapping, style: CotStyle) -> Converted:
    turns, names = [], []
    for i, content in enumerate(_list_field(row, "conversations")):
        if not isinstance(content, str):
            raise _RowError(f"conversations[{i}]", "a string", "wrong_type", _describe(content))
        turns.append(Turn("user" if i % 2 == 0 else "assistant", content))
        names.append(f"conversations[{i}]")
    return turns, names, _text_field(row, "source", required=False)


MESSAGE_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
# Formats whose turns are objects: (list field, role key, content key, accepted roles -> ours).
OBJECT_TURNS = {"sharegpt": ("conversations", "from", "value", SHAREGPT_ROLES),
                "messages": ("messages", "role", "content", MESSAGE_ROLES)}


def _object_turns(row: Mapping, fmt: str) -> Converted:
    """Turns given as objects, e.g. {"from": "human", "value": ...} or {"role": ..., "content": ...}."""
    list_name, role_key, content_key, roles = OBJECT_TURNS[fmt]
    turns, names = [], []
    for i, item in enumerate(_list_field(row, list_name)):
        where = f"{list_name}[{i}]"
        if not isinstance(item, dict):
            raise _RowError(where, f'an object {{"{role_key}": ..., "{content_key}": ...}}', "wrong_type",
                            _describe(item))
        role, content = item.get(role_key), item.get(content_key)
        if not isinstance(role, str) or role.lower() not in roles:
            raise _RowError(f"{where}.{role_key}", f"one of {', '.join(roles)}",
                            "missing_field" if role is None else "bad_role", None if role is None else _describe(role))
        if not isinstance(content, str):
            raise _RowError(f"{where}.{content_key}", "a string", "missing_field" if content is None else "wrong_type",
                            None if content is None else _describe(content))
        turns.append(Turn(roles[role.lower()], content))
        names.append(where)
    return turns, names, _text_field(row, "source", required=False)


def _alpaca(row: Mapping, style: CotStyle) -> Converted:
    instruction = _text_field(row, "instruction")
    extra = _text_field(row, "input", required=False) or ""
    output = _text_field(row, "output", scalars=True)
    prompt = f"{instruction.strip()}\n\n{extra.strip()}" if extra.strip() else instruction
    return [Turn("user", prompt), Turn("assistant", output)], ["instruction", "output"], None


def _kocot(row: Mapping, style: CotStyle) -> Converted:
    needed = set(style.fields) | {"source"}
    values = {name: _text_field(row, name, scalars=True) for name in COT_FIELDS if name in needed}
    for name, value in values.items():
        if not value.strip():
            raise _RowError(name, "non-empty text", "empty_turn", repr(value))
    return [Turn("user", values["source"]), Turn("assistant", style.render(values))], \
        ["source", style.fields[0] if len(style.fields) == 1 else "rationale"], None


CONVERTERS: dict[str, Callable[[Mapping, CotStyle], Converted]] = {
    "lima": _lima, "sharegpt": lambda row, style: _object_turns(row, "sharegpt"),
    "messages": lambda row, style: _object_turns(row, "messages"), "alpaca": _alpaca, "kocot": _kocot}


def detect_format(row: Mapping) -> str | None:
    """The format a row's fields point to, or None."""
    if "messages" in row:
        return "messages"
    if "conversations" in row:
        items = row["conversations"]
        return "sharegpt" if isinstance(items, list) and items and isinstance(items[0], dict) else "lima"
    if {"source", "rationale", "target"} <= set(row) or {"source", "target"} <= set(row):
        return "kocot"
    if {"instruction", "output"} <= set(row):
        return "alpaca"
    return None


def apply_columns(row: Mapping, columns: Mapping[str, str]) -> dict:
    """Rename file columns to ours: columns maps OUR field name -> the FILE's column.

    >>> apply_columns({"question": "2+3?", "reason": "2+3=5", "answer": 5},
    ...               {"source": "question", "rationale": "reason", "target": "answer"})
    {'source': '2+3?', 'rationale': '2+3=5', 'target': 5}
    """
    renamed_from = set(columns.values())
    out = {k: v for k, v in row.items() if k not in renamed_from}
    for ours, theirs in columns.items():
        if theirs not in row:
            raise _RowError(theirs, f"a column '{theirs}' (mapped to '{ours}')", "missing_field")
        out[ours] = row[theirs]
    return out


def _to_conversation(row: Mapping, fmt: str, style: CotStyle, default_source: str,
                     report: ReadReport) -> Conversation:
    turns, names, source = CONVERTERS[fmt](row, style)
    try:
        try:
            return Conversation.from_turns(turns, source=source or default_source)
        except TurnError as err:
            if err.reason != "ends_with_user":
                raise
            record = Conversation.from_turns(turns[:-1], source=source or default_source)
            report.trimmed["trailing_user_turn"] += 1
            return record
    except TurnError as err:
        name = names[err.index] if err.index is not None and err.index < len(names) else None
        if name and err.part and fmt in OBJECT_TURNS:
            name += "." + OBJECT_TURNS[fmt][1 if err.part == "role" else 2]
        raise _RowError(name or ("conversations" if fmt in ("lima", "sharegpt") else fmt),
                        err.expected, err.reason, err.got) from None


def read_records(path: str | Path, *, format: str | None = None, columns: Mapping[str, str] | None = None,
                 cot_style: str | CotStyle = "ko", cot_styles: Mapping[str, str] | None = None,
                 source_name: str | None = None, skip_bad: bool = False,
                 include: Mapping[str, Sequence[str]] | None = None,
                 exclude: Mapping[str, Sequence[str]] | None = None) -> ReadReport:
    """Read every record of `path` into a ReadReport (see the module docstring for the rules).

    `source_name` labels records whose rows carry no `source` of their own (default:
    the file's stem). `include` / `exclude` map a row field (after `columns`) to the values
    kept / dropped (see `limacot.data.filters`). Raises DataError on the first bad record
    unless `skip_bad`.
    """
    if format is not None and format not in FORMATS:
        raise LimacotInputError(f"unknown format '{format}'; expected one of: {', '.join(FORMATS)}")
    style = cot_style if isinstance(cot_style, CotStyle) else get_style(cot_style, cot_styles)
    spec = str(path)
    default_source = source_name or (Path(spec).stem if not spec.startswith("hf:") else spec[3:])
    report = ReadReport(path=spec, format=format or "")
    rows = RowFilter(include or {}, exclude or {})
    for location, row in iter_raw_rows(path):
        try:
            if isinstance(row, DataError):
                raise row
            try:
                mapped = apply_columns(row, columns) if columns else row
                if rows and (why := rows.reason(mapped)):
                    report.filtered[why] += 1
                    continue
                if not report.format:
                    report.format = detect_format(mapped) or _undetectable(spec, location, mapped)
                report.records.append(_to_conversation(mapped, report.format, style, default_source, report))
                report.locations.append(location)
            except _RowError as err:
                raise DataError(spec, location, err.field_name, err.expected, err.reason, err.got) from None
        except DataError as err:
            if not skip_bad:
                raise
            report.skipped[err.reason] += 1
            if len(report.errors) < MAX_ERROR_EXAMPLES:
                report.errors.append(str(err))
    if not report.format:
        report.format = "unknown (no readable rows)"
    report.filter_seen, report.filter_unmatched = rows.seen, rows.unmatched()
    return report


def _undetectable(path: str, location: str, row: Mapping) -> str:
    raise LimacotInputError(
        f"{path}:{location}: cannot tell the data format from the fields {sorted(row)}; expected "
        "lima (conversations: [str]), sharegpt (conversations: [{from, value}]), messages "
        "(messages: [{role, content}]), alpaca (instruction, input, output) or kocot "
        "(source, rationale, target). Pass --format, or map your columns, e.g. "
        "columns: {source: question, rationale: reason, target: answer}")


def prompt_entry(turns: list[Turn]) -> tuple[str, list[dict]]:
    """(content id, messages) of a prompt's turns: the shape every prompt reader returns."""
    return content_id(turns), [{"role": t.role, "content": t.content} for t in turns]


def read_prompts(path: str | Path) -> list[tuple[str, list[dict]]]:
    """Prompts to answer: (id, messages ending with a user turn) per row.

    Rows with a `prompt` field give that text; rows of any other format give their
    leading system turn (if any) and first user turn (kocot: its `source`). The id is
    the row's `id` field when present, else the content id of the messages.
    """
    prompts, fmt = [], None
    for location, row in iter_rows(path):
        try:
            if "prompt" in row:
                turns = [Turn("user", _text_field(row, "prompt"))]
            else:
                fmt = fmt or detect_format(row) or _undetectable(str(path), location, row)
                turns = ([Turn("user", _text_field(row, "source", scalars=True))] if fmt == "kocot"
                         else CONVERTERS[fmt](row, get_style("answer-only"))[0])
            start = 1 if turns and turns[0].role == "system" else 0
            if len(turns) <= start or turns[start].role != "user" or not turns[start].content.strip():
                raise _RowError("prompt" if "prompt" in row else fmt, "a non-empty first user turn", "empty_turn")
        except _RowError as err:
            raise DataError(str(path), location, err.field_name, err.expected, err.reason, err.got) from None
        prompt_id, messages = prompt_entry(turns[:start + 1])
        row_id = row.get("id")
        prompts.append((str(row_id) if row_id is not None else prompt_id, messages))
    if not prompts:
        raise LimacotInputError(f"{path}: no prompts in it; expected at least one row, e.g. {{\"prompt\": \"...\"}}")
    return prompts
