"""`limacot judge` as one library call: judge A against each B run and write the results.

OUT/ after `judge_pairwise`:

    summary.json        per B run (`run_summary`): win / tie / loss / unparseable counts, "B equal or
                        better than A" and its 95% bootstrap CI, order flips, coverage of A's prompts;
                        the single-order table (LIMA's setting), win + tie/2, the flip rate, position
                        and length bias; the judge, calls made and cached, tokens
    records.jsonl       one line per (B run, prompt): both answers, both raw judge texts, both verdicts,
                        the order the single-order table counts
    table.md            the tables, one row per B run: both orders (and a line per B run missing
                        prompts of A), LIMA-comparable preference, the judge's biases
    preference.png      LIMA Figure-1-style stacked bars, one per B run (`limacot.judge.plot`)
    position-bias.png   the share of verdicts preferring the first-shown answer, per B run
    length-bias.png     B's outcome against the length ratio and the logistic fit, per B run
    judge-cache.jsonl   every judge reply, appended as it arrives (unless another --cache is given)

The result files are written atomically once every call has an answer, so a failed or killed
run leaves the previous results intact and the cache holding every reply already received;
rerunning answers from the cache and calls the judge only for what is missing.
`dry_run` counts the calls and tokens the same command would spend, without calling anything.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Sequence

from limacot.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_jsonl, atomic_write_text
from limacot.io.journal import read_journal
from limacot.io.tables import markdown_table
from limacot.models.loading import load_tokenizer
from limacot.errors import LimacotInputError
from limacot.judge.cache import JudgeCache
from limacot.judge.clients import parse_judge_spec
from limacot.judge.config import JudgeConfig
from limacot.judge.judges import make_judge
from limacot.judge.bias import length_bias, position_bias
from limacot.judge.plot import (length_chart, position_chart, preference_chart, run_length_panels,
                                run_position_bars, run_verdicts)
from limacot.judge.protocol import (Run, check_coverage, judged_record, load_named_runs, load_run, pair_runs,
                                    pending_requests, preference_table, run_judge, summarize)

CACHE = "judge-cache.jsonl"


def load_runs(a_path: str | Path, b_paths: Sequence[str | Path]) -> tuple[Run, list[Run]]:
    """A and the B runs, each B named after its folder (made unique with -2, -3, ...)."""
    if not b_paths:
        raise LimacotInputError("give at least one --b run to compare with --a")
    return load_run(a_path), load_named_runs(b_paths)


def judge_pairwise(a_path: str | Path, b_paths: Sequence[str | Path], out: str | Path, config: JudgeConfig,
                   progress: Optional[Callable[[int, int], None]] = None, judge=None) -> dict:
    """Judge every (A, B) pair in both orders, then write OUT (see the module docstring).
    Returns the summary written to OUT/summary.json.

    `judge` replaces the one `config.judge` names: any object with `identity() -> dict` and
    `complete_all(requests, on_reply, concurrency)` (see limacot.judge.clients).
    """
    out = Path(out)
    a, bs = load_runs(a_path, b_paths)
    covered = check_coverage(a, bs, config.min_coverage)
    judge = judge or make_judge(config.judge, config.http(), config.compute())
    pairs = pair_runs(a, bs, config.lang, judge.identity())
    cache = JudgeCache(Path(config.cache) if config.cache else out / CACHE)
    try:
        requests = len({key for pair in pairs for key in pair.keys.values()})
        made = run_judge(judge, pairs, cache, config.concurrency, progress)
    finally:
        cache.close()
    records = [judged_record(pair, cache, config.seed) for pair in pairs]
    runs = []
    for b in bs:
        stats = run_summary([r for r in records if r["b_run"] == b.name], resamples=config.resamples,
                            seed=config.seed)
        runs.append({"b_run": b.name, "path": str(b.path), "missing_in_a": covered[b.name]["not_in_a"],
                     "coverage": covered[b.name], **stats})
    summary = {"judge": config.judge, "judge_identity": judge.identity(), "lang": config.lang,
               "a": {"name": a.name, "path": str(a.path)}, "runs": runs, "min_coverage": config.min_coverage,
               "bootstrap": {"resamples": config.resamples, "seed": config.seed, "level": 0.95},
               "calls": {"requests": requests, "made": made, "from_cache": requests - made},
               "tokens": _tokens(records)}
    _write_outputs(out, summary, records)
    return summary


def run_summary(records: list[dict], *, resamples: int, seed: int) -> dict:
    """One B run's numbers from its records: `summarize` (both orders), `preference_table`
    (single order, win + tie/2, flip rate), and the judge's `position_bias` and `length_bias`."""
    stats = summarize([r["outcome"] for r in records], resamples=resamples, seed=seed,
                      flips=sum(r["flipped"] for r in records))
    return {**stats, **preference_table(records, resamples=resamples, seed=seed),
            "position_bias": position_bias(records, resamples=resamples, seed=seed),
            "length_bias": length_bias(records, resamples=resamples, seed=seed)}


