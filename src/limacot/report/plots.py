"""The report's own charts as PNG bytes (`limacot.io.figures`: the house style; Okabe-Ito colours,
which stay distinguishable under the common colour-vision deficiencies). Each function takes
plain series prepared by the sections and returns the PNG; none reads the study itself. The
judge's charts (preference, position and length bias) are the judge's own (`limacot.judge.plot`).

    scaling_chart([Panel("kobest_copa", "acc", [Line("lima", "smol", [10, 20], [.5, .6], [.4, .5], [.6, .7])],
                         [Ref("smol", .45, .40, .50)])])        -> one subplot per task
    scaling_chart([Panel("grade", "mean grade (1-6)", [...], [Ref("smol", 3.1, 2.9, 3.3),
                                                           Ref("", 5.2, 5.0, 5.4, name="gpt-4o")])])
    ablation_chart([Group("smol", "N = 20", ["copa"], {"lima": [Bar(.6, .5, .7)]})])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from limacot.io.figures import png_bytes, pyplot

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
VARIANT_COLOURS = {"base": "#666666", "lima": "#0072B2", "lima+cot": "#D55E00", "cot": "#009E73",
                   "lima+answer-only": "#E69F00", "cot-answer-only": "#56B4E9"}
REFERENCE_COLOURS = ("#000000", "#CC79A7", "#F0E442")  # reference systems' lines (grades chart)
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")
MAX_PANELS = 12


def colour(variant: str, order: list[str]) -> str:
    """A fixed colour for the known variants; the others cycle through the rest of the palette."""
    if variant in VARIANT_COLOURS:
        return VARIANT_COLOURS[variant]
    spare = [c for c in OKABE_ITO if c not in VARIANT_COLOURS.values()]
    others = [v for v in order if v not in VARIANT_COLOURS]
    return spare[others.index(variant) % len(spare)] if variant in others else spare[0]


# --- scaling curves -----------------------------------------------------------------------------


@dataclass
class Line:
    variant: str
    backbone: str
    xs: list[float]
    means: list[float]
    lows: list[float | None]
    highs: list[float | None]


@dataclass
class Ref:
    """A horizontal line (and band): a backbone's base model, or a reference system (`name`)."""

    backbone: str
    mean: float
    low: float | None
    high: float | None
    name: str = "base"


@dataclass
class Panel:
    task: str
    metric: str
    lines: list[Line] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)


def scaling_chart(panels: list[Panel], variants: list[str], backbones: list[str], title: str) -> bytes:
    """Score vs number of training examples: one subplot per task, one line per (backbone,
    variant) with its 95% band, base as a horizontal line (and band) per backbone, and each
    reference system (a `Ref` with its name) as one too."""
    plt = pyplot()
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    legend_in = 0.45 if len(backbones) == 1 else 0.75
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(4.6 * ncols, 6.6), 3.2 * nrows + legend_in), squeeze=False)
    handles: dict[str, object] = {}
    references = list(dict.fromkeys(ref.name for panel in panels for ref in panel.refs if ref.name != "base"))
    for ax, panel in zip(axes.flat, panels):
        for line in panel.lines:
            style = backbones.index(line.backbone) % len(LINESTYLES)
            label = line.variant if len(backbones) == 1 else f"{line.variant} ({line.backbone})"
            (handle,) = ax.plot(line.xs, line.means, color=colour(line.variant, variants), linewidth=1.8,
                                linestyle=LINESTYLES[style], marker=MARKERS[style], markersize=4.5, label=label)
            handles.setdefault(label, handle)
            _band(ax, line.xs, line.lows, line.highs, colour(line.variant, variants))
        for ref in panel.refs:
            label, color, linestyle = _ref_style(ref, backbones, variants, references)
            handles.setdefault(label, ax.axhline(ref.mean, color=color, linewidth=1.2, linestyle=linestyle,
                                                 label=label))
            if ref.low is not None:
                ax.axhspan(ref.low, ref.high, color=color, alpha=0.08, linewidth=0)
        _size_axis(ax, sorted({x for line in panel.lines for x in line.xs}))
        ax.set_title(panel.task)
        ax.set_ylabel(panel.metric)
        ax.set_xlabel("training examples")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=min(4, len(handles)))
    fig.tight_layout(rect=(0, legend_in / (3.2 * nrows + legend_in), 1, 1))
    return png_bytes(fig)


