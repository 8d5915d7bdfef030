"""The pairwise-judgment section: the judge's win/tie/loss bars and table (both orders), the
table comparable with LIMA's, and the judge's position and length bias with their charts.

Every number comes from the store's judgments rows (`limacot.study.store.JudgmentRow`); the
charts are the judge's own (`limacot.judge.plot`). A row recorded before a column existed (an
older store) shows a dash there, and the section says so.
"""

from __future__ import annotations

import json

from limacot.io import figures
from limacot.judge.plot import (MAX_LENGTH_PANELS, LengthPanel, PositionBar, Verdict, length_chart, position_chart,
                                preference_chart)
from limacot.report import aggregate
from limacot.report.doc import Bullets, Heading, Image, Num, Para, Table
from limacot.report.results import DASH, fmt, fmt_p
from limacot.report.study import Study

COUNTS = ("wins", "ties", "losses", "unparseable", "n")
PROTOCOL = ("LIMA protocol: per prompt the judge compares A's and B's answers (both orders); "
            "\"B equal or better\" = (B wins + ties) / decided prompts, unparseable verdicts left out; "
            "95% CI: bootstrap over prompts. Order flips: decided prompts whose verdict changed when "
            "the two answers swapped places (position bias, not preference); they count as ties, so "
            "read \"B equal or better\" beside its flip rate.")
LIMA = ("LIMA showed each pair of answers once, in a random order, and reported how often its answer was "
        "equal to or better than the reference's: 43% against GPT-4, 58% against Bard, 65% against DaVinci003 "
        "(300 prompts). The number to set beside those is \"B equal or better, single order\": per prompt the "
        "verdict of one of its two judged orders, drawn per prompt id with the judge's seed. The both-orders "
        "rate above differs: a verdict that flips when the answers swap places counts as a tie there, and a tie "
        "as equal or better, so position bias raises it (a judge that always prefers the first answer reads 100% "
        "there and about 50% in a single order). \"win + tie/2\" counts a tie (or flip) as half a win; the flip "
        "rate is the share of decided prompts whose two verdicts preferred different runs.")
BIASES = ("Position bias: of the verdicts that prefer one answer (both orders of every prompt), the share "
          "preferring the answer shown first; 50% means the position does not sway the judge. Length bias: a "
          "logistic fit (Firth-penalized) of B's outcome per decided prompt (win 1, tie 1/2, loss 0) on log2 of "
          "B's answer length over A's, in characters; slope = change in log-odds per doubling of the ratio, p from "
          "the likelihood-ratio test, 95% CI: bootstrap over prompts. Length-controlled = the fit at equal "
          "lengths (in the style of AlpacaEval's length-controlled win rate), beside the raw win + tie/2: a gap "
          "between them is what the answers' lengths, not their content, earned.")


def judge_section(study: Study) -> list:
    blocks: list = [Heading(2, "Pairwise judgments")]
    judge = study.config.get("judge")
    if not study.judgments:
        if not judge and study.config:
            return blocks + [Para("No judge configured (the study config has no `judge:` section), so there are "
                                  "no pairwise judgments.")]
        name = (judge or {}).get("judge", "unknown")
        return blocks + [Para(f"Judge `{name}` configured, but no judgments are recorded yet "
                              f"(see Study status for the judge stages).")]
    rows = sorted(study.judgments,
                  key=lambda r: (r["judge"], study.cell_order(r["a_cell"]), study.cell_order(r["b_cell"])))
    several = (len({x["judge"] for x in rows}) > 1, len(aggregate.backbones(study)) > 1)
    labels = [_pair_label(study, r, *several) for r in rows]
    blocks.append(Para(PROTOCOL))
    undecided = [line for r in rows if (line := undecided_warning(r))]
    if undecided:
        blocks += [Para("The judge did not decide:"), Bullets(undecided)]
    missing = figures.matplotlib_missing()
    if not missing:
        verdicts = [row_verdict(r, label) for label, r in zip(labels, rows)]
        blocks.append(Image("judge.png", "Judge win/tie/loss",
                            preference_chart(verdicts, "Pairwise preference (B vs A)")))
    else:
        blocks.append(Para(missing))
    table = [[r["a_cell"], r["b_cell"], r["judge"]] + [DASH if r[k] is None else str(r[k]) for k in COUNTS]
             + [fmt(r["rate"]), f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]" if r["ci_low"] is not None else DASH,
                flips_text(r)]
             for r in rows]
    blocks.append(Table(["A", "B", "judge", "B wins", "ties", "A wins", "unparseable", "n", "B equal or better",
                         "95% CI", "order flips"], table, [False] * 3 + [True] * 8))
    return blocks + lima_blocks(study, rows) + bias_blocks(rows, labels, missing)


