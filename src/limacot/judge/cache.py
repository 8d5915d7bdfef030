"""The judge cache: one line per judge call ever answered, keyed by the request itself.

The key hashes the judge's identity (kind, model, endpoint or local spec, decoding
settings) and the exact messages sent, which contain the prompt, both answers and their
order. So a rerun, a resume after `kill -9`, or another B run with the same answers makes
no repeated call, and a changed instruction, judge or answer is never served a stale
verdict. Lines are appended and fsynced as replies arrive (`limacot.io.journal`).

    {"key": "9f2c...", "text": "{\\"verdict\\": \\"2\\"}", "usage": {"prompt_tokens": 812, ...}}

Only replies are stored: never request headers, never the API key. A reply or usage record
that quotes a registered secret (limacot.errors.register_secret) is stored without it, and an
older cache file that holds one is read without it.
"""

from __future__ import annotations

from pathlib import Path

from limacot.io.fingerprint import sha256_json
from limacot.judge.clients import redact_value
from limacot.io.journal import Journal, read_journal


def request_key(identity: dict, messages: list[dict]) -> str:
    """The cache key of sending `messages` to the judge described by `identity`."""
    return sha256_json({"judge": identity, "messages": messages})


class JudgeCache:
    """Replies by request key, backed by an append-only JSONL file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries = {row["key"]: _entry(row["key"], row["text"], row.get("usage"))
                         for row in read_journal(self.path) if "key" in row and "text" in row}
        self._journal: Journal | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def put(self, key: str, text: str, usage: dict | None) -> None:
        entry = _entry(key, text, usage)
        if self._journal is None:
            self._journal = Journal(self.path)
        self._journal.append(entry)
        self._entries[key] = entry

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def _entry(key: str, text, usage) -> dict:
    """A cache line, with every registered secret removed from the reply and its usage."""
    return {"key": key, "text": redact_value(text), "usage": redact_value(usage)}
