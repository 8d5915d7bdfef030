"""Append-only JSONL files that survive `kill -9`: generations and the judge cache.

Every row is written as one line with a single `write`, then flushed and fsynced, so a
killed process leaves complete lines plus at most one torn line at the end. Reading
(`read_journal`) cuts that torn tail off the file before anything is appended, so the
next run never sees or builds on a broken line:

    before (killed mid-write):  {"id": "1", "answer": "Paris"}\\n{"id": "2", "ans
    after read_journal:         {"id": "1", "answer": "Paris"}\\n          -> returns [{"id": "1", ...}]

A bad line that is not the last one was not written by a journal: that is an input
error naming the file and line, never silently dropped.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from limacot.errors import DataError


def read_journal(path: str | Path, *, repair: bool = True) -> list[dict]:
    """The complete rows of `path` ([] when it does not exist).

    A last line that is not a JSON object is a torn write: with `repair` the file is
    truncated to the end of the previous line. A valid last line that only lacks its
    newline (an edited file) is kept, and with `repair` the newline is added.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    rows, start, good_end = [], 0, 0
    while start < len(data):
        newline = data.find(b"\n", start)
        end = len(data) if newline == -1 else newline
        line = data[start:end]
        row = _parse(line) if line.strip() else {}
        if row is None:
            if data[end + 1:].strip():
                number = data.count(b"\n", 0, start) + 1
                raise DataError(str(path), f"line {number}", None, "one JSON object per line (an append-only "
                                "journal); this line is damaged in the middle of the file", "bad_json")
            break  # torn tail: cut below
        if row:
            rows.append(row)
        start = good_end = end + 1
    if repair and good_end != len(data):
        _repair(path, min(good_end, len(data)), add_newline=good_end > len(data))
    return rows


def _repair(path: Path, size: int, add_newline: bool) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)
        if add_newline:
            handle.seek(size)
            handle.write(b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _parse(line: bytes) -> dict | None:
    try:
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return row if isinstance(row, dict) else None


class Journal:
    """Appends rows to a JSONL file, one fsynced line each; safe to share between threads.

    Use `read_journal` first (it repairs a torn tail), then `with Journal(path) as j: j.append(row)`.
    `truncate=True` starts the file over.
    """

    def __init__(self, path: str | Path, *, truncate: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "wb" if truncate else "ab")
        self._lock = threading.Lock()

    def append(self, row: dict) -> None:
        line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        with self._lock:
            self._handle.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