def lima_setting(study: Study, rows: list[dict]) -> str:
    """Which pairs are LIMA's setting: a model of the study (B) against a reference system (A),
    whose single-order rate is the one to set beside LIMA's; a pair of two cells shares only
    LIMA's protocol."""
    def references(side: str) -> list[str]:
        return sorted({f"`{r[side]}`" for r in rows if (cell := study.cell(r[side])) and cell.is_reference})

    as_a, as_b = references("a_cell"), references("b_cell")
    cells_as_a = any(not ((cell := study.cell(r["a_cell"])) and cell.is_reference) for r in rows)
    if not as_a:
        text = "Only the protocol is LIMA's: here A is a cell of this study, not GPT-4, Bard or DaVinci003."
    else:
        text = (f"With a reference system as A ({', '.join(as_a)}), a pair is LIMA's setting: B, a model of this "
                f"study, against a reference system, as LIMA's answers were set against GPT-4's, Bard's and "
                f"DaVinci003's; its \"B equal or better, single order\" is the rate comparable to LIMA's 43/58/65% "
                f"(with this study's judge and prompts).")
        if cells_as_a:
            text += " Where A is a cell of this study, only the protocol is LIMA's."
    if as_b:
        text += (f" Where a reference system is B ({', '.join(as_b)}), the rate is the reference's against the cell, "
                 f"LIMA's setting reversed: name the reference first in `comparisons` ([reference, variant]) to read "
                 f"it LIMA's way.")
    return text


def lima_blocks(study: Study, rows: list[dict]) -> list:
    """The single-order table (LIMA's setting) beside both orders' rates, and what compares with LIMA."""
    table = [[r["a_cell"], r["b_cell"], r["judge"], _count(r, "single_wins"), _count(r, "single_ties"),
              _count(r, "single_losses"), _rate(r, "single_rate", "single_ci_low", "single_ci_high"),
              fmt(r["rate"]), _rate(r, "half_tie_rate", "half_tie_ci_low", "half_tie_ci_high"),
              _rate(r, "flip_rate", "flip_ci_low", "flip_ci_high")] for r in rows]
    blocks = [Heading(3, "Comparable to LIMA"), Para(f"{LIMA} {lima_setting(study, rows)}"),
              Table(["A", "B", "judge", "single order: B wins", "ties", "A wins",
                     "B equal or better, single order [95% CI]", "B equal or better, both orders",
                     "win + tie/2, both orders [95% CI]", "flip rate [95% CI]"], table, [False] * 3 + [True] * 7)]
    return blocks + _older(rows, "single_rate")


def bias_blocks(rows: list[dict], labels: list[str], missing: str | None) -> list:
    """The position- and length-bias table, a line per bias the intervals show, and the two charts."""
    table = [[r["a_cell"], r["b_cell"], r["judge"], _rate(r, "first_share", "first_ci_low", "first_ci_high"),
              _count(r, "first_n"), _slope(r), fmt_p(r.get("length_p")), fmt(r.get("length_raw_rate")),
              _rate(r, "lc_rate", "lc_ci_low", "lc_ci_high")] for r in rows]
    blocks = [Heading(3, "Judge biases"), Para(BIASES),
              Table(["A", "B", "judge", "first shown preferred [95% CI]", "of verdicts",
                     "length slope per doubling [95% CI]", "p", "win + tie/2", "length-controlled [95% CI]"],
                    table, [False] * 3 + [True] * 6)]
    found = [line for r in rows if (line := bias_warning(r))]
    if found:
        blocks += [Para("Biases the numbers show:"), Bullets(found)]
    notes = [f"`{r['b_cell']}` vs `{r['a_cell']}` ({r['judge']}): length fit: {r['length_note']}"
             for r in rows if r.get("length_note")]
    if notes:
        blocks += [Para("Length numbers missing or incomplete:"), Bullets(notes)]
    blocks += _older(rows, "first_share")
    measured = [(r, label) for r, label in zip(rows, labels) if r.get("first_n") is not None]
    if missing or not measured:
        return blocks
    bars = [PositionBar(label, r["first_share"], r.get("first_ci_low"), r.get("first_ci_high"), r["first_n"] or 0)
            for r, label in measured]
    blocks.append(Image("judge_position.png", "Judge position bias",
                        position_chart(bars, "Position bias: verdicts preferring the answer shown first")))
    panels = [LengthPanel(label, json.loads(r.get("length_bins") or "[]"), r.get("length_intercept"),
                          r.get("length_slope"), r.get("length_p"), r.get("lc_rate"), r.get("length_raw_rate"))
              for r, label in measured]
    if len(panels) > MAX_LENGTH_PANELS:
        blocks.append(Para(f"The length chart draws the first {MAX_LENGTH_PANELS} of {len(panels)} comparisons; "
                           "the table has all."))
    blocks.append(Image("judge_length.png", "Judge length bias",
                        length_chart(panels[:MAX_LENGTH_PANELS], "Length bias: B preferred vs B/A answer length")))
    return blocks


