"""Charts as PNG bytes, in one house style: matplotlib's Agg backend (no display needed), 150 dpi,
no creation metadata (the same chart gives the same bytes), light grid, no top or right spine.

    plt = pyplot()
    fig, ax = plt.subplots()
    ...
    png = png_bytes(fig)      # the figure is closed
"""

from __future__ import annotations

import io

DPI = 150


def matplotlib_missing() -> str | None:
    """None when matplotlib imports, else the sentence printed instead of charts."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "Charts skipped: matplotlib is not installed (`pip install matplotlib`)."
    return None


def pyplot():
    """matplotlib.pyplot on the Agg backend, with the house style set."""
    import matplotlib  # heavy (about 0.5 s), and only charts need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold",
                         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
                         "axes.axisbelow": True, "grid.alpha": 0.3, "legend.frameon": False})
    return plt


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt  # loaded already: the figure was made with it

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
