"""How much the judge's verdicts follow what should not matter: where an answer is shown, and how
long it is. Pure functions over one B run's records (`limacot.judge.protocol.judged_record`).

**Position bias** (`position_bias`): among the order-level verdicts that prefer one answer (both
orders of every prompt; ties and unreadable verdicts left out), the share preferring the answer
shown FIRST: 0.5 for a judge the position does not sway, 1.0 for one that always says "1".
Interval: percentile bootstrap over prompts (a prompt brings both its verdicts).

**Length bias** (`length_bias`): per decided prompt, B's outcome as a number (win 1, tie or flip
0.5, loss 0: the both-orders "win + tie/2") against the length difference

    x = log2((characters of B + 1) / (characters of A + 1))      (answers stripped of outer space)

0 when the answers are equally long, +1 when B's is twice A's. Characters, not whitespace tokens:
Korean spacing joins a word and its particles into one token, so a token count would measure
something else in Korean than in English; the log ratio makes "twice as long" the same step for a
50- and a 2,000-character answer. A logistic regression of the outcome on x (intercept + slope,
`limacot.stats.logistic`: Firth-penalized, so a judge that always prefers the longer answer still
gets a finite fit) gives

    slope       change in the log-odds of B preferred per doubling of B's length relative to A's;
                p_value: penalized likelihood-ratio test of slope = 0; slope_ci95: bootstrap
    lc_rate     the fit's prediction at x = 0 (equally long answers): the length-controlled
                "win + tie/2", in the style of AlpacaEval's length-controlled win rate, beside the
                raw one (raw_rate); lc_ci95: bootstrap over prompts (the same resamples)
    bins        the chart's points: decided prompts sorted by x in up to 8 equal groups,
                [mean x, mean outcome, prompts] each

    records of a judge that always prefers the longer answer, B longer in half the prompts
    -> {"slope": large, "p_value": < 1e-10, "raw_rate": 0.5, "lc_rate": about 0.5, ...}
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import expit

from limacot.judge.config import RESAMPLES
from limacot.judge.protocol import ORDERS
from limacot.stats.bootstrap import bootstrap_interval, bootstrap_intervals, resampled_ratio
from limacot.stats.logistic import likelihood_ratio_p, logistic_coefs, logistic_fit

COVARIATE = "log2((chars B + 1) / (chars A + 1))"
OUTCOME_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
BINS = 8
log = logging.getLogger(__name__)


def position_bias(records: list[dict], *, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """{"first": verdicts preferring the first-shown answer, "decisive": verdicts preferring either,
    "prompts": prompts with at least one, "share_first": first / decisive, "ci95": [lo, hi]}
    (share and interval None when no verdict preferred an answer)."""
    first, decisive = [], []
    for record in records:
        shown = [record["orders"][order]["verdict"] for order in ORDERS]
        shown = [v for v in shown if v in ("1", "2")]
        if shown:
            first.append(shown.count("1"))
            decisive.append(len(shown))
    result = {"first": sum(first), "decisive": sum(decisive), "prompts": len(decisive), "share_first": None,
              "ci95": None}
    if decisive:
        interval = bootstrap_interval(resampled_ratio(first, decisive), len(decisive), resamples=resamples,
                                      seed=seed)
        result.update(share_first=interval.value, ci95=[round(interval.low, 4), round(interval.high, 4)])
    return result


def answer_length(text: str) -> int:
    """An answer's length in characters, outer whitespace stripped."""
    return len((text or "").strip())


def length_x(answer_a: str, answer_b: str) -> float:
    """log2((chars B + 1) / (chars A + 1)): 0 for equal lengths, +1 when B is twice as long."""
    return float(np.log2((answer_length(answer_b) + 1) / (answer_length(answer_a) + 1)))


def length_bias(records: list[dict], *, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """The length fit of one B run's decided prompts (see the module docstring). Its numbers are
    None, with a `note` saying why, when fewer than 3 prompts were decided or all length
    differences are equal (nothing to fit a slope on)."""
    decided = [r for r in records if r["outcome"] != "unparseable"]
    x = np.array([length_x(r["answer_a"], r["answer_b"]) for r in decided])
    y = np.array([OUTCOME_VALUE[r["outcome"]] for r in decided])
    result = {"covariate": COVARIATE, "n": len(decided), "raw_rate": float(y.mean()) if len(y) else None,
              "intercept": None, "slope": None, "slope_se": None, "slope_ci95": None, "p_value": None,
              "lc_rate": None, "lc_ci95": None, "converged": None, "bins": length_bins(x, y), "note": None}
    if len(decided) < 3 or np.ptp(x) == 0:
        result["note"] = (f"no fit: {len(decided)} decided prompts" if len(decided) < 3
                          else "no fit: every pair's answers differ in length by the same ratio")
        return result
    X = np.column_stack([np.ones_like(x), x])
    fit = logistic_fit(X, y)
    if not fit.converged:
        log.warning("the length-bias fit did not converge in %d steps; its numbers are the last step's",
                    fit.iterations)
    slope, lc = bootstrap_intervals(_refitted(X, y), len(y), resamples=resamples, seed=seed)
    result.update(intercept=round(fit.coef[0], 4), slope=round(fit.coef[1], 4), slope_se=round(fit.se[1], 4),
                  slope_ci95=_rounded(slope.low, slope.high), p_value=likelihood_ratio_p(X, y, 1),
                  lc_rate=float(expit(fit.coef[0])), lc_ci95=_rounded(lc.low, lc.high), converged=fit.converged)
    if result["slope_ci95"] is None:
        result["note"] = ("no intervals: some bootstrap resamples had no spread in length to fit (too few "
                          "prompts) or their fit did not converge")
    return result


def _refitted(X: np.ndarray, y: np.ndarray):
    """statistic(index) -> [R, 2]: (slope, prediction at x = 0) of the fit on each resample."""
    n = len(y)

    def statistic(index: np.ndarray) -> np.ndarray:
        rows = np.arange(index.shape[0])[:, None] * n
        counts = np.bincount((index + rows).ravel(), minlength=index.shape[0] * n).reshape(index.shape[0], n)
        coef = logistic_coefs(X, y, counts)
        return np.column_stack([coef[:, 1], expit(coef[:, 0])])

    return statistic


def _rounded(low: float, high: float) -> list[float] | None:
    return [round(low, 4), round(high, 4)] if np.isfinite(low) and np.isfinite(high) else None


def length_bins(x: np.ndarray, y: np.ndarray, bins: int = BINS) -> list[list[float]]:
    """[mean x, mean outcome, prompts] of up to `bins` groups of the prompts sorted by x (at
    least 5 prompts a group when there are fewer than 5 * bins)."""
    if not len(x):
        return []
    order = np.argsort(x, kind="stable")
    groups = np.array_split(order, max(1, min(bins, len(x) // 5)))
    return [[round(float(x[g].mean()), 4), round(float(y[g].mean()), 4), int(len(g))] for g in groups]