def bias_warning(row: dict) -> str:
    """A sentence when the position interval excludes 50% or the length slope's p is below 0.05."""
    parts = []
    low, high = row.get("first_ci_low"), row.get("first_ci_high")
    if low is not None and high is not None and not low <= 0.5 <= high:
        share, low, high, shown = ((row["first_share"], low, high, "first") if low > 0.5 else
                                   (1 - row["first_share"], 1 - high, 1 - low, "second"))
        parts.append(f"prefers the answer shown {shown} in {100 * share:.0f}% of its decisive verdicts "
                     f"[{100 * low:.0f}, {100 * high:.0f}]")
    p, slope = row.get("length_p"), row.get("length_slope")
    if p is not None and slope is not None and p < 0.05:
        parts.append(f"prefers the {'longer' if slope > 0 else 'shorter'} answer (slope {slope:+.2f} per doubling, "
                     f"p {fmt_p(p)}; win + tie/2 {fmt(row.get('length_raw_rate'))} raw, "
                     f"{fmt(row.get('lc_rate'))} at equal lengths)")
    pair = f"`{row['b_cell']}` vs `{row['a_cell']}` ({row['judge']})"
    return f"{pair}: the judge " + "; ".join(parts) + "." if parts else ""


def _older(rows: list[dict], column: str) -> list:
    old = sum(r.get(column) is None and bool(r["n"]) for r in rows)
    if not old:
        return []
    return [Para(f"{old} of {len(rows)} comparisons show {DASH} here: recorded by an older limacot, before these "
                 f"numbers were kept, or with nothing to compute them on.")]


def _count(row: dict, column: str) -> str:
    return DASH if row.get(column) is None else str(row[column])


def _rate(row: dict, value: str, low: str, high: str) -> Num | str:
    if row.get(value) is None:
        return DASH
    interval = f"[{fmt(row[low])}, {fmt(row[high])}]" if row.get(low) is not None else ""
    return Num(fmt(row[value]), interval)


def _slope(row: dict) -> Num | str:
    if row.get("length_slope") is None:
        return DASH
    low, high = row.get("length_slope_low"), row.get("length_slope_high")
    interval = f"[{fmt(low, 2, sign=True)}, {fmt(high, 2, sign=True)}]" if low is not None else ""
    return Num(fmt(row["length_slope"], 2, sign=True), interval)


def decided(row: dict) -> int:
    return (row["wins"] or 0) + (row["ties"] or 0) + (row["losses"] or 0)


def flips_text(row: dict) -> str:
    """'12 (24.0%)' of the decided prompts; 'not recorded' for a store written before flips were."""
    if row.get("flipped") is None:
        return "not recorded"
    share = f" ({100 * row['flipped'] / decided(row):.1f}%)" if decided(row) else ""
    return f"{row['flipped']}{share}"


def row_verdict(row: dict, label: str = "") -> Verdict:
    """The judge chart's bar (`limacot.judge.plot.Verdict`) of one judgments row."""
    return Verdict(label, row["n"] or 0, row["wins"] or 0, row["ties"] or 0, row["losses"] or 0,
                   row["unparseable"] or 0, row["rate"], row["ci_low"], row["ci_high"], row.get("flipped"))


def undecided_warning(row: dict) -> str:
    """A sentence when every decided verdict is a tie (flipped or not): then "B equal or better"
    is 100% whatever the answers were, and says nothing. '' otherwise."""
    note = row_verdict(row).undecided_note()
    return f"`{row['b_cell']}` vs `{row['a_cell']}` ({row['judge']}): {note}." if note else ""


def _pair_label(study: Study, row: dict, with_judge: bool, with_backbone: bool) -> str:
    label = f"{_short(study, row['b_cell'], with_backbone)} vs {_short(study, row['a_cell'], with_backbone)}"
    return f"{label} ({row['judge']})" if with_judge else label


def _short(study: Study, cell_id: str, with_backbone: bool) -> str:
    """'smol/base/-/s0' -> 'smol/base' (or 'base'); 'smol/lima/20/s0' -> 'lima/20/s0' without the
    backbone (from the cells table; a reference's id and an id it lacks as they are)."""
    cell = study.cell(cell_id)
    if cell is None or cell.is_reference:
        return cell_id
    parts = [cell.variant] + ([] if cell.is_base else [cell.size, f"s{cell.seed}"])
    return "/".join([cell.backbone] * with_backbone + parts)
