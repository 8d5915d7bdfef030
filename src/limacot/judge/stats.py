"""Counts, LIMA's headline rate and its seeded bootstrap confidence interval.

    outcomes ["win", "tie", "loss", "win", "unparseable"]
    -> {"n": 5, "win": 2, "tie": 1, "loss": 1, "unparseable": 1, "decided": 4,
        "b_equal_or_better": 0.75, "ci95": [lo, hi], ...}

"B equal or better than A" = (win + tie) / decided, where decided leaves out the prompts whose
verdict could not be read (their count is reported beside it). The 95% interval is the
percentile bootstrap over prompts: `resamples` draws of the decided prompts with replacement,
from numpy's generator seeded with `seed`, so the same outcomes always give the same interval.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence


def summarize(outcomes: Sequence[str], *, resamples: int = 2000, seed: int = 0, flips: int = 0) -> dict:
    """Counts and rates of one B run's outcomes (see the module docstring)."""
    counts = Counter(outcomes)
    decided = [o for o in outcomes if o != "unparseable"]
    rate = (counts["win"] + counts["tie"]) / len(decided) if decided else None
    return {"n": len(outcomes), "win": counts["win"], "tie": counts["tie"], "loss": counts["loss"],
            "unparseable": counts["unparseable"], "decided": len(decided), "flipped": flips,
            "b_equal_or_better": rate, "b_better": counts["win"] / len(decided) if decided else None,
            "ci95": bootstrap_ci([o in ("win", "tie") for o in decided], resamples=resamples, seed=seed)}


def bootstrap_ci(successes: Sequence[bool], *, resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of the mean of `successes` (None when empty)."""
    import numpy as np

    if not len(successes) or resamples < 1:
        return None
    values = np.asarray(successes, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return [round(float(low), 4), round(float(high), 4)]