def _tokens(records: list[dict]) -> dict:
    """Prompt and completion tokens over the distinct judge requests, as the judge reported them."""
    usages = {order["key"]: order.get("usage") or {} for r in records for order in r["orders"].values()}
    return {name: sum(_count(u.get(name)) for u in usages.values()) for name in ("prompt_tokens", "completion_tokens")}


def _count(value) -> int:
    """A token count as a judge reported it; anything that is not a number counts 0."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return int(value) if number and value >= 0 else 0


def _write_outputs(out: Path, summary: dict, records: list[dict]) -> None:
    atomic_write_jsonl(out / "records.jsonl", records)
    atomic_write_text(out / "table.md", results_table(summary))
    chart = preference_chart(run_verdicts(summary["runs"]), f"Pairwise preference against {summary['a']['name']}")
    atomic_write_bytes(out / "preference.png", chart)
    atomic_write_bytes(out / "position-bias.png",
                       position_chart(run_position_bars(summary["runs"]), "Position bias of the judge"))
    atomic_write_bytes(out / "length-bias.png", length_chart(run_length_panels(summary["runs"]),
                                                             "Length bias of the judge (B vs A)"))
    atomic_write_json(out / "summary.json", summary)


def results_table(summary: dict) -> str:
    """The markdown tables of a summary, one row per B run. First both orders as judged; `of A`
    is how many of A's prompts the run answered (and was judged on), and a line under the table
    names each run that lacks some:

        | B run | prompts | B wins | ties | A wins | unparseable | B equal or better | 95% CI | order flips | of A |
        |---|---|---|---|---|---|---|---|---|---|
        | G2 | 50 | 11 | 30 | 9 | 0 | 82.0% | [72.0%, 92.0%] | 17 | 50/50 |

    then the LIMA-comparable preference (`preference_table`) and the judge's biases (`limacot.judge.bias`).
    """
    rows, gaps = [], []
    for run in summary["runs"]:
        cover = run.get("coverage") or {}
        share = f"{cover['judged']}/{cover['a_prompts']}" if cover else "n/a"
        rows.append([run["b_run"], run["n"], run["win"], run["tie"], run["loss"], run["unparseable"],
                     _pct(run["b_equal_or_better"]), _pct_ci(run["ci95"]), run["flipped"], share])
        if cover.get("missing") or cover.get("not_in_a"):
            gaps.append(f"{run['b_run']}: judged on {cover['judged']} of A's {cover['a_prompts']} prompts "
                        f"({cover['missing']} missing in {run['b_run']}, {cover['not_in_a']} of its own not in A)")
    note = (f"\nA = {summary['a']['name']}; judge = {summary['judge']}; every pair judged in both orders "
            f"(a verdict that flips with the order counts as a tie); unparseable verdicts are left out of the rate.\n")
    if gaps:
        note += "Coverage: " + "; ".join(gaps) + ". Their rates are over the shared prompts only.\n"
    for verdict in run_verdicts(summary["runs"]):
        if verdict.undecided:
            note += f"{verdict.label}: {verdict.undecided_note()}.\n"
    table = markdown_table(["B run", "prompts", "B wins", "ties", "A wins", "unparseable", "B equal or better",
                            "95% CI", "order flips", "of A"], rows)
    return "\n".join(table) + "\n" + note + _lima_table(summary["runs"]) + _bias_table(summary["runs"])


def _lima_table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
        single = run.get("single_order") or {}
        rows.append([run["b_run"], single.get("win", "n/a"), single.get("tie", "n/a"), single.get("loss", "n/a"),
                     _pct(single.get("b_equal_or_better")), _pct_ci(single.get("ci95")),
                     _pct(run["b_equal_or_better"]), _pct(run.get("b_win_half_tie")),
                     _pct_ci(run.get("b_win_half_tie_ci95")), _pct(run.get("flip_rate")),
                     _pct_ci(run.get("flip_rate_ci95"))])
    table = markdown_table(["B run", "single order: B wins", "ties", "A wins", "B equal or better (single order)",
                            "95% CI", "B equal or better (both orders)", "win + tie/2 (both orders)", "95% CI",
                            "flip rate", "95% CI"], rows)
    return ("\nLIMA-comparable preference: LIMA showed each pair once, in a random order, so its 43% / 58% / 65% "
            "compare with the single-order rate (each prompt's verdict in one order, drawn per prompt with the "
            "seed). The both-orders rate counts a verdict that flips with the order as a tie, so a judge swayed "
            "by position pushes it up (one that always prefers the first answer reads 100% there, about 50% in "
            "a single order).\n\n" + "\n".join(table) + "\n")


def _bias_table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
        position, length = run.get("position_bias") or {}, run.get("length_bias") or {}
        slope = "n/a" if length.get("slope") is None else f"{length['slope']:+.3f}"
        slope_ci = "n/a" if not length.get("slope_ci95") else "[{:+.3f}, {:+.3f}]".format(*length["slope_ci95"])
        p_value = "n/a" if length.get("p_value") is None else f"{length['p_value']:.2g}"
        rows.append([run["b_run"], _pct(position.get("share_first")), _pct_ci(position.get("ci95")),
                     position.get("decisive", "n/a"), slope, slope_ci, p_value, _pct(length.get("raw_rate")),
                     _pct(length.get("lc_rate")), _pct_ci(length.get("lc_ci95"))])
    table = markdown_table(["B run", "first shown preferred", "95% CI", "of verdicts", "length slope",
                            "95% CI", "p", "win + tie/2", "length-controlled", "95% CI"], rows)
    return ("\nJudge biases: first shown preferred = share of the verdicts preferring one answer (both orders) "
            "that prefer the answer shown first (50% = no position bias). Length slope = change in the "
            "log-odds of B preferred (win 1, tie 1/2) per doubling of B's length in characters relative to "
            "A's (logistic fit, Firth-penalized; p: likelihood-ratio test; CI: bootstrap over prompts); "
            "length-controlled = the fit at equal lengths, beside the raw win + tie/2.\n\n"
            + "\n".join(table) + "\n" + "".join(f"Length fit, {run['b_run']}: {run['length_bias']['note']}.\n"
                                                 for run in runs if (run.get("length_bias") or {}).get("note")))


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _pct_ci(ci) -> str:
    return "n/a" if not ci else f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]"


def dry_run(a_path: str | Path, b_paths: Sequence[str | Path], config: JudgeConfig, out: str | Path | None = None,
            token_counter: str | None = None) -> dict:
    """The calls and tokens `judge_pairwise` would spend, counted without calling the judge.

    Input tokens are counted with `token_counter` (a model or tokenizer spec; default: the local
    judge's own tokenizer, or the embedded one for API judges, which then is an estimate), plus
    4 tokens per message and 3 per request for the chat format. Output tokens are an upper
    bound: calls x max_tokens (0 for a local judge choosing by likelihood, which decodes nothing).
    Requests already in the cache are not counted as calls to make.
    """
    a, bs = load_runs(a_path, b_paths)
    check_coverage(a, bs, config.min_coverage)
    kind, model, _ = parse_judge_spec(config.judge)
    identity = make_judge(config.judge, config.http(), config.compute()).identity()
    pairs = pair_runs(a, bs, config.lang, identity)
    cache_path = Path(config.cache) if config.cache else (Path(out) / CACHE if out else None)
    cached = {row.get("key") for row in read_journal(cache_path, repair=False)} if cache_path else set()
    counter = token_counter or (model if kind == "local" else "embedded")
    tokenizer = load_tokenizer(counter)
    every = {key: pair.requests[order] for pair in pairs for order, key in pair.keys.items()}
    todo = pending_requests(pairs, _KeySet(cached))
    sizes = {key: 3 + sum(4 + len(tokenizer(m["content"], add_special_tokens=False)["input_ids"]) for m in msgs)
             for key, msgs in every.items()}
    to_make = sum(sizes[k] for k in todo)
    return {"judge": config.judge, "pairs": len(pairs), "requests": len(every), "cached": len(every) - len(todo),
            "calls_to_make": len(todo), "input_tokens": to_make, "input_tokens_all_requests": sum(sizes.values()),
            "mean_input_tokens_per_call": round(sum(sizes.values()) / len(every), 1),
            "max_output_tokens": 0 if identity.get("mode") == "choice" else len(todo) * config.max_tokens,
            "token_counter": counter,
            "token_counter_is_estimate": kind == "openai" and token_counter is None}


class _KeySet:
    """The cache interface `pending_requests` needs, over a set of keys."""

    def __init__(self, keys: set):
        self.keys = keys

    def __contains__(self, key: str) -> bool:
        return key in self.keys
