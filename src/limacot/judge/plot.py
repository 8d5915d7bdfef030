"""The pairwise preference chart, LIMA Figure 1 style: one horizontal stacked bar per comparison
(B wins / tie / A wins, and unparseable when any, as % of the prompts), with "B equal or better",
its 95% interval and the order flips written beside each bar. `limacot judge` draws it as
preference.png (one bar per B run), the report as judge.png (one bar per judged pair of cells).

    preference_chart([Verdict("lima vs base", 50, 30, 10, 10, 0, .8, .7, .9, flipped=4)], "Preference")
    -> PNG bytes

The judge's biases (`limacot.judge.bias`), drawn as position-bias.png and length-bias.png by
`limacot judge` and as judge_position.png and judge_length.png by the report:

    position_chart([PositionBar("lima vs base", 0.71, 0.62, 0.80, 96)], "Position bias")
        one bar per comparison: the share of decisive verdicts preferring the answer shown first,
        its 95% interval, and a line at 50% (no position bias)
    length_chart([LengthPanel("lima vs base", [[-1.2, 0.3, 12], ...], 0.1, 0.8, 0.002, 0.52, 0.6)], "Length")
        one panel per comparison: B's mean outcome (win 1, tie 0.5, loss 0) in bins of the length
        ratio, the fitted logistic curve, and its value at equal lengths (the length-controlled rate)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import expit

from limacot.io.figures import png_bytes, pyplot

SEGMENTS = (("wins", "B wins", "#0072B2", None), ("ties", "tie", "#BBBBBB", None),
            ("losses", "A wins", "#E69F00", None), ("unparseable", "unparseable", "#FFFFFF", "///"))


@dataclass
class Verdict:
    """One bar: the outcome counts of one comparison, its rate and interval, and its order flips."""

    label: str
    n: int
    wins: int
    ties: int
    losses: int
    unparseable: int
    rate: float | None
    low: float | None
    high: float | None
    flipped: int | None = None   # decided prompts whose verdict changed with the order (None: not recorded)

    @property
    def decided(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def undecided(self) -> bool:
        """Every decided verdict a tie: "B equal or better" is 100% whatever the answers were."""
        return self.decided > 0 and not self.wins and not self.losses

    def undecided_note(self) -> str:
        """Why its "B equal or better" says nothing, when `undecided` ('' otherwise):

            4 decided, 4 ties, 4 flipped -> 'all 4 verdicts flipped with the order: the judge did
            not decide, so its 100% "B equal or better" means nothing'
        """
        if not self.undecided:
            return ""
        n = self.decided
        if self.flipped == n:
            what = f"all {n} verdicts flipped with the order"
        elif self.flipped is None:
            what = f"all {n} verdicts were ties (order flips not recorded)"
        else:
            what = f"all {n} verdicts were ties ({self.flipped} flipped with the order)"
        return f"{what}: the judge did not decide, so its 100% \"B equal or better\" means nothing"

    def flips(self) -> str:
        if self.flipped is None:
            return "flips not recorded"
        share = f" ({100 * self.flipped / self.decided:.0f}%)" if self.decided else ""
        return f"flips {self.flipped}/{self.decided}{share}"


def run_verdicts(runs: list[dict]) -> list[Verdict]:
    """The bars of a `limacot judge` summary: one per B run (its `runs` entries)."""
    return [Verdict(run["b_run"], run["n"], run["win"], run["tie"], run["loss"], run["unparseable"],
                    run["b_equal_or_better"], *(run["ci95"] or (None, None)), run.get("flipped"))
            for run in runs]


def preference_chart(verdicts: list[Verdict], title: str) -> bytes:
    """The chart of `verdicts` as PNG bytes (see the module docstring); "judge did not decide"
    is written beside a bar whose decided verdicts were all ties."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10.5, 1.6 + 0.6 * max(len(verdicts), 3)))
    labels = [v.label for v in verdicts]
    left = [0.0] * len(verdicts)
    for key, name, color, hatch in SEGMENTS:
        shares = [100 * getattr(v, key) / v.n if v.n else 0 for v in verdicts]
        if key == "unparseable" and not any(shares):
            continue
        bars = ax.barh(labels, shares, left=left, color=color, hatch=hatch, edgecolor="#555555" if hatch else "white",
                       linewidth=0.6, label=name, height=0.65)
        for bar, share in zip(bars, shares):
            if share >= 7:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2, f"{share:.0f}%",
                        ha="center", va="center", fontsize=8, color="white" if key == "wins" else "black")
        left = [x + s for x, s in zip(left, shares)]
    for y, v in enumerate(verdicts):
        text = "n/a" if v.rate is None else f"{100 * v.rate:.0f}%" + (
            f" [{100 * v.low:.0f}, {100 * v.high:.0f}]" if v.low is not None and v.high is not None else "")
        detail = v.flips() + ("\njudge did not decide" if v.undecided else "")
        ax.text(102, y, f"{text}\n{detail}", va="center", fontsize=8.5,
                color="#B00020" if v.undecided else "black")
    ax.text(102, -0.6, "B equal or better\n[95% CI], order flips", fontsize=8.5, va="bottom", fontweight="bold")
    ax.set_xlim(0, 145)
    ax.set_xticks(range(0, 101, 20))
    ax.spines["bottom"].set_bounds(0, 100)
    ax.set_xlabel("% of prompts")
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_title(title, loc="left", pad=14)
    handles, names = ax.get_legend_handles_labels()
    legend_in = 0.4
    fig.legend(handles, names, loc="lower center", ncol=len(names))
    fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))
    return png_bytes(fig)


