"""The paired-deltas section: B − A per task from the store's comparisons table, with the
paired bootstrap 95% CI and the Holm-corrected p-value, all of the task's primary metric
(`limacot.eval.scores.PRIMARY_METRICS`) and its own test (McNemar for accuracy, a paired
permutation test for F1).

One table per comparison kind and backbone; a row per task (its primary metric), a column per
B cell (size/seed), so a reader scans a task across training sizes:

    | task        | metric | 250/s0                           | 500/s0 | ... |
    | kobest_copa | f1     | +0.046 [+0.006, +0.086] p 0.011 * | ...    |

Subtasks of a large group (more than GROUP_INLINE of them, e.g. KMMLU's subjects) go in a
collapsible block under the table. Every metric, and the uncorrected p, is in comparisons.csv.
"""

from __future__ import annotations

from limacot.eval.scores import ACCURACY_METRICS, CORPUS_METRICS, MEAN_METRICS, METRIC_MEANINGS, primary_metric
from limacot.report import aggregate
from limacot.report.doc import Bullets, Details, Heading, Num, Para, Table
from limacot.report.results import DASH, fmt, fmt_p
from limacot.report.study import Study

GROUP_INLINE = 6
ALPHA = 0.05


def kind_order(kinds: set[str], configured: list[str] = ()) -> list[str]:
    """'X vs base' first, then the comparisons in the study config's order, then the rest,
    alphabetically within each."""
    def rank(kind: str) -> tuple[int, int, str]:
        if kind.endswith(" vs base"):
            return (0, 0, kind)
        return (1, configured.index(kind), kind) if kind in configured else (2, 0, kind)
    return sorted(kinds, key=rank)


def deltas_section(study: Study) -> list:
    blocks: list = [Heading(2, "Paired deltas")]
    if not study.comparisons:
        return blocks + [Para(f"No paired comparisons in the store: {_why_none(study)}.")]
    blocks.append(Para(f"Δ = B − A on the same documents and prompts, per task (primary metric), one column per "
                       f"B cell (training size/seed). [95% CI]: paired bootstrap over documents; p: the test of "
                       f"that same metric, Holm-corrected across the tasks of that comparison: McNemar's exact "
                       f"test on per-document correctness for {', '.join(ACCURACY_METRICS)}, a paired "
                       f"permutation test (A's and B's prediction swapped per document) for "
                       f"{', '.join(CORPUS_METRICS)} and (A's and B's score swapped per document) for "
                       f"{', '.join(MEAN_METRICS)}; * marks Holm p < {ALPHA}. Every metric and its "
                       f"uncorrected p are in `comparisons.csv`."))
    groups = _large_groups(study)
    names = aggregate.task_labels(study)
    asks = study.configured_kinds
    for kind in kind_order({r["kind"] for r in study.comparisons}, list(asks)):
        b_name, _, a_name = kind.partition(" vs ")
        blocks.append(Heading(3, f"{kind} (Δ = {b_name} − {a_name})"))
        if asks.get(kind):
            blocks.append(Para(f"What it measures: {asks[kind]}."))
        for backbone in _backbones(study, kind):
            rows = [r for r in study.comparisons if r["kind"] == kind and _backbone(study, r["a_cell"]) == backbone]
            blocks += _kind_tables(study, backbone, rows, groups, names)
    return blocks


def findings_section(study: Study) -> list:
    """What changed, in words: the paired comparisons whose primary metric is significant after
    Holm's correction, one sentence per comparison and task (the metric said in words, each B
    cell's change, what the comparison asks); or that none is, and how many were tested.

        lima+cot vs base, kocot_heldout: ll_per_char (log-likelihood per character of the held-out
        reference answers; ...) rose by 0.268 [95% CI +0.233, +0.301] at 8/s0 (Holm p <0.001) and
        by 0.409 [...] at 16/s0 (Holm p <0.001), over 20 documents. The comparison asks: ...
    """
    blocks: list = [Heading(2, "Findings")]
    if not study.comparisons:
        return blocks + [Para(f"No paired comparisons in the store: {_why_none(study)}.")]
    metrics: dict[tuple[str, str], set[str]] = {}
    for r in study.comparisons:
        metrics.setdefault((r["kind"], r["task"]), set()).add(r["metric"])
    tested = [r for r in study.comparisons if r["p_holm"] is not None
              and r["metric"] == primary_metric(metrics[(r["kind"], r["task"])])]
    significant: dict[tuple[str, str], list[dict]] = {}
    for r in tested:
        if r["p_holm"] < ALPHA:
            significant.setdefault((r["kind"], r["task"]), []).append(r)
    if not significant:
        tests = f"{len(tested)} tests" if len(tested) != 1 else "1 test"
        return blocks + [Para(f"No paired comparison is significant: none of the {tests} of a task's primary metric "
                              f"has a Holm-corrected p below {ALPHA} (Paired deltas shows each estimate and its "
                              f"95% CI).")]
    kinds = kind_order({kind for kind, _ in significant}, list(study.configured_kinds))
    names = aggregate.task_labels(study)
    lines = [_finding(study, kind, names.get(task, task), significant[(kind, task)])
             for kind, task in sorted(significant, key=lambda key: (kinds.index(key[0]), key[1]))]
    count = sum(len(rows) for rows in significant.values())
    return blocks + [Para(f"{count} of {len(tested)} paired tests of a task's primary metric are significant after "
                          f"Holm's correction (p < {ALPHA}):"), Bullets(lines)]


