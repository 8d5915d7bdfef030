"""Twin sources: one file read in two CoT styles (`twin_of` in the config), paired row by row.

A source and its twins form a family. After reading, each member keeps only the records whose
row every member read (a row malformed in one style but not the other has a lone record: it
is dropped and counted as unpaired), so the members' pools are aligned: position i of every
member comes from the same row. Cleaning keeps them aligned (twins share a pair key, see
`limacot.data.dedup.pair_units`), and selection draws positions from the primary's pool and
takes the same positions from the twin's, so the CoT pool and the answer-only pool hold the
same questions at every size.

    kocot              line 1 (ko style)   line 2 (ko style)   line 3: no rationale, skipped
    kocot_answer_only  line 1 (answer)     line 2 (answer)     line 3 (answer) -> unpaired, dropped
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable

from limacot.data.config import DataBuildConfig
from limacot.data.records import Conversation
from limacot.data.sources import ReadReport


@dataclass
class Pool:
    """The records of one source and where each came from in its file (parallel lists)."""

    records: list[Conversation]
    locations: list[str]


@dataclass
class Family:
    """A source and its twins: `pairs` rows read by every member, `unpaired` records dropped per
    member, `kept` pairs left after cleaning and `removed_with_twin` records per member removed
    because their twin was (both filled in by cleaning)."""

    primary: str
    twins: list[str]
    pairs: int
    unpaired: dict[str, int]
    kept: int = 0
    removed_with_twin: dict[str, int] = field(default_factory=dict)

    @property
    def members(self) -> list[str]:
        return [self.primary, *self.twins]

    def summary(self) -> str:
        """'kocot / kocot_answer_only: 1998 of 2000 pairs kept; 2 removed with their twin; ...'"""
        text = f"{' / '.join(self.members)}: {self.kept} of {self.pairs} pairs kept"
        if any(self.removed_with_twin.values()):
            text += f"; removed with their twin: {_counts(self.removed_with_twin)}"
        if any(self.unpaired.values()):
            text += f"; unpaired (the row failed in another style), dropped: {_counts(self.unpaired)}"
        return text

    def to_json(self) -> dict:
        return {"primary": self.primary, "twins": self.twins, "pairs_read": self.pairs, "pairs_kept": self.kept,
                "unpaired": self.unpaired, "removed_with_twin": self.removed_with_twin}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n)


def pair_twins(config: DataBuildConfig, reports: dict[str, ReadReport]) -> tuple[dict[str, Pool], list[Family]]:
    """Every source's pool; the members of a family keep the rows all of them read, in file order."""
    pools = {name: Pool(list(r.records), list(r.locations)) for name, r in reports.items()}
    families = []
    for primary in config.sources:
        twins = config.twins_of(primary)
        if not twins:
            continue
        members = [primary, *twins]
        common = set.intersection(*(set(pools[m].locations) for m in members))
        unpaired = {}
        for member in members:
            pool = pools[member]
            keep = [i for i, location in enumerate(pool.locations) if location in common]
            unpaired[member] = len(pool.records) - len(keep)
            pools[member] = Pool([pool.records[i] for i in keep], [pool.locations[i] for i in keep])
        families.append(Family(primary, twins, len(common), unpaired))
        check_aligned(pools, members)
    return pools, families


def check_aligned(pools: dict[str, Pool], members: list[str]) -> None:
    """The members' pools hold the same rows in the same order (what pairing and cleaning keep)."""
    first = pools[members[0]].locations
    for member in members[1:]:
        if pools[member].locations != first:
            raise RuntimeError(f"twin pools {members[0]} and {member} are no longer aligned row by row")


def pair_keys(config: DataBuildConfig, name: str, pool: Pool) -> list[Hashable | None]:
    """The pair key of each record of source `name`: (its family's primary, its row) for a family
    member, None (a unit of its own) for any other source."""
    primary = config.primary_of(name)
    if primary == name and not config.twins_of(name):
        return [None] * len(pool.records)
    return [(primary, location) for location in pool.locations]
