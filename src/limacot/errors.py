"""Error types shared by every stage.

`LimacotInputError` is the one exception the CLI turns into exit code 2 with a
one-paragraph message (bad input: a malformed file, an unknown option, a missing
optional package). Everything else is a bug or an environment failure (exit 1).
"""

from __future__ import annotations


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
