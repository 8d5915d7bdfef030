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

from limacot.io.fingerprint import sha256_json
from limacot.models.api import ReplyCache


def request_key(identity: dict, messages: list[dict]) -> str:
    """The cache key of sending `messages` to the judge described by `identity`."""
    return sha256_json({"judge": identity, "messages": messages})


JudgeCache = ReplyCache  # replies by request key, backed by an append-only JSONL file (limacot.models.api)
