"""A LIMA Figure-1-style chart: one horizontal stacked bar per B run, split into
"B wins", "tie", "A wins" (and "unparseable", when any) as percentages of its prompts."""

from __future__ import annotations

from pathlib import Path

from limacot.errors import LimacotInputError
from limacot.io.atomic import atomic_write_bytes

SEGMENTS = (("win", "{b} wins", "#4c9a5f"), ("tie", "tie", "#c9c9c9"), ("loss", "{a} wins", "#c8553d"),
            ("unparseable", "unparseable", "#ffffff"))


def preference_chart(rows: list[dict], a_name: str, path: str | Path, title: str | None = None) -> Path:
    """Write the chart of `rows` ({"b_run", "n", "win", "tie", "loss", "unparseable"} each) to `path`
    (PNG), atomically. Needs matplotlib."""
    try:
        import matplotlib
    except ImportError as err:
        raise LimacotInputError("the preference chart needs matplotlib: pip install matplotlib") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 1.7 + 0.5 * len(rows)
    fig, ax = plt.subplots(figsize=(8, height))
    names = [row["b_run"] for row in rows]
    left = [0.0] * len(rows)
    for key, label, color in SEGMENTS:
        shares = [100 * row[key] / row["n"] if row["n"] else 0 for row in rows]
        if key == "unparseable" and not any(shares):
            continue
        odd = key == "unparseable"
        bars = ax.barh(names, shares, left=left, color=color, edgecolor="#9a9a9a" if odd else "white",
                       label=label.format(a=a_name, b="B run"), hatch="//" if odd else None)
        for bar, share in zip(bars, shares):
            if share >= 6:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2, f"{share:.0f}%",
                        ha="center", va="center", fontsize=9)
        left = [x + s for x, s in zip(left, shares)]
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of prompts")
    ax.set_title(title or f"Pairwise preference against {a_name}")
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))  # the bottom 0.4 inch holds the legend
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
