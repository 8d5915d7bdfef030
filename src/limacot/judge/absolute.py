"""`limacot judge grade` as one library call: each answer graded 1-6 for helpfulness, per run.

LIMA's data-quantity ablation graded every answer on a 1-6 helpfulness scale with a judge model.
Here the judge sees one prompt, one answer and our 6-level rubric (`instructions.grade_messages`,
English or Korean) and ends its reply with "Rating: N"; `grades.parse_grade` reads it. Each answer
is graded `samples` times (sample k is its own request in the cache: the judge identity, the
messages and k, so a rerun is answered sample by sample and adding samples asks only the new
ones); a prompt's grade is the mean of its readable samples, a run's grade the mean over its
prompts with a 95% percentile-bootstrap interval over prompts (`limacot.stats.bootstrap`).
Unreadable replies are recorded with their text, counted, and left out: never guessed.

OUT/ after `grade_runs`:

    summary.json        per run: mean grade, ci95, prompts (n) and graded prompts, the distribution
                        of sample grades 1..6, unparseable replies and prompts; the judge, calls, tokens
    grades.jsonl        one line per (run, prompt, sample): the judge's raw reply, its grade or null,
                        how it was read
    table.md            one row per run
    judge-cache.jsonl   every judge reply, appended as it arrives (unless another cache is given)

Results are written atomically once every call has an answer; a failed run leaves the previous
results and the cache of replies already received.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Optional, Sequence

from pydantic import Field

from limacot.errors import LimacotInputError
from limacot.io.atomic import atomic_write_json, atomic_write_jsonl, atomic_write_text
from limacot.io.tables import markdown_table
from limacot.io.yaml_config import model_part
from limacot.judge.cache import JudgeCache, request_key
from limacot.judge.clients import parse_judge_spec
from limacot.judge.config import HttpOptions, JudgeConfig
from limacot.judge.grades import SCALE, parse_grade
from limacot.judge.instructions import grade_messages
from limacot.judge.judges import make_judge
from limacot.judge.protocol import Run, ask_missing, load_named_runs
from limacot.models.compute import ComputeOptions
from limacot.stats.bootstrap import bootstrap_interval, resampled_mean

CACHE = "judge-cache.jsonl"
GRADES = tuple(range(SCALE[0], SCALE[1] + 1))


class _Grading(ComputeOptions):
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("judge", "cache")

    samples: int = Field(1, ge=1, description="judge replies per answer, averaged per prompt")
    sample_temperature: float = Field(0.7, gt=0, le=2, description="an API judge's temperature when samples > 1 "
                                      "(one sample is asked at temperature 0)")

    def http(self) -> HttpOptions:
        """How the judge is asked: in free text, since the reply ends with "Rating: N" (never JSON
        mode; a local judge decodes greedily up to max_tokens); several samples at
        `sample_temperature`, one at temperature 0."""
        temperature = self.sample_temperature if self.samples > 1 else 0.0
        return HttpOptions(json_mode="off", temperature=temperature,
                           **{key: getattr(self, key) for key in HttpOptions.model_fields
                              if key not in ("json_mode", "temperature")})


GradeConfig = model_part(
    "GradeConfig", JudgeConfig, ("judge", "lang", "concurrency", "resamples", "seed", "cache", "api_key_env",
                                 "timeout", "max_retries", "backoff", "max_backoff", "max_total_wait", "max_tokens"),
    base=_Grading, defaults={"max_tokens": 512},
    doc="Everything `limacot judge grade` takes besides the runs and OUT (`limacot judge`'s settings, less "
        "json_mode and min_coverage, plus samples).")


@dataclass(frozen=True)
class GradeRequest:
    """Sample `sample` of the judge's grade of one run's answer to one prompt."""

    run: str
    id: str
    sample: int
    messages: list[dict]
    key: str


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """The generations runs to grade, each named after its folder (made unique with -2, -3, ...)."""
    if not paths:
        raise LimacotInputError("give at least one generations folder (or .jsonl file) to grade")
    return load_named_runs(paths)


def grade_requests(runs: Sequence[Run], samples: int, lang: str, identity: dict) -> list[GradeRequest]:
    """Every (run, prompt, sample) request with its cache key; the key holds the sample index, so
    the k-th sample of an answer is the same request in every run that gave that answer."""
    requests = []
    for run in runs:
        for pid, row in run.rows.items():
            messages = grade_messages(row["prompt"], row["answer"], lang)
            requests += [GradeRequest(run.name, pid, k, messages, request_key({**identity, "sample": k}, messages))
                         for k in range(samples)]
    return requests


def ask_judge(judge, requests: Sequence[GradeRequest], cache: JudgeCache, concurrency: int,
              progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Ask `judge` every distinct request the cache lacks (`limacot.judge.protocol.ask_missing`)."""
    return ask_missing(judge, {r.key: r.messages for r in requests if r.key not in cache}, cache, concurrency,
                       progress)


