"""The chart sections: scaling curves and the CoT ablation (the judge's charts: `judging`; the
grades chart: `grades`, with `scaling_panel`).
Each section prepares the series from the same estimates the tables show, draws the PNG
(`plots`) and returns blocks with the image, or a sentence saying why there is none.

Sizes on the x axis are the number of training examples: the record count the data manifest
gives for `<variant>/<size>/train.jsonl` (so "all" becomes its real count), else the size itself.
"""

from __future__ import annotations

from limacot.eval.scores import MEAN_METRICS, metric_base, primary_metric
from limacot.io import figures
from limacot.report import aggregate, plots
from limacot.report.aggregate import KNOWN_VARIANTS
from limacot.report.doc import Heading, Image, Para
from limacot.report.study import Study
from limacot.study.cells import BASE

ABLATION = KNOWN_VARIANTS  # the CoT ablation draws every known variant, base for reference


def chart_tasks(estimates: dict) -> tuple[list[tuple[str, str]], str]:
    """(task, primary metric) for the charts: the headline tasks, at most plots.MAX_PANELS, and a
    sentence naming what was left out ('' when nothing)."""
    by_task = aggregate.metrics_by_task(estimates)
    headline = aggregate.headline_tasks(by_task)
    chosen = [(t, primary_metric(by_task[t])) for t in headline[:plots.MAX_PANELS]]
    left = len(headline) - len(chosen)
    note = f" The first {len(chosen)} of {len(headline)} tasks are drawn; the tables have all." if left else ""
    return chosen, note


def examples(study: Study, variant: str, size: str) -> float | None:
    outputs = (study.manifest or {}).get("outputs", {})
    info = outputs.get(f"{variant}/{size}/train.jsonl")
    if info and info.get("records") is not None:
        return float(info["records"])
    return float(size) if size.replace(".", "", 1).isdigit() else None


def scaling_section(study: Study, estimates: dict) -> list:
    blocks: list = [Heading(2, "Scaling curves")]
    tasks, left_out = chart_tasks(estimates)
    labels = aggregate.task_labels(study)
    panels = [scaling_panel(study, estimates, task, metric, labels.get(task, task)) for task, metric in tasks]
    panels = [p for p in panels if p.lines]
    if not panels:
        return blocks + [Para("No fine-tuned cell has benchmark numbers yet, so there is nothing to draw.")]
    if (missing := figures.matplotlib_missing()):
        return blocks + [Para(missing)]
    n_sizes = len({x for p in panels for line in p.lines for x in line.xs})
    png = plots.scaling_chart(panels, aggregate.variants(study), aggregate.backbones(study),
                              "Score vs number of training examples (mean over seeds, 95% CI)")
    text = ("Score vs number of training examples, one line per backbone and variant, shaded: 95% interval "
            "(as in the main tables); the grey horizontal line and band: the backbone without fine-tuning (base)."
            + left_out + (" Only one training size was run, so each line is a single point." if n_sizes == 1 else ""))
    return blocks + [Para(text), Image("scaling.png", "Scaling curves", png)]


def scaling_panel(study: Study, estimates: dict, task: str, metric: str, label: str) -> plots.Panel:
    """One panel of a scaling chart from `estimates` keyed (backbone, variant, size, task, metric):
    a line per backbone and fine-tuned variant over the training examples, base as a reference
    line per backbone. The grades chart (`grades`) draws its grades through it too."""
    panel = plots.Panel(label, metric)
    for backbone in aggregate.backbones(study):
        base = estimates.get((backbone, BASE, "-", task, metric))
        if base is not None:
            panel.refs.append(plots.Ref(backbone, base.mean, base.low, base.high))
        for variant in aggregate.variants(study):
            points = sorted((x, est) for size in aggregate.sizes(study)
                            if variant != BASE and (est := estimates.get((backbone, variant, size, task, metric)))
                            and (x := examples(study, variant, size)) is not None)
            if points:
                panel.lines.append(plots.Line(variant, backbone, [p[0] for p in points], [p[1].mean for p in points],
                                              [p[1].low for p in points], [p[1].high for p in points]))
    return panel


def ablation_section(study: Study, estimates: dict) -> list:
    blocks: list = [Heading(2, "CoT ablation")]
    tasks, left_out = chart_tasks(estimates)
    # Scores in [0, 1] share bars from zero; an unbounded per-doc score (ll_per_char) has no
    # natural zero and another scale, so it gets its own row per backbone, drawn as points.
    scales = [[t for t in tasks if metric_base(t[1]) not in MEAN_METRICS],
              [t for t in tasks if metric_base(t[1]) in MEAN_METRICS]]
    groups = [g for b in aggregate.backbones(study) for points, chosen in enumerate(scales) if chosen
              and (g := _ablation_group(study, estimates, b, chosen, points=bool(points)))]
    if not groups:
        return blocks + [Para(f"No cell of {', '.join(ABLATION[1:])} has benchmark numbers yet: nothing to compare.")]
    if (missing := figures.matplotlib_missing()):
        return blocks + [Para(missing)]
    variants = [v for v in aggregate.variants(study) if v in ABLATION]
    png = plots.ablation_chart(groups, variants, "score (metric under each task)",
                               f"CoT ablation: {' vs '.join(v for v in variants if v != BASE)} "
                               "(mean over seeds, 95% CI)")
    text = ("Per task, one bar per variant at the largest training size each backbone has (named in each panel), "
            "error bars: 95% interval as in the main tables; hatched grey: base, for reference."
            + (" Tasks scored by " + ", ".join(MEAN_METRICS) + " (no natural zero, another scale) are in a row of "
               "their own, as points." if any(g.points for g in groups) else "") + left_out)
    return blocks + [Para(text), Image("cot_ablation.png", "CoT ablation", png)]


def _ablation_group(study: Study, estimates: dict, backbone: str, tasks: list,
                    points: bool = False) -> plots.Group | None:
    tuned = [s for s in aggregate.sizes(study)
             if any((backbone, v, s, t, m) in estimates for v in ABLATION[1:] for t, m in tasks)]
    if not tuned:
        return None
    size = tuned[-1]
    bars: dict[str, list[plots.Bar]] = {}
    for variant in ABLATION:
        key_size = "-" if variant == BASE else size
        row = [estimates.get((backbone, variant, key_size, t, m)) for t, m in tasks]
        if any(row):
            bars[variant] = [plots.Bar(e.mean, e.low, e.high) if e else plots.Bar(None, None, None) for e in row]
    records = {v: n for v in bars if v != BASE and (n := examples(study, v, size)) is not None}
    counts = ", ".join(f"{v} {n:g}" for v, n in records.items())
    label = f"training size {size}" + (f" (records: {counts})" if counts and
                                       {f"{n:g}" for n in records.values()} != {size} else "")
    absent = [v for v in ABLATION[1:] if v in aggregate.variants(study) and v not in bars]
    label += f"; no numbers for {', '.join(absent)}" if absent else ""
    names = aggregate.task_labels(study)
    return plots.Group(backbone, label, [f"{names.get(t, t)}\n({m})" for t, m in tasks], bars, points)
