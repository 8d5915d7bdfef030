"""The report's numbers aggregated from the store: per (backbone, variant, size, task, metric) the
mean over training seeds with its 95% interval (`limacot.stats.intervals.mean_interval`, whose
rule the report states beside every table) and the few-shot seed spread; and the orderings
(backbones, variants, sizes, tasks, metrics) every table and chart shares.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from limacot.eval.scores import task_label
from limacot.report.study import Study
from limacot.stats.intervals import Estimate, mean_interval, pooled_spread
from limacot.study.cells import BASE, size_order

KNOWN_VARIANTS = (BASE, "lima", "lima+answer-only", "lima+cot", "cot-answer-only", "cot")
MAIN_SEED = -1                                               # metrics.fewshot_seed of the main number


@dataclass(frozen=True)
class Spread:
    """Few-shot seed spread of one entry: mean and sd over `k` few-shot seeds (pooled over
    `cells` training seeds: mean of the per-cell means, root-mean-square of the per-cell sds).
    `k == 1`: the entry ran once (its few-shot examples do not depend on the seed) and has no sd;
    `identical`: k >= 2 seeds ran and every seed gave the same value."""

    mean: float
    sd: float | None
    k: int
    cells: int
    identical: bool = False


Key = tuple[str, str, str, str, str]   # (backbone, variant, size, task, metric)


def main_estimates(study: Study) -> dict[Key, Estimate]:
    """Every (backbone, variant, size, task, metric) with a main number (fewshot_seed -1); each
    Estimate's labels are its cells, in seed order."""
    cells = {c["cell_id"]: c for c in study.grid_cells}
    grouped: dict[Key, list[tuple[int, str, float, float | None]]] = {}
    for row in study.metrics:
        cell = cells.get(row["cell_id"])
        if cell is None or row["value"] is None or row["fewshot_seed"] not in (MAIN_SEED, None):
            continue
        key = (cell["backbone"], cell["variant"], str(cell["size"]), row["task"], row["metric"])
        grouped.setdefault(key, []).append((cell["seed"], cell["cell_id"], row["value"], row["stderr"]))
    out = {}
    for key, entries in grouped.items():
        entries.sort()
        out[key] = mean_interval([e[2] for e in entries], entries[0][3], tuple(e[1] for e in entries))
    return out


def fewshot_spreads(study: Study) -> dict[Key, Spread]:
    """Every entry with per-few-shot-seed rows (fewshot_seed >= 0): over the cells that ran two
    or more seeds, else (every cell ran it once) a Spread with k = 1 and no sd."""
    cells = {c["cell_id"]: c for c in study.grid_cells}
    per_cell: dict[tuple[Key, str], list[float]] = {}
    for row in study.metrics:
        cell = cells.get(row["cell_id"])
        if cell is None or row["value"] is None or row["fewshot_seed"] in (MAIN_SEED, None):
            continue
        key = (cell["backbone"], cell["variant"], str(cell["size"]), row["task"], row["metric"])
        per_cell.setdefault((key, cell["cell_id"]), []).append(row["value"])
    pooled: dict[Key, list[list[float]]] = {}
    for (key, _), values in per_cell.items():
        pooled.setdefault(key, []).append(values)
    out = {}
    for key, groups in pooled.items():
        several = [v for v in groups if len(v) >= 2]
        if not several:
            out[key] = Spread(statistics.fmean(v[0] for v in groups), None, 1, len(groups))
            continue
        out[key] = Spread(*pooled_spread(several), min(len(v) for v in several), len(several),
                          all(len(set(v)) == 1 for v in several))
    return out


# --- orderings ---------------------------------------------------------------------------------


def backbones(study: Study) -> list[str]:
    """The grid's backbones: configured order, then any other found in the store (never the
    reference systems' `reference`)."""
    configured = list((study.config.get("backbones") or {}).keys())
    return _ordered(configured, {c["backbone"] for c in study.grid_cells})


def variants(study: Study) -> list[str]:
    """Configured order (base first), then any other variant found among the grid's cells (a
    reference system's name is no variant)."""
    configured = [v for v in study.config.get("variants") or KNOWN_VARIANTS]
    found = {c["variant"] for c in study.grid_cells}
    ordered = _ordered(configured, found)
    return sorted(ordered, key=lambda v: v != BASE)


def sizes(study: Study) -> list[str]:
    """Fine-tuning sizes present in the store, smallest first ("all" last)."""
    return sorted({str(c["size"]) for c in study.grid_cells if c["variant"] != BASE}, key=size_order)


def references(study: Study) -> list[str]:
    """The reference systems' names: the store's, in the config's order, then those configured
    that the store does not list yet."""
    found = [c["variant"] for c in study.reference_cells]
    return found + [n for n in study.config.get("references") or {} if n not in found]


def _ordered(preferred: list[str], found: set[str]) -> list[str]:
    return [x for x in preferred if x in found] + sorted(found - set(preferred))


def headline_tasks(tasks: set[str] | list[str]) -> list[str]:
    """Tasks that are not a subtask of another task present: `kobest_copa` is a subtask when
    `kobest` is there, `mmlu_humanities` when `mmlu` is. Sorted."""
    tasks = set(tasks)
    return sorted(t for t in tasks if not any(t.startswith(g + "_") for g in tasks if g != t))


def task_labels(study: Study) -> dict[str, str]:
    """task -> its name in the report: a group scored on only some of its tasks says which
    ("kmmlu (1/45 subjects: criminal_law)"); any other task is its own name."""
    ran = {row["task"] for row in study.metrics}
    return {task: task_label(task, ran) for task in ran | {r["task"] for r in study.comparisons}}


def metrics_by_task(keys) -> dict[str, set[str]]:
    """task -> the metric names present among `keys` ((..., task, metric) tuples)."""
    out: dict[str, set[str]] = {}
    for key in keys:
        out.setdefault(key[-2], set()).add(key[-1])
    return out
