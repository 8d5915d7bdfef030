"""The LIMA pairwise protocol: pair answers by prompt, judge every pair in both orders, combine.

A is the reference run and each B a run under test (LIMA's own comparison: A = GPT-4,
B = LIMA, "B equal or better than A" in 43% of prompts). For prompt p, order "ab" shows A's
answer as Answer 1 and B's as Answer 2, order "ba" the reverse. Each order's verdict becomes
the preferred run ("a", "b", "tie", or None when unparseable), and the two combine into B's
outcome:

    ab      ba      outcome        why
    b       b       win            both orders agree B is better
    a       a       loss
    tie     tie     tie
    b       a       tie            the verdict flipped with the order: position bias, not preference
    b       tie     tie            only one order prefers B: not a consistent preference
    None    any     unparseable    a verdict we could not read is recorded, never guessed

Requests identical across B runs (or already in the cache) are sent once. A B run must answer
every prompt of A, or at least the share `min_coverage` allows (`check_coverage`); prompts only
one side answered are left out and counted. `summarize` counts a B run's outcomes into LIMA's
headline rate, "B equal or better than A", and its bootstrap interval.

A flip counts as a tie and a tie as "equal or better", so a position-biased judge pushes the
both-orders rate up (one that always answers "1" reads 100%). `preference_table` therefore adds,
from the same verdicts (no extra call):

    single order       per prompt ONE of its two verdicts, the order drawn by `single_order`
                       (seeded, per prompt id) - LIMA's setting, where each pair was shown once:
                       the rate comparable with LIMA's 43% / 58% / 65%
    win + tie/2        both orders, a tie (or flip) half a win
    flip rate          decided prompts whose two verdicts prefer different runs
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from limacot.errors import DataError, LimacotInputError
from limacot.judge.cache import JudgeCache, request_key
from limacot.judge.config import RESAMPLES
from limacot.judge.instructions import judge_messages
from limacot.judge.verdicts import parse_verdict
from limacot.io.journal import read_journal
from limacot.stats.bootstrap import bootstrap_interval, resampled_mean

ORDERS = ("ab", "ba")
OUTCOMES = ("win", "tie", "loss", "unparseable")


@dataclass(frozen=True)
class Run:
    """One generations file: `rows` by prompt id, in file order."""

    name: str
    path: Path
    rows: dict[str, dict]


@dataclass
class Pair:
    """One prompt answered by A and by one B run, and what the judge made of it."""

    b_run: str
    id: str
    prompt: str
    answer_a: str
    answer_b: str
    requests: dict[str, list[dict]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)


def load_run(path: str | Path, name: str | None = None) -> Run:
    """A generations run: a folder holding generations.jsonl, or the .jsonl file itself. A row
    without id, prompt and answer, or an id given twice, is an input error naming its line."""
    path = Path(path)
    file = path / "generations.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise LimacotInputError(f"{path}: no generations found (expected a folder written by `limacot generate`, "
                                f"holding generations.jsonl, or a .jsonl file of {{id, prompt, answer}} rows)")
    rows: dict[str, dict] = {}
    lines: dict[str, int] = {}
    for line, row in _numbered_rows(file):
        for key, kinds, expected in (("id", (str, int), "a text or integer prompt id"),
                                     ("prompt", str, "the prompt's text"), ("answer", str, "the answer's text")):
            if not isinstance(row.get(key), kinds) or isinstance(row.get(key), bool):
                raise DataError(str(file), f"line {line}", key, f"{expected} (each row: id, prompt, answer)",
                                "bad_row", got=_shown(row.get(key)))
        pid = str(row["id"])
        if pid in lines:
            raise DataError(str(file), f"line {line}", "id", f"each prompt id once; '{pid}' is also on line "
                            f"{lines[pid]} (which answer to judge would be a guess)", "duplicate_id", got=repr(pid))
        rows[pid], lines[pid] = row, line
    if not rows:
        raise LimacotInputError(f"{file}: no generations in the file")
    return Run(name or (path.name if path.is_dir() else path.stem), file, rows)


def load_named_runs(paths: Sequence[str | Path]) -> list[Run]:
    """The runs at `paths`, each named after its folder, made unique with -2, -3, ..."""
    runs, names = [], set()
    for path in paths:
        run = load_run(path)
        name, n = run.name, 1
        while name in names:
            n += 1
            name = f"{run.name}-{n}"
        names.add(name)
        runs.append(Run(name, run.path, run.rows))
    return runs


def _numbered_rows(file: Path) -> list[tuple[int, dict]]:
    """(line number, row) for each row `read_journal` reads from `file` (it skips blank lines,
    drops a torn last line and raises on a line damaged in the middle)."""
    rows = read_journal(file, repair=False)
    numbers = [number for number, line in enumerate(file.read_bytes().split(b"\n"), start=1) if _is_row(line)]
    return list(zip(numbers, rows))


def _is_row(line: bytes) -> bool:
    try:
        return bool(line.strip()) and bool(json.loads(line.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def _shown(value) -> str:
    text = "nothing" if value is None else f"{type(value).__name__} {value!r}"
    return text[:80] + ("..." if len(text) > 80 else "")


def coverage(a: Run, b: Run) -> dict:
    """How much of A a B run answers: {"a_prompts": 8, "b_prompts": 5, "judged": 4, "missing": 4,
    "not_in_a": 1} (judged: prompts both answered; missing: A's prompts B lacks; not_in_a: B's
    prompts A lacks, left out)."""
    judged = sum(pid in a.rows for pid in b.rows)
    return {"a_prompts": len(a.rows), "b_prompts": len(b.rows), "judged": judged,
            "missing": len(a.rows) - judged, "not_in_a": len(b.rows) - judged}


def check_coverage(a: Run, bs: list[Run], min_coverage: float) -> dict[str, dict]:
    """Each B run's `coverage`, by name. Raises LimacotInputError when a B run shares no prompt
    with A, or answers fewer than `min_coverage` (a fraction) of A's prompts: a rate over part
    of the prompts is not comparable with one over all of them, so judging on the overlap is
    something to ask for (--min-coverage), not a silent default."""
    found, short = {}, []
    for b in bs:
        found[b.name] = cover = coverage(a, b)
        if not cover["judged"]:
            raise LimacotInputError(f"{b.path} and {a.path} share no prompt id: were they generated from the "
                                    f"same prompts file?")
        if cover["judged"] < min_coverage * cover["a_prompts"]:
            lacking = [pid for pid in a.rows if pid not in b.rows]
            ids = ", ".join(lacking[:5]) + (f", ... ({len(lacking) - 5} more)" if len(lacking) > 5 else "")
            short.append(f"{b.path} answers {cover['judged']} of the {cover['a_prompts']} prompts of A "
                         f"({cover['judged'] / cover['a_prompts']:.1%}; missing ids: {ids})")
    if short:
        wanted = "every prompt of A" if min_coverage >= 1 else f"at least {min_coverage:.1%} of A's prompts"
        raise LimacotInputError(f"{'; '.join(short)}. Expected {wanted} (A = {a.path}). Generate the missing "
                                f"answers (`limacot generate --resume`), or judge the shared prompts only with "
                                f"--min-coverage 0 (the summary then reports the coverage of each B run)")
    return found


def pair_runs(a: Run, bs: list[Run], lang: str, identity: dict) -> list[Pair]:
    """Every prompt both A and a B answered, with its two requests and their cache keys (see
    `check_coverage` for the prompts left out). Raises LimacotInputError when a prompt's text differs."""
    pairs = []
    for b in bs:
        for pid in (pid for pid in b.rows if pid in a.rows):
            ra, rb = a.rows[pid], b.rows[pid]
            if ra["prompt"].strip() != rb["prompt"].strip():
                raise LimacotInputError(f"prompt '{pid}' has different text in {a.path} and {b.path}")
            pair = Pair(b.name, pid, ra["prompt"], ra["answer"], rb["answer"])
            pair.requests = {"ab": judge_messages(pair.prompt, pair.answer_a, pair.answer_b, lang),
                             "ba": judge_messages(pair.prompt, pair.answer_b, pair.answer_a, lang)}
            pair.keys = {order: request_key(identity, msgs) for order, msgs in pair.requests.items()}
            pairs.append(pair)
    return pairs