def _finding(study: Study, kind: str, task: str, rows: list[dict]) -> str:
    metric = rows[0]["metric"]
    several = len(aggregate.backbones(study)) > 1
    changes = []
    for row in sorted(rows, key=lambda r: study.cell_order(r["b_cell"])):
        where = (f"{_backbone(study, row['b_cell'])} " if several else "") + _column(study, row["b_cell"])
        ci = (f" [95% CI {fmt(row['ci_low'], sign=True)}, {fmt(row['ci_high'], sign=True)}]"
              if row["ci_low"] is not None else "")
        changes.append(f"{'rose' if row['delta'] > 0 else 'fell'} by {fmt(abs(row['delta']))}{ci} at {where} "
                       f"(Holm p {fmt_p(row['p_holm'])})")
    documents = sorted({row["n"] for row in rows})
    asks = study.configured_kinds.get(kind)
    meaning = f" ({METRIC_MEANINGS[metric]})" if metric in METRIC_MEANINGS else ""
    return (f"{kind}, {task}: {metric}{meaning} {', and '.join(changes)}, over "
            f"{' / '.join(map(str, documents))} documents." + (f" The comparison asks: {asks}." if asks else ""))


def _why_none(study: Study) -> str:
    """Why the store holds no comparisons: none configured, or none finished. A comparison with a
    reference system never gets compare rows (a reference has no benchmark numbers), so it is
    not counted."""
    configured = list(study.configured_kinds)
    if not configured:
        return "none are configured (`comparisons` is empty in the study config)"
    references = study.reference_names
    grid = [kind for kind in configured if not set(kind.split(" vs ")) & references]
    judged = len(configured) - len(grid)
    judged_only = (f"; {judged} with a reference system {'is' if judged == 1 else 'are'} judged only (a reference "
                   f"has no benchmark numbers)") if judged else ""
    if not grid:
        return f"none are configured between the grid's variants{judged_only}"
    return f"{len(grid)} are configured but none has finished yet (see Study status){judged_only}"


def _backbone(study: Study, cell_id: str) -> str:
    """The cell's backbone (from the cells table; an id it lacks stands for itself)."""
    cell = study.cell(cell_id)
    return cell.backbone if cell else cell_id


def _column(study: Study, cell_id: str) -> str:
    """A B cell's column: its size and seed ('250/s0')."""
    cell = study.cell(cell_id)
    return f"{cell.size}/s{cell.seed}" if cell else cell_id


def _backbones(study: Study, kind: str) -> list[str]:
    found = {_backbone(study, r["a_cell"]) for r in study.comparisons if r["kind"] == kind}
    return [b for b in aggregate.backbones(study) if b in found] + sorted(found - set(aggregate.backbones(study)))


def _large_groups(study: Study) -> list[str]:
    """Group tasks (present among the metrics) whose compared subtasks are too many to list inline."""
    tasks = {r["task"] for r in study.metrics}
    compared = {r["task"] for r in study.comparisons}
    return [g for g in sorted(tasks) if sum(t.startswith(g + "_") for t in compared) > GROUP_INLINE]


def _kind_tables(study: Study, backbone: str, rows: list[dict], groups: list[str], names: dict[str, str]) -> list:
    b_cells = sorted({r["b_cell"] for r in rows}, key=study.cell_order)
    a_cells = sorted({r["a_cell"] for r in rows}, key=study.cell_order)
    a_text = f"A = `{a_cells[0]}`" if len(a_cells) == 1 else "A = the cell of the same size and seed"
    labels = [_column(study, c) for c in b_cells]
    metrics: dict[str, set[str]] = {}
    for r in rows:
        metrics.setdefault(r["task"], set()).add(r["metric"])
    primary = {task: primary_metric(m) for task, m in metrics.items()}
    by_key = {(r["task"], r["b_cell"]): r for r in rows if r["metric"] == primary[r["task"]]}

    def table(tasks: list[str], caption: str) -> Table:
        body = [[names.get(t, t), primary[t]] + [_entry(by_key.get((t, b))) for b in b_cells] for t in tasks]
        return Table(["task", "metric"] + labels, body, [False, False] + [True] * len(b_cells), caption, stacked=True)

    grouped = {g: [t for t in sorted(metrics) if t.startswith(g + "_")] for g in groups}
    inline = [t for t in sorted(metrics) if not any(t in members for members in grouped.values())]
    blocks: list = [table(inline, f"{backbone}: {a_text}")] if inline else []
    for group, members in grouped.items():
        if members:
            name = names.get(group, group)
            blocks.append(Details(f"{backbone}: {name}, {len(members)} subtasks compared",
                                  [table(members, f"{backbone}, {name}: {a_text}")]))
    return blocks


def _entry(row: dict | None) -> Num | str:
    """'+0.046' with '[+0.006, +0.086] p 0.011' and '*' when Holm p < ALPHA."""
    if row is None:
        return DASH
    ci = f"[{fmt(row['ci_low'], sign=True)}, {fmt(row['ci_high'], sign=True)}]" if row["ci_low"] is not None else ""
    p = row["p_holm"]
    detail = " ".join(x for x in (ci, f"p {fmt_p(p)}" if p is not None else "") if x)
    return Num(fmt(row["delta"], sign=True), detail, "*" if p is not None and p < ALPHA else "")
