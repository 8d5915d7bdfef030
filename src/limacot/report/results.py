"""The benchmark sections: main tables, few-shot seed spread and paired deltas (numbers exactly
as `aggregate` computes them from the store, rounded to 3 decimals for display).

Main table layout, one per backbone and training size (base repeated in each for reference):

    | task        | metric | base                 | lima                   | lima+cot | cot |
    | kobest_copa | acc    | 0.520 [0.489, 0.551] † | 0.600 [0.346, 0.854] | ...      | ... |
"""

from __future__ import annotations

from limacot.eval.scores import primary_metric
from limacot.report import aggregate
from limacot.report.doc import Details, Heading, Num, Para, Table
from limacot.report.study import Study
from limacot.stats.intervals import Estimate
from limacot.study.cells import BASE, size_order

DASH = "—"
STDERR_FLAG = "†"
CI_NOTE = (f"Entries: mean over training seeds [95% CI]. With two or more training seeds the interval is a "
           f"t-interval over seeds; {STDERR_FLAG} marks a single seed, whose interval is value ± 1.96 × "
           f"lm-eval's standard error of that one evaluation (over its documents; binomial for accuracy). "
           f"{DASH}: not measured.")


def fmt(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def estimate_entry(est: Estimate | None) -> Num | str:
    """0.612 [0.580, 0.644] (t) / with † (stderr) / no interval."""
    if est is None:
        return DASH
    detail = f"[{fmt(est.low)}, {fmt(est.high)}]" if est.low is not None else "(no CI)"
    return Num(fmt(est.mean), detail, STDERR_FLAG if est.method == "stderr" else "")


def columns(study: Study, backbone: str, size: str) -> list[tuple[str, str]]:
    """(label, size key) of the variants shown in one main table: base ('-'), then each variant at `size`."""
    present = {(c["variant"], str(c["size"])) for c in study.grid_cells if c["backbone"] == backbone}
    out = []
    for variant in aggregate.variants(study):
        key = "-" if variant == BASE else size
        if (variant, key) in present:
            out.append((variant, key))
    return out


def table_groups(study: Study) -> list[tuple[str, str]]:
    """(backbone, size) of every main table; a base-only backbone gets one table with size '-'."""
    groups = []
    for backbone in aggregate.backbones(study):
        sizes = sorted({str(c["size"]) for c in study.grid_cells if c["backbone"] == backbone and c["variant"] != BASE},
                       key=size_order)
        groups += [(backbone, s) for s in sizes] or [(backbone, "-")]
    return groups


def main_section(study: Study, estimates: dict) -> list:
    blocks: list = [Heading(2, "Main results")]
    if not estimates:
        return blocks + [Para("No benchmark numbers in the store yet: no eval stage has finished "
                              "(see Study status).")]
    seeds = sorted({c["seed"] for c in study.grid_cells if c["variant"] != BASE})
    blocks.append(Para(f"{CI_NOTE} Training seeds in the store: {', '.join(map(str, seeds)) or 'none'}"
                       + (" (one seed: every interval is stderr-based)." if len(seeds) <= 1 else ".")))
    by_task = aggregate.metrics_by_task(estimates)
    headline = aggregate.headline_tasks(by_task)
    labels = aggregate.task_labels(study)
    for backbone, size in table_groups(study):
        cols = columns(study, backbone, size)
        title = f"{backbone}: {size} training examples" if size != "-" else f"{backbone}: base model"
        rows = [[labels.get(task, task), metric] + [estimate_entry(estimates.get((backbone, v, s, task, metric)))
                                                    for v, s in cols]
                for task in headline for metric in _metric_order(by_task[task])]
        blocks += [Heading(3, title), Table(["task", "metric"] + [v for v, _ in cols], rows,
                                            [False, False] + [True] * len(cols))]
    subtasks = sorted(set(by_task) - set(headline))
    if subtasks:
        blocks.append(_subtask_details(study, estimates, by_task, subtasks))
    return blocks


def _metric_order(metrics: set[str]) -> list[str]:
    primary = primary_metric(metrics)
    return [primary] + sorted(metrics - {primary})


def _subtask_details(study: Study, estimates: dict, by_task: dict, subtasks: list[str]) -> Details:
    inner: list = [Para("Subtasks (the tasks of a group above), primary metric only; every metric is in "
                        "`main_table.csv`.")]
    labels = aggregate.task_labels(study)
    for backbone, size in table_groups(study):
        cols = columns(study, backbone, size)
        rows = []
        for task in subtasks:
            metric = primary_metric(by_task[task])
            entries = [estimate_entry(estimates.get((backbone, v, s, task, metric))) for v, s in cols]
            rows.append([labels.get(task, task), metric] + entries)
        inner += [Heading(4, f"{backbone}: {size} (subtasks)"),
                  Table(["task", "metric"] + [v for v, _ in cols], rows, [False, False] + [True] * len(cols))]
    return Details(f"Subtasks ({len(subtasks)})", inner)


def fewshot_section(study: Study, spreads: dict) -> list:
    blocks: list = [Heading(2, "Few-shot seed variance")]
    if not any(spread.k >= 2 for spread in spreads.values()):
        configured = (study.config.get("eval") or {}).get("fewshot_seeds", 1)
        return blocks + [Para(f"Not measured: every cell was evaluated with one few-shot seed "
                              f"(`eval.fewshot_seeds` = {configured}; set it above 1 to measure how much the "
                              f"choice of the few-shot examples moves the scores).")]
    ks = sorted({spread.k for spread in spreads.values() if spread.k >= 2})
    show_k = len(ks) > 1
    seeds = "the few-shot seeds (their number beside each entry)" if show_k else f"{ks[0]} few-shot seeds"
    notes = []
    if any(spread.identical for spread in spreads.values()):
        notes.append("\"identical\": every seed gave the same score (an sd of 0, measured). ")
    if any(spread.k == 1 for spread in spreads.values()):
        notes.append("\"ran once\": the task's few-shot examples do not depend on the seed (fixed exemplars), "
                     "so it was scored once and has no sd. ")
    blocks.append(Para(f"Entries: mean ± sd over {seeds}, i.e. over different draws of the prompt's examples; "
                       f"with several training seeds the means are averaged and the sds pooled (root mean "
                       f"square). {''.join(notes)}Primary metric of the headline tasks; every task and metric is "
                       f"in `main_table.csv`."))
    by_task = aggregate.metrics_by_task(spreads)
    labels = aggregate.task_labels(study)
    for backbone, size in table_groups(study):
        cols = columns(study, backbone, size)
        if not any(k[0] == backbone and (k[1], k[2]) in cols and spread.k >= 2 for k, spread in spreads.items()):
            continue
        rows = []
        for task in aggregate.headline_tasks(by_task):
            metric = primary_metric(by_task[task])
            entries = [_spread_entry(spreads.get((backbone, v, s, task, metric)), show_k) for v, s in cols]
            rows.append([labels.get(task, task), metric] + entries)
        blocks += [Heading(3, f"{backbone}: {size} (few-shot seeds)"),
                   Table(["task", "metric"] + [v for v, _ in cols], rows, [False, False] + [True] * len(cols))]
    return blocks


def _spread_entry(spread, show_k: bool) -> Num | str:
    """'0.612 ± 0.004' (k seeds), '0.600 ± 0.000 (3 seeds, identical)', or '0.600 (ran once)'."""
    if spread is None:
        return DASH
    if spread.sd is None:
        return Num(f"{spread.mean:.3f}", "(ran once)")
    if spread.identical:
        return Num(f"{spread.mean:.3f} ± {spread.sd:.3f}", f"({spread.k} seeds, identical)")
    return Num(f"{spread.mean:.3f} ± {spread.sd:.3f}", f"({spread.k} seeds)" if show_k else "")