def pending_requests(pairs: list[Pair], cache: JudgeCache) -> dict[str, list[dict]]:
    """The distinct requests (by key) that the cache cannot answer, in pair order."""
    todo: dict[str, list[dict]] = {}
    for pair in pairs:
        for order in ORDERS:
            key = pair.keys[order]
            if key not in cache and key not in todo:
                todo[key] = pair.requests[order]
    return todo


def run_judge(judge, pairs: list[Pair], cache: JudgeCache, concurrency: int,
              progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Ask `judge` every request of `pairs` the cache lacks (see `ask_missing`)."""
    return ask_missing(judge, pending_requests(pairs, cache), cache, concurrency, progress)


def ask_missing(judge, todo: dict[str, list[dict]], cache: JudgeCache, concurrency: int,
                progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Ask `judge` every request of `todo` (cache key -> messages), caching each reply as it
    arrives; returns the number of calls made. A failure propagates after the finished replies
    are cached."""
    keys = list(todo)
    done = 0

    def on_reply(index: int, reply) -> None:
        nonlocal done
        cache.put(keys[index], reply.text, reply.usage)
        done += 1
        if progress:
            progress(done, len(keys))

    if keys:
        judge.complete_all([todo[k] for k in keys], on_reply, concurrency)
    return done


def preferred(order: str, choice: str | None) -> str | None:
    """Which run a positional verdict prefers: ("ab", "1") -> "a", ("ba", "1") -> "b"."""
    if choice is None or choice == "tie":
        return choice
    first, second = order[0], order[1]
    return first if choice == "1" else second


def combine(ab: str | None, ba: str | None) -> str:
    """B's outcome from the run preferred in each order (see the module docstring's table)."""
    if ab is None or ba is None:
        return "unparseable"
    if ab == ba:
        return {"b": "win", "a": "loss", "tie": "tie"}[ab]
    return "tie"


def judged_record(pair: Pair, cache: JudgeCache, seed: int = 0) -> dict:
    """The per-prompt record: both raw judge texts, both parsed verdicts, B's outcome, and the
    order the single-order table counts for this prompt (`single_order(seed, id)`)."""
    orders = {}
    for order in ORDERS:
        entry = cache.get(pair.keys[order]) or {}
        verdict = parse_verdict(entry.get("text", ""))
        orders[order] = {"key": pair.keys[order], "raw": entry.get("text"), "verdict": verdict.choice,
                         "parsed_by": verdict.how, "prefers": preferred(order, verdict.choice),
                         "usage": entry.get("usage")}
    outcome = combine(orders["ab"]["prefers"], orders["ba"]["prefers"])
    flipped = {orders["ab"]["prefers"], orders["ba"]["prefers"]} == {"a", "b"}
    return {"b_run": pair.b_run, "id": pair.id, "prompt": pair.prompt, "answer_a": pair.answer_a,
            "answer_b": pair.answer_b, "outcome": outcome, "flipped": flipped,
            "single_order": single_order(seed, pair.id), "orders": orders}


def summarize(outcomes: list[str], *, resamples: int = RESAMPLES, seed: int = 0, flips: int = 0) -> dict:
    """Counts and LIMA's headline rate of one B run's outcomes, with its seeded 95% interval.

        ["win", "tie", "loss", "win", "unparseable"]
        -> {"n": 5, "win": 2, "tie": 1, "loss": 1, "unparseable": 1, "decided": 4,
            "b_equal_or_better": 0.75, "ci95": [lo, hi], ...}

    "B equal or better than A" = (win + tie) / decided, where decided leaves out the prompts whose
    verdict could not be read (their count is reported beside it). The interval is the percentile
    bootstrap over the decided prompts (`limacot.stats.bootstrap`), rounded to 4 decimals; None
    when no prompt was decided.
    """
    counts = Counter(outcomes)
    decided = [o for o in outcomes if o != "unparseable"]
    rate = (counts["win"] + counts["tie"]) / len(decided) if decided else None
    ci = None
    if decided and resamples >= 1:
        interval = bootstrap_interval(resampled_mean([o in ("win", "tie") for o in decided]), len(decided),
                                      resamples=resamples, seed=seed)
        ci = [round(interval.low, 4), round(interval.high, 4)]
    return {"n": len(outcomes), "win": counts["win"], "tie": counts["tie"], "loss": counts["loss"],
            "unparseable": counts["unparseable"], "decided": len(decided), "flipped": flips,
            "b_equal_or_better": rate, "b_better": counts["win"] / len(decided) if decided else None,
            "ci95": ci}


def single_order(seed: int, prompt_id: str) -> str:
    """The order ("ab" or "ba") whose verdict counts for `prompt_id` in the single-order table: a
    hash of (seed, prompt id), so each prompt's draw is fixed by the seed alone (adding prompts
    or B runs changes no other prompt's draw, and every B run uses the same order per prompt)."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_id}".encode("utf-8")).digest()
    return ORDERS[digest[0] & 1]


def single_outcome(record: dict) -> str:
    """B's outcome from the verdict of the record's `single_order` alone."""
    prefers = record["orders"][record["single_order"]]["prefers"]
    return {"b": "win", "a": "loss", "tie": "tie", None: "unparseable"}[prefers]


def preference_table(records: list[dict], *, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """The LIMA-comparable numbers of one B run's records (each with its `single_order`):

        {"single_order": {"n", "win", "tie", "loss", "unparseable", "decided", "b_equal_or_better",
                          "b_better", "ci95", "shown_first": {"a": prompts shown as ab, "b": as ba}},
         "b_win_half_tie": (win + tie/2) / decided, "b_win_half_tie_ci95": [lo, hi],
         "flip_rate": flipped / decided, "flip_rate_ci95": [lo, hi]}

    Intervals: percentile bootstrap over prompts, seeded with `seed`; None when nothing was decided.
    """
    single = summarize([single_outcome(r) for r in records], resamples=resamples, seed=seed)
    del single["flipped"]
    single["shown_first"] = {"a": sum(r["single_order"] == "ab" for r in records),
                             "b": sum(r["single_order"] == "ba" for r in records)}
    decided = [r for r in records if r["outcome"] != "unparseable"]
    half = _mean_ci([{"win": 1.0, "tie": 0.5, "loss": 0.0}[r["outcome"]] for r in decided], resamples, seed)
    flips = _mean_ci([float(r["flipped"]) for r in decided], resamples, seed)
    return {"single_order": single, "b_win_half_tie": half[0], "b_win_half_tie_ci95": half[1],
            "flip_rate": flips[0], "flip_rate_ci95": flips[1]}


def _mean_ci(values: list[float], resamples: int, seed: int) -> tuple[float | None, list[float] | None]:
    """The mean of `values` and its bootstrap interval (4 decimals); (None, None) for no values."""
    if not values:
        return None, None
    interval = bootstrap_interval(resampled_mean(values), len(values), resamples=resamples, seed=seed)
    return sum(values) / len(values), [round(interval.low, 4), round(interval.high, 4)]
