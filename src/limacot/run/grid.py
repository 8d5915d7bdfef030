"""Grid expansion: backbones x variants x sizes x seeds -> cells, and the pairs to compare.

`base` is the backbone itself, so it is one cell per backbone (size "-", seed 0), compared
with every size and seed of the fine-tuned variants.

    backbones {smol}, variants [base, lima], sizes [10, 20], seeds [0]
    -> smol/base/-/s0, smol/lima/10/s0, smol/lima/20/s0
"""

from __future__ import annotations

from dataclasses import dataclass

from limacot.run.config import BASE, StudyConfig


@dataclass(frozen=True)
class Cell:
    backbone: str
    variant: str
    size: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.backbone}/{self.variant}/{self.size}/s{self.seed}"

    @property
    def is_base(self) -> bool:
        return self.variant == BASE


def expand(config: StudyConfig) -> list[Cell]:
    cells = []
    for backbone in config.backbones:
        for variant in config.variants:
            if variant == BASE:
                cells.append(Cell(backbone, BASE, "-", 0))
                continue
            cells += [Cell(backbone, variant, str(size), seed) for size in config.sizes for seed in config.seeds]
    return cells


def pairs(config: StudyConfig, cells: list[Cell]) -> list[tuple[Cell, Cell]]:
    """(A, B) cell pairs for every configured (variant A, variant B): same backbone, and the
    same size and seed unless one side is base."""
    out = []
    for a_variant, b_variant in config.comparisons:
        for a in (c for c in cells if c.variant == a_variant):
            for b in (c for c in cells if c.variant == b_variant and c.backbone == a.backbone):
                if a.is_base or b.is_base or (a.size, a.seed) == (b.size, b.seed):
                    out.append((a, b))
    return out
