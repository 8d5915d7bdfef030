"""The "Absolute grades (1-6)" section: the store's grades rows (`limacot.study.store.GradeRow`,
written by `limacot run`'s grade jobs, `grade:` in the study config) as a table per backbone
and judge and the chart `grades.png`.

Each answer to the judge's prompts is graded 1-6 for helpfulness (`limacot judge grade`); a
cell's row holds the mean over its graded prompts with a 95% bootstrap interval over prompts.
The table pools the training seeds as the main tables do (mean over seeds, t-interval over
seeds; one seed: its own bootstrap interval), a row per variant and size, base first and the
reference systems last (headers shortened; one sample per answer):

    | variant            | size | examples | mean grade [95% CI]    | seeds | graded   | unparseable |
    | base               | —    | —        | 2.950 [2.700, 3.200] ‡ | 1     | 40 of 40 | 0 of 40     |
    | lima               | 10   | 10       | 3.475 [2.840, 4.110]   | 2     | 79 of 80 | 1 of 80     |
    | gpt-4o (reference) | —    | —        | 5.300 [5.100, 5.500] ‡ | —     | 40 of 40 | 0 of 40     |

Every cell's own row (each seed, the distribution of its grades) is in a collapsible table beneath.
The chart is the scaling chart with the grade as its y-axis (`charts.scaling_panel`): mean
grade vs number of training examples, a line per variant, base and the references as
horizontal lines.
"""

from __future__ import annotations

import json

import yaml

from limacot.io import figures
from limacot.judge.grades import SCALE
from limacot.report import aggregate, charts, plots
from limacot.report.doc import Details, Heading, Image, Num, Para, Table
from limacot.report.results import DASH, fmt
from limacot.report.study import Study
from limacot.stats.intervals import Estimate, mean_interval
from limacot.study.cells import BASE, BASE_SIZE
from limacot.study.store import GradeRow

TITLE = "Absolute grades (1-6)"
TASK = "grade"                      # the "task" of a grade estimate's key (backbone, variant, size, TASK, judge)
BOOTSTRAP_FLAG = "‡"
GRADES = tuple(str(g) for g in range(SCALE[0], SCALE[1] + 1))
HOW_TO = ("To grade every cell's answers, the references' too, add `grade: {samples: 1}` to the study config "
          "(it needs the `judge:` section: the judge grades the answers to its prompts) and rerun `limacot run`; "
          "the grade jobs run after the generate jobs and this section then shows them.")


def grade_estimates(study: Study) -> dict[tuple, Estimate]:
    """(backbone, variant, size, TASK, judge) -> the grid cells' mean grade over training seeds:
    two or more seeds, the t-interval over seeds; one, that cell's bootstrap interval over prompts
    (method "bootstrap"). Labels: the cells, in seed order. Rows without a grade are left out."""
    grouped: dict[tuple, list[tuple[int, str, GradeRow]]] = {}
    for row in study.grades:
        cell = study.cell(row["cell_id"])
        if cell is None or cell.is_reference or row["mean"] is None:
            continue
        key = (cell.backbone, cell.variant, cell.size, TASK, row["judge"])
        grouped.setdefault(key, []).append((cell.seed, cell.id, row))
    out = {}
    for key, entries in grouped.items():
        entries.sort(key=lambda e: e[0])
        labels = tuple(e[1] for e in entries)
        if len(entries) == 1:
            row = entries[0][2]
            out[key] = Estimate(row["mean"], row["ci_low"], row["ci_high"], "bootstrap", 1, labels)
        else:
            out[key] = mean_interval([e[2]["mean"] for e in entries], None, labels)
    return out


def grades_section(study: Study) -> list:
    blocks: list = [Heading(2, TITLE)]
    if not study.grades:
        grade = study.config.get("grade")
        if grade:
            flow = yaml.safe_dump(grade, default_flow_style=True).strip()
            return blocks + [Para(f"Grading is configured (`grade: {flow}`), but no grades are "
                                  f"recorded yet (see Study status for the grade stages).")]
        return blocks + [Para("No absolute grades in the store. " + HOW_TO)]
    estimates = grade_estimates(study)
    judges = sorted({row["judge"] for row in study.grades})
    blocks.append(Para(_about(study, judges)))
    for judge in judges:
        graded = [b for b in aggregate.backbones(study) if any(k[0] == b and k[4] == judge for k in estimates)]
        for backbone in graded or [None]:  # no cell graded: the references alone
            rows = _table_rows(study, estimates, backbone, judge)
            if rows:
                title = (backbone or "reference systems") + (f" (judge `{judge}`)" if len(judges) > 1 else "")
                blocks += [Heading(3, title),
                           Table(["variant", "size", "training examples", "mean grade [95% CI]", "seeds",
                                  "graded prompts", "unparseable replies"], rows, [False, False] + [True] * 5)]
    blocks.append(_per_cell(study))
    return blocks + _chart(study, estimates, judges)


