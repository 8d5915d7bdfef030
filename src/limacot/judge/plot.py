"""The pairwise preference chart, LIMA Figure 1 style: one horizontal stacked bar per comparison
(B wins / tie / A wins, and unparseable when any, as % of the prompts), with "B equal or better",
its 95% interval and the order flips written beside each bar. `limacot judge` draws it as
preference.png (one bar per B run), the report as judge.png (one bar per judged pair of cells).

    preference_chart([Verdict("lima vs base", 50, 30, 10, 10, 0, .8, .7, .9, flipped=4)], "Preference")
    -> PNG bytes
"""

from __future__ import annotations

from dataclasses import dataclass

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
