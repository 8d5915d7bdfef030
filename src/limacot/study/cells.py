"""The study grid as types: a `Cell` is one model (backbone x data variant x size x seed), a
`Pair` two cells compared. Ids are built from these types and never parsed back: whoever needs
a cell's backbone or size reads the `cells` table (`limacot.study.store`), not its id.

`base` is the backbone itself, so it is one cell per backbone (size "-", seed 0), compared
with every size and seed of the fine-tuned variants.

A reference system (GPT-4o through its API, answers published with a paper) is a cell too, one
per reference, outside the grid: its backbone is `reference`, its variant the reference's name
(size "-", seed 0), its id `reference/<name>`. It has answers, no model of the study, so it is
judged and never evaluated, and it is compared with every cell of the other side's variant, in
every backbone, size and seed (LIMA's setting: A = the reference).

    expand({"smol"}, ["base", "lima"], [10, 20], [0])
    -> smol/base/-/s0, smol/lima/10/s0, smol/lima/20/s0
    pairs([("base", "lima")], cells)
    -> smol/base/-/s0 vs smol/lima/10/s0, smol/base/-/s0 vs smol/lima/20/s0
    pairs([("gpt-4o", "lima")], cells + [Cell.reference("gpt-4o")])
    -> reference/gpt-4o vs smol/lima/10/s0, reference/gpt-4o vs smol/lima/20/s0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

BASE = "base"          # the variant that is the backbone without fine-tuning
BASE_SIZE = "-"        # a base cell's size (and a reference's)
REFERENCE = "reference"  # the backbone of a reference system's cell


def size_order(size: str) -> tuple[int, float, str]:
    """Sort key of a training size: numbers by value, then names ("all")."""
    return (0, float(size), "") if size.replace(".", "", 1).isdigit() else (1, 0.0, size)


@dataclass(frozen=True)
class Cell:
    backbone: str
    variant: str
    size: str
    seed: int

    @classmethod
    def reference(cls, name: str) -> "Cell":
        """The cell of the reference system `name` (see the module docstring)."""
        return cls(REFERENCE, name, BASE_SIZE, 0)

    @property
    def id(self) -> str:
        if self.is_reference:
            return f"{REFERENCE}/{self.variant}"
        return f"{self.backbone}/{self.variant}/{self.size}/s{self.seed}"

    @property
    def is_base(self) -> bool:
        return self.variant == BASE and not self.is_reference

    @property
    def is_reference(self) -> bool:
        """A reference system's answers (an API model or a file), not a model of the grid."""
        return self.backbone == REFERENCE

    @property
    def sort_key(self) -> tuple:
        """Backbone, variant, size (numerically), seed."""
        return (self.backbone, self.variant, size_order(self.size), self.seed)


class Pair(NamedTuple):
    """Two compared cells: B against A (same backbone; same size and seed unless one is base)."""

    a: Cell
    b: Cell

    @property
    def id(self) -> str:
        """'A vs B': the stage_runs.cell_id of the pair's compare and judge jobs."""
        return f"{self.a.id} vs {self.b.id}"

    @property
    def kind(self) -> str:
        """'B-variant vs A-variant': the comparisons.kind of the pair."""
        return f"{self.b.variant} vs {self.a.variant}"


def expand(backbones: Iterable[str], variants: Iterable[str], sizes: Iterable, seeds: Iterable[int]) -> list[Cell]:
    """Every cell of the grid, backbone by backbone, in the variants' order."""
    sizes, seeds = [str(s) for s in sizes], list(seeds)
    cells = []
    for backbone in backbones:
        for variant in variants:
            if variant == BASE:
                cells.append(Cell(backbone, BASE, BASE_SIZE, 0))
                continue
            cells += [Cell(backbone, variant, size, seed) for size in sizes for seed in seeds]
    return cells


def pairs(comparisons: Iterable[tuple[str, str]], cells: list[Cell]) -> list[Pair]:
    """The cell pairs of every (A, B) comparison of variants or references: same backbone, and
    the same size and seed unless one side is base; a reference with every cell of the other side."""
    out = []
    for a_name, b_name in comparisons:
        for a in (c for c in cells if c.variant == a_name):
            for b in (c for c in cells if c.variant == b_name):
                if a.is_reference or b.is_reference or a.backbone == b.backbone and (
                        a.is_base or b.is_base or (a.size, a.seed) == (b.size, b.seed)):
                    out.append(Pair(a, b))
    return out
