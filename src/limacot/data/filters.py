"""Row filters of a source: keep rows whose field holds an allowed value, drop refused ones.

A filter looks at the file's row (after the source's `columns` mapping), before the row is
turned into a conversation. Values are compared as strings, so `{n_turns: [2]}` matches a row
holding the number 2. A row without the field (or with null) is dropped as "missing". Every
dropped row is counted by reason, and the values seen in each filtered field are counted too,
so a filter value that never matched (a typo) can be shown.

    >>> rows = RowFilter(include={"source": ["wikihow", "nlp"]}, exclude={})
    >>> [rows.reason({"source": s}) for s in ("nlp", "multi_turn")] + [rows.reason({})]
    [None, 'source not in include', 'source missing']
    >>> rows.unmatched()
    {'include.source': ['wikihow']}
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence


class RowFilter:
    """`include` and `exclude` map a row field to its allowed / refused values (strings)."""

    def __init__(self, include: Mapping[str, Sequence[str]], exclude: Mapping[str, Sequence[str]]):
        self.include = {name: {str(v) for v in values} for name, values in include.items()}
        self.exclude = {name: {str(v) for v in values} for name, values in exclude.items()}
        self.seen: dict[str, Counter] = {name: Counter() for name in [*self.include, *self.exclude]}

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def reason(self, row: Mapping) -> str | None:
        """Why `row` is dropped ("FIELD missing", "FIELD not in include", "FIELD in exclude"),
        or None to keep it. Counts the row's value of every filtered field first."""
        values = {name: None if row.get(name) is None else str(row[name]) for name in self.seen}
        for name, value in values.items():
            if value is not None:
                self.seen[name][value] += 1
        for name, allowed in self.include.items():
            if values[name] is None:
                return f"{name} missing"
            if values[name] not in allowed:
                return f"{name} not in include"
        for name, refused in self.exclude.items():
            if values[name] is None:
                return f"{name} missing"
            if values[name] in refused:
                return f"{name} in exclude"
        return None

    def unmatched(self) -> dict[str, list[str]]:
        """{"include.FIELD" / "exclude.FIELD": the filter's values no row held}, sorted; only
        the filters with such values."""
        out = {}
        for kind, filters in (("include", self.include), ("exclude", self.exclude)):
            for name, values in filters.items():
                never = sorted(values - set(self.seen[name]))
                if never:
                    out[f"{kind}.{name}"] = never
        return out


def seen_text(seen: Mapping[str, Counter], limit: int = 12) -> str:
    """'source: stackexchange 400, wikihow 200, ...' per filtered field, most common first."""
    parts = []
    for name, counts in seen.items():
        common = counts.most_common(limit)
        more = f", ... ({len(counts) - limit} more)" if len(counts) > limit else ""
        values = ", ".join(f"{value} {n}" for value, n in common) or "none (no row has the field)"
        parts.append(f"{name}: {values}{more}")
    return "; ".join(parts)