def graded_record(request: GradeRequest, cache: JudgeCache) -> dict:
    """One line of grades.jsonl: the raw reply, its grade (or None) and how it was read."""
    entry = cache.get(request.key) or {}
    grade = parse_grade(entry.get("text", ""))
    return {"run": request.run, "id": request.id, "sample": request.sample, "grade": grade.value,
            "parsed_by": grade.how, "raw": entry.get("text"), "key": request.key, "usage": entry.get("usage")}


def prompt_grades(records: Sequence[dict]) -> dict[str, dict[str, float | None]]:
    """{run: {prompt id: mean of its readable sample grades, or None when none was readable}}:
    [{"run": "G", "id": "p1", "grade": 5}, {"run": "G", "id": "p1", "grade": 3}, {... "p2", None}]
    -> {"G": {"p1": 4.0, "p2": None}} (the per-prompt values a paired comparison of runs needs)."""
    grades: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        grades[record["run"]][record["id"]].append(record["grade"])
    return {run: {pid: _mean([g for g in values if g is not None]) for pid, values in by_id.items()}
            for run, by_id in grades.items()}


def summarize_grades(records: Sequence[dict], *, resamples: int, seed: int) -> dict:
    """One run's grade from its records (all samples of all its prompts):

        p1: [5, 3] -> 4.0;  p2: [6, unreadable] -> 6.0;  p3: [unreadable, unreadable] -> left out
        -> {"n": 3, "graded": 2, "mean": 5.0, "ci95": [4.0, 6.0], "samples": 6,
            "distribution": {"1": 0, ..., "3": 1, "5": 1, "6": 1}, "unparseable": 3, "unparseable_prompts": 1}

    The mean is over prompts (each prompt weighs the same whatever its readable samples), the
    interval the percentile bootstrap over the graded prompts, rounded to 4 decimals; both None
    when no prompt has a readable grade. `distribution` counts readable sample grades."""
    means = [m for by_id in prompt_grades(records).values() for m in by_id.values()]
    graded = [m for m in means if m is not None]
    mean = _mean(graded)
    ci = None
    if graded and resamples >= 1:
        interval = bootstrap_interval(resampled_mean(graded), len(graded), resamples=resamples, seed=seed)
        ci = [round(interval.low, 4), round(interval.high, 4)]
    counts = Counter(r["grade"] for r in records if r["grade"] is not None)
    return {"n": len(means), "graded": len(graded), "mean": None if mean is None else round(mean, 4), "ci95": ci,
            "samples": len(records), "distribution": {str(g): counts[g] for g in GRADES},
            "unparseable": sum(r["grade"] is None for r in records),
            "unparseable_prompts": len(means) - len(graded)}


