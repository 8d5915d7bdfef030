"""Human labels against each other and against the judge: what `limacot judge import` writes
to HUMAN_OUT/human.json (`limacot.judge.annotation` reads the sheets; this module counts).

Every label and every judge verdict is B's outcome against A on one prompt: win, tie or loss
(the judge's is its combined both-orders outcome from records.jsonl; an unparseable one is left
out of the agreement and counted). Per (A, B run) pair, human.json holds:

    prompts                 prompts of this pair on the sheets
    judge                   the judge's counts and "B equal or better" on those prompts (95% CI)
    human.per_annotator     each annotator's win / tie / loss, not annotated, "B equal or better" (CI)
    human.pooled            every label of every annotator; the CI resamples prompts with all their labels
    judge_human.*           agreement of each annotator (and of all labels pooled) with the judge
    human_human.pairs       agreement of every two annotators on the prompts both labelled
    human_human.fleiss_kappa  with 3 or more annotators: Fleiss' kappa on the prompts all of them labelled

An agreement entry is {"n" (label pairs), "items" (prompts), "confusion" (rows: the first rater's
win/tie/loss, columns: the second's), "agreement_3way", "agreement_2way", "tie_discounted",
"kappa_3way"}, each measure {"value", "ci95"} with a percentile bootstrap over prompts
(`limacot.stats.bootstrap`):

    agreement_3way   share of prompts with the same outcome (win, tie, loss)
    agreement_2way   the same after collapsing to LIMA's headline split, "B equal or better"
                     (win or tie) vs "B worse" (loss)
    tie_discounted   LIMA's own inter-annotator agreement ("tie-discounted accuracy"): 1 when the
                     two agree, 1/2 when exactly one says tie, 0 for opposite preferences
    kappa_3way       Cohen's kappa on win / tie / loss (chance-corrected agreement_3way)

A value or interval is None when there is nothing to measure (no prompt both labelled) or it is
undefined (a kappa where both raters used one label only, also in some bootstrap resample).
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations

import numpy as np

from limacot.io.tables import markdown_table
from limacot.judge.protocol import summarize
from limacot.stats.agreement import cohen_kappa, fleiss_kappa, percent_agreement, tie_discounted, weighted_mean
from limacot.stats.bootstrap import bootstrap_interval

CODES = {"win": 0, "tie": 1, "loss": 2}
TIE = CODES["tie"]


def summarize_labels(labels: list[dict], key: dict, *, resamples: int, seed: int) -> dict:
    """{"bootstrap", "pairs"} of human.json from the annotators' label rows (`read_filled`) and the key."""
    names = list(dict.fromkeys(row["annotator"] for row in labels))
    pairs = []
    for b_run in key["b_runs"]:
        judge = {e["prompt_id"]: e["judge"] for e in key["items"].values() if e["b_run"] == b_run}
        mine = [r for r in labels if r["b_run"] == b_run and r["human"] is not None]
        by_annotator = {name: {r["prompt_id"]: r["human"] for r in mine if r["annotator"] == name} for name in names}
        skipped = Counter(r["annotator"] for r in labels if r["b_run"] == b_run and r["human"] is None)
        pairs.append({
            "a_run": key["a"], "b_run": b_run, "prompts": len(judge),
            "judge": _rate(list(judge.values()), resamples, seed),
            "human": {"pooled": _pooled_rate(mine, resamples, seed),
                      "per_annotator": {name: {**_rate(list(got.values()), resamples, seed),
                                               "not_annotated": skipped[name]}
                                        for name, got in by_annotator.items()}},
            "judge_human": {"pooled": _versus_judge(mine, judge, resamples, seed),
                            "per_annotator": {name: _versus_judge([r for r in mine if r["annotator"] == name], judge,
                                                                  resamples, seed) for name in names}},
            "human_human": _between_humans(by_annotator, resamples, seed),
        })
    return {"bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95, "over": "prompts"}, "pairs": pairs}


def _rate(outcomes: list[str], resamples: int, seed: int) -> dict:
    """Counts and "B equal or better" of one rater (the judge's own rule: `protocol.summarize`)."""
    stats = summarize(outcomes, resamples=resamples, seed=seed)
    keep = ("n", "win", "tie", "loss", "b_equal_or_better", "b_better", "ci95")
    return {k: stats[k] for k in keep} | ({"unparseable": stats["unparseable"]} if stats["unparseable"] else {})


def _pooled_rate(rows: list[dict], resamples: int, seed: int) -> dict:
    """Counts over every label, "B equal or better" = share of labels that are win or tie; its CI
    resamples prompts, each with all its labels (labels of one prompt are not independent)."""
    groups, items = _groups(r["prompt_id"] for r in rows)
    counts = Counter(r["human"] for r in rows)
    ok = [r["human"] in ("win", "tie") for r in rows]
    estimate = _estimate(weighted_mean(ok, groups), items, resamples, seed)
    return {"n": len(rows), "items": items, "win": counts["win"], "tie": counts["tie"], "loss": counts["loss"],
            "b_equal_or_better": estimate["value"], "ci95": estimate["ci95"]}


def _versus_judge(rows: list[dict], judge: dict[str, str], resamples: int, seed: int) -> dict:
    """Agreement of human labels with the judge's outcome of the same prompt."""
    decided = [r for r in rows if judge[r["prompt_id"]] in CODES]
    groups, items = _groups(r["prompt_id"] for r in decided)
    result = agreement([r["human"] for r in decided], [judge[r["prompt_id"]] for r in decided], groups, items,
                       resamples, seed)
    return {**result, "judge_unparseable": len(rows) - len(decided)}


def _between_humans(by_annotator: dict[str, dict[str, str]], resamples: int, seed: int) -> dict:
    """Every two annotators on the prompts both labelled; Fleiss' kappa with three or more."""
    pairs = []
    for (p, got_p), (q, got_q) in combinations(by_annotator.items(), 2):
        shared = [pid for pid in got_p if pid in got_q]
        pairs.append({"annotators": [p, q], **agreement([got_p[i] for i in shared], [got_q[i] for i in shared],
                                                        list(range(len(shared))), len(shared), resamples, seed)})
    fleiss = None
    if len(by_annotator) >= 3:
        everyone = [pid for pid in next(iter(by_annotator.values()))
                    if all(pid in got for got in by_annotator.values())]
        counts = [[sum(got[pid] == o for got in by_annotator.values()) for o in CODES] for pid in everyone]
        fleiss = {"raters": len(by_annotator), "items": len(everyone),
                  **(_estimate(fleiss_kappa(counts), len(everyone), resamples, seed) if everyone else _NONE)}
    return {"pairs": pairs, "fleiss_kappa": fleiss}


def agreement(first: list[str], second: list[str], groups: list[int], items: int, resamples: int, seed: int) -> dict:
    """The agreement entry (module docstring) of two raters' outcomes, row by row; `groups[i]` is
    row i's prompt (0..items-1), the unit the bootstrap resamples."""
    a, b = np.array([CODES[o] for o in first], dtype=int), np.array([CODES[o] for o in second], dtype=int)
    confusion = [[int(np.sum((a == i) & (b == j))) for j in range(3)] for i in range(3)]
    measures = {"agreement_3way": percent_agreement(a, b, groups),
                "agreement_2way": percent_agreement(a == CODES["loss"], b == CODES["loss"], groups),
                "tie_discounted": tie_discounted(a, b, TIE, groups),
                "kappa_3way": cohen_kappa(a, b, 3, groups)}
    return {"n": len(a), "items": items, "confusion": confusion,
            **{name: _estimate(stat, items, resamples, seed) if items else _NONE for name, stat in measures.items()}}


_NONE = {"value": None, "ci95": None}


def _groups(prompt_ids) -> tuple[list[int], int]:
    """Each row's prompt as 0..k-1 (first seen first), and k."""
    index: dict[str, int] = {}
    groups = [index.setdefault(pid, len(index)) for pid in prompt_ids]
    return groups, len(index)


def _estimate(statistic, items: int, resamples: int, seed: int) -> dict:
    """{"value", "ci95"} rounded to 4 decimals; None for what is undefined (NaN) or has no items."""
    if not items:
        return dict(_NONE)
    interval = bootstrap_interval(statistic, items, resamples=resamples, seed=seed)
    value = None if math.isnan(interval.value) else round(interval.value, 4)
    bad = math.isnan(interval.low) or math.isnan(interval.high)
    return {"value": value, "ci95": None if bad else [round(interval.low, 4), round(interval.high, 4)]}


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def estimate_text(estimate: dict, as_percent: bool = True) -> str:
    """{"value": 0.8, "ci95": [0.6, 0.9]} -> '80.0% [60.0%, 90.0%]' (kappa: '0.62 [0.41, 0.80]')."""
    show = percent if as_percent else (lambda v: "n/a" if v is None else f"{v:.2f}")
    ci = estimate.get("ci95")
    value = estimate.get("value")
    return show(value) + (f" [{show(ci[0])}, {show(ci[1])}]" if ci else " (no CI)" if value is not None else "")


def summary_table(result: dict) -> str:
    """HUMAN_OUT/table.md: one row per B run (pooled labels), and a line per annotator pair."""
    rows, lines = [], []
    for pair in result["pairs"]:
        human, vs = pair["human"]["pooled"], pair["judge_human"]["pooled"]
        rows.append([pair["b_run"], len(pair["human"]["per_annotator"]), human["n"], human["win"], human["tie"],
                     human["loss"], estimate_text({"value": human["b_equal_or_better"], "ci95": human["ci95"]}),
                     estimate_text({"value": pair["judge"]["b_equal_or_better"], "ci95": pair["judge"]["ci95"]}),
                     estimate_text(vs["agreement_3way"]), estimate_text(vs["tie_discounted"]),
                     estimate_text(vs["kappa_3way"], as_percent=False)])
        for hh in pair["human_human"]["pairs"]:
            lines.append(f"{pair['b_run']}: {' vs '.join(hh['annotators'])} on {hh['items']} prompts: "
                         f"3-way {estimate_text(hh['agreement_3way'])}, tie-discounted "
                         f"{estimate_text(hh['tie_discounted'])}, kappa {estimate_text(hh['kappa_3way'], False)}")
        if (fleiss := pair["human_human"]["fleiss_kappa"]) and fleiss["items"]:
            lines.append(f"{pair['b_run']}: Fleiss' kappa of {fleiss['raters']} annotators on {fleiss['items']} "
                         f"prompts: {estimate_text(fleiss, False)}")
    table = markdown_table(["B run", "annotators", "labels", "B wins", "ties", "A wins", "B equal or better (humans)",
                            "B equal or better (judge, same prompts)", "judge-human agreement", "tie-discounted",
                            "Cohen's kappa"], rows)
    note = (f"\nA = {result['a']}; judge = {result['judge']}; humans pooled over annotators (95% CI: bootstrap over "
            f"prompts). Agreement: 3-way = same win/tie/loss; tie-discounted = LIMA's (a tie against a preference "
            f"counts 1/2).\n")
    return "\n".join(table) + "\n" + note + ("\nHuman-human agreement:\n" + "\n".join(f"- {x}" for x in lines) + "\n"
                                             if lines else "")
