"""The one internal record: a validated conversation with a stable content id.

Every reader turns its rows into `Conversation`s; everything downstream (selection,
templates, training) only sees these.

    >>> c = Conversation.from_turns([Turn("user", "Hi"), Turn("assistant", "Hello!")], source="demo")
    >>> c.to_json()
    {'id': '...', 'source': 'demo', 'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]}

Rules (checked by `validate_turns`): an optional leading system turn, then user and
assistant turns strictly alternating, starting with user and ending with assistant;
every content a non-empty string. The id is a hash of the turns only (roles and
contents), so the same conversation has the same id whatever file it came from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal, Sequence

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


class TurnError(ValueError):
    """A turn list that breaks the conversation rules.

    `index` is the offending turn (None for the whole list), `part` is "role" or
    "content" (or None), `reason` a short counter key, `expected` what a valid value
    looks like. Readers re-raise it as a DataError naming the file's own field.
    """

    def __init__(self, index: int | None, part: str | None, expected: str, reason: str,
                 got: str | None = None):
        self.index, self.part, self.expected, self.reason, self.got = index, part, expected, reason, got
        where = f"turn {index}" + (f" {part}" if part else "") if index is not None else "turns"
        super().__init__(f"{where}: expected {expected}" + (f", got {got}" if got else ""))


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_turns(turns: Sequence[Turn]) -> None:
    """Raise TurnError unless `turns` is [system?] user, assistant, user, assistant, ..."""
    if not turns:
        raise TurnError(None, None, "at least one user turn and one assistant turn", "empty_conversation")
    start = 1 if turns[0].role == "system" else 0
    if len(turns) - start < 2:
        raise TurnError(None, None, "at least one user turn and one assistant turn", "too_few_turns",
                        got=f"{len(turns) - start} non-system turn(s)")
    for i, turn in enumerate(turns):
        if turn.role not in ROLES:
            raise TurnError(i, "role", "one of system/user/assistant", "bad_role", _short(turn.role))
        if not isinstance(turn.content, str):
            raise TurnError(i, "content", "a string", "wrong_type", type(turn.content).__name__)
        if not turn.content.strip():
            raise TurnError(i, "content", "non-empty text", "empty_turn", _short(turn.content))
        if i >= start:
            want = "user" if (i - start) % 2 == 0 else "assistant"
            if turn.role != want:
                raise TurnError(i, "role", f"'{want}' (turns must alternate user/assistant"
                                f"{', after an optional leading system turn' if i else ''})",
                                "wrong_role_order", _short(turn.role))
    if turns[-1].role != "assistant":
        raise TurnError(len(turns) - 1, "role", "the last turn to be 'assistant'",
                        "ends_with_user")


def content_id(turns: Sequence[Turn]) -> str:
    """Stable 16-hex-digit id: sha256 of the canonical JSON of (role, content) pairs."""
    canonical = json.dumps([[t.role, t.content] for t in turns], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Conversation:
    """A validated conversation. Build with `from_turns` (validates and computes the id)."""

    id: str
    source: str
    turns: tuple[Turn, ...]

    @classmethod
    def from_turns(cls, turns: Sequence[Turn], source: str) -> "Conversation":
        turns = tuple(turns)
        validate_turns(turns)
        return cls(id=content_id(turns), source=source, turns=turns)

    @property
    def system(self) -> str | None:
        return self.turns[0].content if self.turns[0].role == "system" else None

    @property
    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style messages, the shape chat templates take."""
        return [{"role": t.role, "content": t.content} for t in self.turns]

    def text(self) -> str:
        """All turn contents joined by newlines (for dedup and contamination checks)."""
        return "\n".join(t.content for t in self.turns)

    def to_json(self) -> dict:
        """The `messages` line format that `limacot data build` writes."""
        return {"id": self.id, "source": self.source, "messages": self.messages}
