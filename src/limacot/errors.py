"""Error types shared by every stage.

`LimacotInputError` is the one exception the CLI turns into exit code 2 with a
one-paragraph message (bad input: a malformed file, an unknown option, a missing
optional package). Everything else is a bug or an environment failure (exit 1).
"""

from __future__ import annotations

import re


class LimacotInputError(Exception):
    """Bad input from the user; the message says what, where, and what was expected."""


class DataError(LimacotInputError):
    """A malformed record or file.

    `location` is human-readable ("line 12", "row 3", "item 7"); `field` names the
    offending field (``conversations[3]``, ``messages[1].role``) or is None for
    whole-line problems (truncated JSON, invalid UTF-8). `reason` is a short
    machine-friendly key used to count skipped records (``--skip-bad``).
    """

    def __init__(self, path: str, location: str | None, field: str | None, expected: str,
                 reason: str, got: str | None = None):
        self.path = str(path)
        self.location = location
        self.field = field
        self.expected = expected
        self.reason = reason
        self.got = got
        where = self.path + (f":{location}" if location else "")
        what = f"field '{field}': " if field else ""
        tail = f", got {got}" if got is not None else ""
        super().__init__(f"{where}: {what}expected {expected}{tail}")


# Secrets (API keys) this process holds. Every message the CLI prints passes through
# `redact_secrets` (see limacot.io.cli_common.handled_errors), so a key that ends up inside an
# exception from any library is never shown.
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember `value` as a secret to remove from every message (empty or tiny values are ignored)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact_secrets(text: str, *extra: str | None) -> str:
    """`text` without any registered secret (or one of `extra`), and without anything that looks
    like a bearer token or an sk- key. 'Authorization: Bearer abc' -> 'Authorization: Bearer ***'."""
    for secret in sorted(_SECRETS.union(s for s in extra if s and len(s) >= 4), key=len, reverse=True):
        escaped = secret.encode("unicode_escape").decode("ascii")  # as repr() shows it: 'a\\r\\nb'
        for form in (secret, escaped, *secret.splitlines()):  # a key with a line break, one line at a time
            if form == secret or len(form) >= 8:
                text = text.replace(form, "***")
    text = re.sub(r"(?i)(bearer\s+)(?!\*\*\*)[^\s\"'<>,;)\]}]+", r"\1***", text)  # the token, not what follows
    return re.sub(r"\bsk-[A-Za-z0-9_\-]{8,}", "sk-***", text)