# --- the judge's biases ---------------------------------------------------------------------------

MAX_LENGTH_PANELS = 12


@dataclass
class PositionBar:
    label: str
    share: float | None      # decisive verdicts preferring the first-shown answer / decisive verdicts
    low: float | None
    high: float | None
    decisive: int


@dataclass
class LengthPanel:
    label: str
    bins: list[list[float]]  # [mean log2 length ratio, mean outcome, prompts]
    intercept: float | None
    slope: float | None
    p_value: float | None
    lc_rate: float | None
    raw_rate: float | None


def run_position_bars(runs: list[dict]) -> list[PositionBar]:
    """The bars of a `limacot judge` summary's runs."""
    bars = []
    for run in runs:
        bias = run.get("position_bias") or {}
        bars.append(PositionBar(run["b_run"], bias.get("share_first"), *(bias.get("ci95") or (None, None)),
                                bias.get("decisive") or 0))
    return bars


def run_length_panels(runs: list[dict]) -> list[LengthPanel]:
    """The panels of a `limacot judge` summary's runs."""
    fits = [(run["b_run"], run.get("length_bias") or {}) for run in runs]
    return [LengthPanel(name, fit.get("bins") or [], fit.get("intercept"), fit.get("slope"), fit.get("p_value"),
                        fit.get("lc_rate"), fit.get("raw_rate")) for name, fit in fits]


def position_chart(bars: list[PositionBar], title: str) -> bytes:
    """Horizontal bars of the first-shown share with 95% intervals and the 50% line (see the
    module docstring); a comparison without decisive verdicts is labelled so."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 1.7 + 0.5 * len(bars)))
    labels = [b.label for b in bars]
    shares = [100 * b.share if b.share is not None else 0 for b in bars]
    errors = [[max(0.0, 100 * (b.share - b.low)) if b.low is not None else 0 for b in bars],
              [max(0.0, 100 * (b.high - b.share)) if b.high is not None else 0 for b in bars]]
    ax.barh(labels, shares, xerr=errors, color="#56B4E9", height=0.6, capsize=3,
            error_kw={"elinewidth": 1, "ecolor": "#333333"})
    ax.axvline(50, color="#D55E00", linestyle="--", linewidth=1.2)
    ax.set_ylim(len(bars) - 0.4, -0.9)
    ax.text(50, -0.75, " 50%: no position bias", color="#D55E00", fontsize=8.5, va="center")
    for y, bar in enumerate(bars):
        text = ("no decisive verdict" if bar.share is None else
                f"{100 * bar.share:.0f}%" + (f" [{100 * bar.low:.0f}, {100 * bar.high:.0f}]" if bar.low is not None
                                             else "") + f" of {bar.decisive}")
        ax.text(102, y, text, va="center", fontsize=8.5)
    ax.set_xlim(0, 130)
    ax.set_xticks(range(0, 101, 25))
    ax.spines["bottom"].set_bounds(0, 100)
    ax.set_xlabel("% of decisive verdicts preferring the answer shown first (both orders of every prompt)")
    ax.grid(axis="y", visible=False)
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return png_bytes(fig)


def length_chart(panels: list[LengthPanel], title: str) -> bytes:
    """One panel per comparison (see the module docstring): binned points sized by their prompts,
    the fitted curve over the points' range, its value at equal lengths, 50% dashed."""
    plt = pyplot()
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows + 0.5), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        xs = [b[0] for b in panel.bins]
        ax.axhline(50, color="#999999", linestyle="--", linewidth=1)
        ax.axvline(0, color="#999999", linewidth=0.8)
        ax.scatter(xs, [100 * b[1] for b in panel.bins], s=[12 + 3 * b[2] for b in panel.bins], color="#0072B2",
                   alpha=0.75, zorder=3, label="binned prompts")
        subtitle = "no fit"
        if panel.slope is not None and panel.intercept is not None and xs:
            low, high = min(xs + [0.0]) - 0.25, max(xs + [0.0]) + 0.25
            grid = [low + (high - low) * i / 100 for i in range(101)]
            ax.plot(grid, [100 * float(expit(panel.intercept + panel.slope * g)) for g in grid], color="#D55E00",
                    linewidth=1.8, label="logistic fit")
            ax.scatter([0], [100 * panel.lc_rate], marker="D", color="#D55E00", zorder=4, s=30,
                       label="at equal length (LC)")
            subtitle = f"slope {panel.slope:+.2f}/doubling, p {panel.p_value:.2g}"
        _ratio_ticks(ax, xs)
        ax.set_ylim(-3, 103)
        ax.set_title(f"{panel.label}\n{subtitle}", fontsize=9.5)
        ax.set_xlabel("B length / A length (characters)")
        ax.set_ylabel("B preferred, % (tie = half)")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8.5)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.tight_layout(rect=(0, 0.5 / (3.3 * nrows + 0.5), 1, 1))
    return png_bytes(fig)


def _ratio_ticks(ax, xs: list[float]) -> None:
    """Ticks at whole powers of two of the length ratio, labelled as ratios (1/4x, 1x, 4x)."""
    low, high = math.floor(min(xs + [0.0])), math.ceil(max(xs + [0.0]))
    step = max(1, math.ceil((high - low) / 6))
    ticks = list(range(low, high + 1, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{2 ** t:g}x" if t >= 0 else f"1/{2 ** -t:g}x" for t in ticks])