def _ref_style(ref: Ref, backbones: list[str], variants: list[str], references: list[str]) -> tuple[str, str, str]:
    """(label, colour, line style) of a horizontal line: base grey, dashed per backbone; a
    reference system in its own colour, dash-dotted."""
    if ref.name != "base":
        return f"{ref.name} (reference)", REFERENCE_COLOURS[references.index(ref.name) % len(REFERENCE_COLOURS)], "-."
    style = backbones.index(ref.backbone) % len(LINESTYLES)
    label = "base" if len(backbones) == 1 else f"base ({ref.backbone})"
    return label, colour("base", variants), LINESTYLES[(style + 1) % len(LINESTYLES)]


def _band(ax, xs, lows, highs, color) -> None:
    points = [(x, lo, hi) for x, lo, hi in zip(xs, lows, highs) if lo is not None and hi is not None]
    if len(points) >= 2:
        ax.fill_between([p[0] for p in points], [p[1] for p in points], [p[2] for p in points],
                        color=color, alpha=0.15, linewidth=0)
    for x, lo, hi in points if len(points) == 1 else []:
        ax.errorbar([x], [(lo + hi) / 2], yerr=[[(hi - lo) / 2]], color=color, capsize=3, linewidth=1)


def _size_axis(ax, xs: list[float]) -> None:
    if xs and xs[-1] / max(xs[0], 1) >= 4:
        ax.set_xscale("log")
    if xs:
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs])
        ax.minorticks_off()
        pad = 0.15 * (xs[-1] - xs[0]) if ax.get_xscale() == "linear" and len(xs) > 1 else 0
        if pad:
            ax.set_xlim(xs[0] - pad, xs[-1] + pad)


# --- CoT ablation ---------------------------------------------------------------------------------


@dataclass
class Bar:
    mean: float | None
    low: float | None
    high: float | None


@dataclass
class Group:
    backbone: str
    subtitle: str
    tasks: list[str]
    bars: dict[str, list[Bar]]      # variant -> one Bar per task
    points: bool = False            # drawn as points with intervals (a score with no natural zero)


def ablation_chart(groups: list[Group], variants: list[str], ylabel: str, title: str) -> bytes:
    """Grouped bars: per task, one bar per variant with its 95% interval; one row per group (a
    backbone, or a backbone's tasks on another scale: `Group.points` draws points, not bars)."""
    plt = pyplot()
    n_tasks = max(len(g.tasks) for g in groups)
    width = max(7.0, min(10.0, 1.5 + n_tasks * (0.25 * len(variants) + 0.35)))
    fig, axes = plt.subplots(len(groups), 1, figsize=(width, 3.4 * len(groups) + 0.6), squeeze=False)
    step = 0.8 / max(1, len(variants))
    for ax, group in zip(axes[:, 0], groups):
        for i, variant in enumerate(v for v in variants if v in group.bars):
            bars = group.bars[variant]
            xs = [t + (i - (len(group.bars) - 1) / 2) * step for t in range(len(group.tasks))]
            means = [b.mean if b.mean is not None else 0 for b in bars]
            errors = [[max(0, b.mean - b.low) if b.low is not None and b.mean is not None else 0 for b in bars],
                      [max(0, b.high - b.mean) if b.high is not None and b.mean is not None else 0 for b in bars]]
            if group.points:
                drawn = [(x, b.mean, lo, hi) for x, b, lo, hi in zip(xs, bars, *errors) if b.mean is not None]
                if drawn:
                    x, y, lo, hi = zip(*drawn)
                    ax.errorbar(x, y, yerr=[lo, hi], fmt="s" if variant == "base" else "o", capsize=2.5,
                                color=colour(variant, variants), label=variant, elinewidth=1, markersize=6)
                continue
            ax.bar(xs, means, step * 0.92, yerr=errors, capsize=2.5, color=colour(variant, variants),
                   label=variant, hatch="//" if variant == "base" else None, edgecolor="white", linewidth=0.5,
                   error_kw={"elinewidth": 1, "ecolor": "#333333"})
        ax.set_xticks(range(len(group.tasks)))
        tilt = n_tasks > 8
        ax.set_xticklabels(group.tasks, rotation=25 if tilt else 0, ha="right" if tilt else "center")
        ax.set_ylabel("score (higher is better)" if group.points else ylabel)
        ax.set_title(f"{group.backbone}: {group.subtitle}")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.tight_layout()
    return png_bytes(fig)