def grade_runs(paths: Sequence[str | Path], out: str | Path, config: GradeConfig,
               progress: Optional[Callable[[int, int], None]] = None, judge=None) -> dict:
    """Grade every answer of every run `config.samples` times, then write OUT (see the module
    docstring). Returns the summary written to OUT/summary.json.

    `judge` replaces the one `config.judge` names: any object with `identity() -> dict` and
    `complete_all(requests, on_reply, concurrency)` (see limacot.judge.clients)."""
    if judge is None and config.samples > 1 and parse_judge_spec(config.judge)[0] != "openai":
        raise LimacotInputError(f"samples {config.samples} with the local judge {config.judge}: a local judge decodes "
                                "greedily, so every sample would repeat one grade; use samples 1 or an API judge")
    out = Path(out)
    runs = load_runs(paths)
    judge = judge or make_judge(config.judge, config.http(), config.compute())
    requests = grade_requests(runs, config.samples, config.lang, judge.identity())
    cache = JudgeCache(Path(config.cache) if config.cache else out / CACHE)
    try:
        made = ask_judge(judge, requests, cache, config.concurrency, progress)
    finally:
        cache.close()
    records = [graded_record(request, cache) for request in requests]
    distinct = len({r.key for r in requests})
    summary = {"judge": config.judge, "judge_identity": judge.identity(), "lang": config.lang,
               "samples": config.samples, "scale": list(SCALE),
               "runs": [{"run": run.name, "path": str(run.path),
                         **summarize_grades([r for r in records if r["run"] == run.name],
                                            resamples=config.resamples, seed=config.seed)} for run in runs],
               "bootstrap": {"resamples": config.resamples, "seed": config.seed, "level": 0.95},
               "calls": {"requests": distinct, "made": made, "from_cache": distinct - made},
               "tokens": _tokens(records)}
    atomic_write_jsonl(out / "grades.jsonl", records)
    atomic_write_text(out / "table.md", grades_table(summary))
    atomic_write_json(out / "summary.json", summary)
    return summary


def grades_table(summary: dict) -> str:
    """The markdown table of a grading summary, one row per run:

        | run | prompts | graded | mean grade | 95% CI | 1 | 2 | 3 | 4 | 5 | 6 | unparseable |
        |---|---|---|---|---|---|---|---|---|---|---|---|
        | G | 50 | 50 | 4.21 | [3.95, 4.46] | 1 | 4 | 9 | 12 | 16 | 8 | 0 |
    """
    rows = []
    for run in summary["runs"]:
        mean = "n/a" if run["mean"] is None else f"{run['mean']:.2f}"
        ci = "n/a" if run["ci95"] is None else f"[{run['ci95'][0]:.2f}, {run['ci95'][1]:.2f}]"
        rows.append([run["run"], run["n"], run["graded"], mean, ci, *run["distribution"].values(),
                     f"{run['unparseable']} of {run['samples']}"])
    table = markdown_table(["run", "prompts", "graded", "mean grade", "95% CI", *map(str, GRADES), "unparseable"],
                           rows)
    samples = summary["samples"]
    note = (f"\njudge = {summary['judge']}; each answer graded {samples} time{'s' if samples > 1 else ''} on a "
            f"{SCALE[0]}-{SCALE[1]} helpfulness scale and averaged per prompt; the mean and its 95% bootstrap CI are "
            f"over prompts; columns 1-{SCALE[1]} count sample grades; unparseable replies are left out (a prompt "
            f"with none readable is not graded).\n")
    return "\n".join(table) + "\n" + note


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _tokens(records: Sequence[dict]) -> dict:
    """Prompt and completion tokens over the distinct requests, as the judge reported them."""
    usages = {r["key"]: r.get("usage") or {} for r in records}
    return {name: sum(_count(u.get(name)) for u in usages.values()) for name in ("prompt_tokens", "completion_tokens")}


def _count(value) -> int:
    """A token count as a judge reported it; anything that is not a number counts 0."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return int(value) if number and value >= 0 else 0