def _about(study: Study, judges: list[str]) -> str:
    samples = sorted({row["samples"] for row in study.grades if row["samples"] is not None})
    times = (f"{samples[0]} time{'s' if samples[0] > 1 else ''}" if len(samples) == 1 else
             f"{' or '.join(map(str, samples))} times (per cell in the table below)")
    sampled = ("at temperature 0" if samples == [1] else
               "sampled at the judge's sample temperature (0.7 by default)" if 1 not in samples else
               "at temperature 0 when once, at the judge's sample temperature when several times")
    return (f"Every answer to the judge's prompts graded for helpfulness on a 1-6 scale, the scale of LIMA's "
            f"ablations (§5 of the LIMA paper, where a judge model graded each answer 1-6), in our 6-level rubric "
            f"(6 excellent: complete, accurate, clear; 5 very good; 4 good; 3 fair, partly helpful; 2 poor; 1 not "
            f"helpful: wrong, irrelevant, empty or harmful; length is not merit). The judge "
            f"({', '.join(f'`{j}`' for j in judges)}) saw one prompt and one answer and ended its reply with "
            f"\"Rating: N\"; each answer was graded {times}, {sampled} (`limacot judge grade`). A prompt's grade "
            f"is the mean of its readable replies, a cell's grade the mean over its graded prompts; unparseable "
            f"replies are counted and left out, never guessed. Entries: mean over training seeds [95% CI]: with "
            f"two or more seeds a t-interval over seeds, as in the main tables; {BOOTSTRAP_FLAG} marks one seed or "
            f"a reference system, whose interval is the 95% bootstrap over prompts. Graded prompts and unparseable "
            f"replies are summed over the seeds.")


def _table_rows(study: Study, estimates: dict, backbone: str | None, judge: str) -> list[list]:
    """Base, each variant at each size, then the reference systems, of one backbone and judge."""
    by_cell = {row["cell_id"]: row for row in study.grades if row["judge"] == judge}
    rows = []
    for variant in aggregate.variants(study):
        for size in [BASE_SIZE] if variant == BASE else aggregate.sizes(study):
            est = estimates.get((backbone, variant, size, TASK, judge))
            if est is None:
                continue
            x = None if variant == BASE else charts.examples(study, variant, size)
            rows.append([variant, DASH if variant == BASE else size, DASH if x is None else f"{x:g}", _entry(est),
                         str(est.k)] + _counts([by_cell[c] for c in est.labels]))
    for ref in study.reference_cells:
        row = by_cell.get(ref["cell_id"])
        if row is not None and row["mean"] is not None:
            est = Estimate(row["mean"], row["ci_low"], row["ci_high"], "bootstrap", 1, (ref["cell_id"],))
            rows.append([f"{ref['variant']} (reference)", DASH, DASH, _entry(est), DASH] + _counts([row]))
    return rows


def _entry(est: Estimate) -> Num:
    detail = f"[{fmt(est.low)}, {fmt(est.high)}]" if est.low is not None else "(no CI)"
    return Num(fmt(est.mean), detail, BOOTSTRAP_FLAG if est.method == "bootstrap" else "")


def _counts(rows: list[GradeRow]) -> list[str]:
    """'graded of prompts' and 'unparseable of replies' summed over `rows`."""
    n = sum(r["n"] or 0 for r in rows)
    replies = sum((r["n"] or 0) * (r["samples"] or 1) for r in rows)
    return [f"{sum(r['graded'] or 0 for r in rows)} of {n}", f"{sum(r['unparseable'] or 0 for r in rows)} of {replies}"]


def _per_cell(study: Study) -> Details:
    """Every grades row: each cell (each seed) and reference with its own interval and the counts
    of its readable sample grades."""
    rows = []
    for row in sorted(study.grades, key=lambda r: (r["judge"], _reference_last(study, r["cell_id"]),
                                                   study.cell_order(r["cell_id"]))):
        distribution = _distribution(row["distribution"])
        interval = f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]" if row["ci_low"] is not None else ""
        rows.append([row["cell_id"], row["judge"], str(row["samples"]), Num(fmt(row["mean"]), interval)]
                    + _counts([row]) + [distribution.get(g, DASH) for g in GRADES])
    return Details(f"Per cell: every training seed and reference ({len(rows)})", [
        Para("Each cell's own grade (mean over its graded prompts, 95% bootstrap interval over prompts) and how "
             "many of its readable replies gave each grade."),
        Table(["cell", "judge", "samples", "mean grade [95% CI]", "graded prompts", "unparseable replies"]
              + list(GRADES), rows, [False, False] + [True] * (4 + len(GRADES)))])


def _reference_last(study: Study, cell_id: str) -> bool:
    cell = study.cell(cell_id)
    return bool(cell and cell.is_reference)


def _distribution(text: str | None) -> dict[str, str]:
    try:
        counts = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


def _chart(study: Study, estimates: dict, judges: list[str]) -> list:
    """grades.png: one panel per judge, the mean grade vs training examples."""
    panels = []
    for judge in judges:
        panel = charts.scaling_panel(study, estimates, TASK, judge, f"judge: {judge}" if len(judges) > 1 else
                                     "Helpfulness grade")
        panel.metric = f"mean grade ({SCALE[0]}-{SCALE[1]})"
        for ref in study.reference_cells:
            row = next((r for r in study.grades if r["cell_id"] == ref["cell_id"] and r["judge"] == judge), None)
            if row is not None and row["mean"] is not None:
                panel.refs.append(plots.Ref("", row["mean"], row["ci_low"], row["ci_high"], name=ref["variant"]))
        panels.append(panel)
    if not any(panel.lines for panel in panels):
        return [Para("No fine-tuned cell has a grade yet, so there is no curve to draw.")]
    if (missing := figures.matplotlib_missing()):
        return [Para(missing)]
    png = plots.scaling_chart([p for p in panels if p.lines], aggregate.variants(study), aggregate.backbones(study),
                              "Mean grade (1-6) vs training examples (mean over seeds, 95% CI)")
    text = ("Mean grade vs number of training examples (the data manifest's record counts), one line per variant"
            " (and backbone), shaded: its 95% interval as in the table; horizontal lines: the backbone without "
            "fine-tuning (base, grey) and each reference system (dash-dotted), with their intervals.")
    return [Para(text), Image("grades.png", "Absolute grades vs training examples", png)]
