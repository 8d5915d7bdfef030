"""Per-doc sample records (`samples/<task>.jsonl`) and the run summary (`summary.md`).

The lm-eval logged samples of one doc become one flat record:

    multiple choice  {"doc_id": 0, "id": "3394", "doc_hash": "9f..", "prompt_hash": "c1..",
                      "choices": ["부정", "긍정"], "loglikelihoods": [-3.2, -2.9], "pred": 1,
                      "pred_norm": 1, "gold": 1, "correct": true, "acc": 1.0, "acc_norm": ..}
    gsm8k, ko_gsm8k  {"doc_id": 0, ..., "generation": "... 따라서 정답은 18입니다.", "prediction": "18",
                      "prediction_flexible": "18", "gold": "18", "correct": true,
                      "exact_match_strict": 1.0, "exact_match_flexible": 1.0}
    other generation {"doc_id": 0, ..., "generation": "...", "target": "18",
                      "filtered": {"strict-match": "18", "flexible-extract": "18"},
                      "exact_match,strict-match": 1.0, "exact_match,flexible-extract": 1.0, "correct": true}
    one continuation {"doc_id": 0, ..., "target": "24 ÷ 4 = 6이다.\n따라서 정답은 6입니다.",
    (kocot_heldout)   "loglikelihood": -41.3, "is_greedy": false, "ll_per_char": -1.72}

`pred` is the argmax of the loglikelihoods and `pred_norm` of loglikelihood / choice length in
characters, as lm-eval computes acc and acc_norm; `prediction` is the strict extraction and
`prediction_flexible` the flexible one (`limacot.eval.answers`); `correct` is the record's
primary accuracy-type metric. lm-eval logs a doc once per filter of its task; a metric of a
filter other than "none" is named as lm-eval names it in results.json, `metric,filter`
(`exact_match,strict-match`), here and in `metric_rows`.

The metric story is defined here once and imported by compare, run and report:

    PRIMARY_METRICS   a task's headline metric is the first of these it reports (by name
                      before any ",filter"; among one metric's filters: none, strict-match,
                      then alphabetical)
    ACCURACY_METRICS  per-document 0/1 scores: B - A is tested with McNemar's exact test
    CORPUS_METRICS    computed over all documents (macro-F1): B - A is tested with a paired
                      permutation test (swap A's and B's prediction per document, recompute F1)
    MEAN_METRICS      per-document continuous scores (ll_per_char): B - A is tested with a
                      paired permutation test of the mean (swap A's and B's score per document)

A record's `correct` is its primary accuracy-type metric; a record without one (a continuous
score only) has no `correct`.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from limacot.eval.answers import flexible_answer, gsm8k_gold, normalize_number, strict_answer
from limacot.eval.catalog import pack_configs
from limacot.io.tables import markdown_table

# KoBEST's headline is macro-F1 (as the KoBEST paper reports it), GSM8K's strict exact match
# (the number after the answer marker), every other task's (MMLU, KMMLU, HAE-RAE, ARC) accuracy;
# exact_match is lm-eval's own generative tasks'.
# ll_per_char is the held-out CoT answers' (kocot_heldout) log-likelihood per character.
PRIMARY_METRICS = ("f1", "exact_match_strict", "exact_match_flexible", "exact_match", "acc", "acc_norm",
                   "ll_per_char")
CORPUS_METRICS = ("f1",)
MEAN_METRICS = ("ll_per_char",)
ACCURACY_METRICS = tuple(m for m in PRIMARY_METRICS if m not in CORPUS_METRICS + MEAN_METRICS)
PER_DOC_METRICS = ACCURACY_METRICS + MEAN_METRICS  # a value per document: compared doc by doc
# What a primary metric says, in words a report sentence can use.
METRIC_MEANINGS = {
    "f1": "macro-F1", "acc": "accuracy", "acc_norm": "length-normalised accuracy",
    "exact_match_strict": "exact match of the number after the answer marker",
    "exact_match_flexible": "exact match of the last number", "exact_match": "exact match",
    "ll_per_char": "log-likelihood per character of the held-out reference answers; higher = the model finds "
                   "them more likely",
}
_PREFERRED_FILTERS = ("none", "strict-match")

# The gold number of the pack's math tasks (their docs as task_data reads them).
_MATH_GOLD = {"gsm8k": gsm8k_gold, "ko_gsm8k": lambda doc: normalize_number(doc.get("answer"))}


def metric_name(metric: str, flt: str = "none") -> str:
    """lm-eval's name of a metric under a filter: "acc" (filter none), "exact_match,strict-match"."""
    return metric if flt in ("none", "", None) else f"{metric},{flt}"


def metric_base(name: str) -> str:
    """"exact_match,strict-match" -> "exact_match" (the metric without its filter)."""
    return name.partition(",")[0]


def sample_records(samples: list[dict], output_type: str, task: str) -> list[dict]:
    """One record per doc (see module docstring) from lm-eval's logged samples of one task."""
    records: dict[Any, dict] = {}
    for sample in samples:
        record = records.get(sample["doc_id"])
        if record is None:
            record = records[sample["doc_id"]] = _record(sample, output_type, task)
        flt = sample.get("filter", "none")
        for metric in sample.get("metrics") or PER_DOC_METRICS:
            if metric in PER_DOC_METRICS and metric in sample:
                record[metric_name(metric, flt)] = float(sample[metric])
        if output_type == "generate_until" and task not in _MATH_GOLD and flt != "none":
            resp = sample["filtered_resps"][0]
            record.setdefault("filtered", {})[flt] = resp[0] if isinstance(resp, list) else resp
    for record in records.values():
        primary = primary_metric(k for k in record if metric_base(k) in ACCURACY_METRICS)
        if primary:
            record["correct"] = bool(record[primary])
        elif not any(metric_base(k) in MEAN_METRICS for k in record):
            record["correct"] = False
    return list(records.values())


def _record(sample: dict, output_type: str, task: str) -> dict:
    doc = sample.get("doc") or {}
    record: dict[str, Any] = {"doc_id": sample["doc_id"], "id": str(doc.get("limacot_id", sample["doc_id"])),
                              "doc_hash": sample.get("doc_hash"), "prompt_hash": sample.get("prompt_hash")}
    if output_type == "multiple_choice":
        record.update(_choice_fields(sample))
    elif output_type == "loglikelihood":
        record.update(_continuation_fields(sample))
    else:
        record.update(_generation_fields(sample, task))
    return record


def _choice_fields(sample: dict) -> dict:
    continuations = [args[1] for args in sample["arguments"]]
    choices = [c[1:] if c.startswith(" ") else c for c in continuations]
    lls = [float(resp[0]) for resp in sample["filtered_resps"]]
    target = sample.get("target")
    if isinstance(target, int):
        gold = target
    else:
        gold = next((i for i, c in enumerate(choices) if c == str(target) or continuations[i] == str(target)), -1)
    if isinstance(sample.get("f1"), (list, tuple)):
        gold = int(sample["f1"][0])
    pred = max(range(len(lls)), key=lambda i: lls[i])
    pred_norm = max(range(len(lls)), key=lambda i: lls[i] / max(len(choices[i]), 1))
    return {"choices": choices, "loglikelihoods": lls, "is_greedy": [bool(r[1]) for r in sample["filtered_resps"]],
            "pred": pred, "pred_norm": pred_norm, "gold": gold}


def _continuation_fields(sample: dict) -> dict:
    """One scored continuation (a loglikelihood task): its text and log-likelihood."""
    continuation = sample["arguments"][0][1]
    loglikelihood, is_greedy = sample["filtered_resps"][0]
    return {"target": continuation[1:] if continuation.startswith(" ") else continuation,
            "loglikelihood": float(loglikelihood), "is_greedy": bool(is_greedy)}


def _generation_fields(sample: dict, task: str) -> dict:
    resp = (sample.get("resps") or sample["filtered_resps"])[0]  # the generation before any filter
    generation = str(resp[0] if isinstance(resp, list) else resp)
    if task in _MATH_GOLD:
        return {"generation": generation, "prediction": strict_answer(generation),
                "prediction_flexible": flexible_answer(generation), "gold": _MATH_GOLD[task](sample.get("doc") or {})}
    return {"generation": generation, "target": str(sample.get("target"))}


def primary_metric(metrics: Iterable[str]) -> str | None:
    """The headline metric among a task's metric names: the first of PRIMARY_METRICS present
    (compared without a ",filter"; among one metric's filters: none, then strict-match, then
    alphabetical), else the first name alphabetically (None for no names).

        {"acc", "acc_norm", "f1"} -> "f1"      {"acc", "acc_norm"} -> "acc"      {"mcc"} -> "mcc"
        {"exact_match_strict", "exact_match_flexible"} -> "exact_match_strict"
        {"exact_match,flexible-extract", "exact_match,strict-match"} -> "exact_match,strict-match"
    """
    names = sorted(set(metrics), key=_filter_rank)
    return next((m for base in PRIMARY_METRICS for m in names if metric_base(m) == base), min(names, default=None))


def _filter_rank(name: str) -> tuple[int, str]:
    flt = name.partition(",")[2] or "none"
    return (_PREFERRED_FILTERS.index(flt) if flt in _PREFERRED_FILTERS else len(_PREFERRED_FILTERS), name)


def metric_test(metric: str) -> str:
    """The paired test of B - A on `metric`: "mcnemar" (accuracy-type, under any filter) or
    "permutation" (F1, a continuous per-doc score such as ll_per_char, and any other metric that
    is not a per-document 0/1 score)."""
    return "mcnemar" if metric_base(metric) in ACCURACY_METRICS else "permutation"


def task_pack() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """(group -> its member names, the subject tasks) as the task pack's YAML files declare them.
    A subject task is one of a benchmark's subjects (MMLU, KMMLU, HAE-RAE: `dataset_kwargs.subject`)."""
    configs = pack_configs()
    groups = {name: tuple(m if isinstance(m, str) else m["task"] for m in cfg.get("task", []))
              for name, cfg in configs.items() if "group" in cfg}
    subjects = frozenset(name for name, cfg in configs.items() if (cfg.get("dataset_kwargs") or {}).get("subject"))
    return groups, subjects


def group_leaves(name: str) -> list[str]:
    """The leaf tasks a task or group name stands for (a task stands for itself)."""
    groups = task_pack()[0]
    if name not in groups:
        return [name]
    return [leaf for member in groups[name] for leaf in group_leaves(member)]


def fewshot_label(num_fewshot: int, names: Iterable[str]) -> str:
    """The run's few-shot count in words, naming the pack tasks among `names` (groups expanded)
    whose YAML fixes `num_fewshot: 0`: lm-eval keeps those zero-shot whatever the run asks.

        5, ["kocot_heldout", "kobest_copa"]  ->  "5-shot (kocot_heldout: 0-shot, fixed by the task)"
    """
    configs = pack_configs()
    leaves = dict.fromkeys(leaf for name in names for leaf in group_leaves(name))
    fixed = [leaf for leaf in leaves if (configs.get(leaf) or {}).get("num_fewshot") == 0]
    if not fixed or num_fewshot == 0:
        return f"{num_fewshot}-shot"
    return f"{num_fewshot}-shot ({', '.join(fixed)}: 0-shot, fixed by the task)"


def task_label(task: str, ran: Iterable[str]) -> str:
    """A task or group named by what ran: a group scored on only some of its leaf tasks says so.

        "kmmlu", ran {"kmmlu_criminal_law"}        -> "kmmlu (1/45 subjects: criminal_law)"
        "kmmlu", ran all 45 subjects                -> "kmmlu"
        "seed-study", 7 of its 52 leaves            -> "seed-study (7/52 tasks)"
    """
    leaves = group_leaves(task)
    done = [leaf for leaf in leaves if leaf in set(ran)]
    if leaves == [task] or not done or len(done) == len(leaves):
        return task
    unit = "subjects" if set(leaves) <= task_pack()[1] else "tasks"
    names = ": " + ", ".join(leaf.removeprefix(task + "_") for leaf in done) if len(done) <= 3 else ""
    return f"{task} ({len(done)}/{len(leaves)} {unit}{names})"


def metric_rows(results: dict) -> list[dict]:
    """Flatten lm-eval's results[task] dicts ("acc,none": x, "acc_stderr,none": s) into rows; a
    metric under a filter other than "none" keeps its lm-eval name ("exact_match,strict-match")."""
    rows = []
    for task, values in results.items():
        for key, value in values.items():
            name, _, flt = key.partition(",")
            if name.endswith("_stderr") or name in ("alias", "samples", "name", "sample_len") or not flt:
                continue
            stderr = values.get(f"{name}_stderr,{flt}")
            rows.append({"task": task, "metric": metric_name(name, flt), "filter": flt, "value": _num(value),
                         "stderr": _num(stderr)})
    return rows


def _num(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def summary_markdown(run: dict) -> str:
    """summary.md: what ran, the scores (with seed mean ± std), and the notes."""
    info = run["limacot"]
    lines = [f"# limacot eval: {info['model']}", "",
             f"- backend: `{info['backend']}`, few-shot: {info['num_fewshot']}, limit: {info['limit']}, "
             f"data: {info['data_dir'] or 'hub datasets'}",
             f"- few-shot seeds: {', '.join(str(s) for s in info['seeds'])} (scores below: seed {info['seeds'][0]})",
             f"- wall time: {info['wall_seconds']:.1f} s", ""]
    lines += markdown_table(SCORE_COLUMNS, [row for _, row in score_table(run)])
    skipped = info.get("skipped_tasks", {})
    notes = list(info.get("notes", []))
    if skipped:
        notes.append(f"skipped {len(skipped)} task(s) without local data: " +
                     "; ".join(f"{t} ({why})" for t, why in list(skipped.items())[:10]) +
                     (" ..." if len(skipped) > 10 else ""))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


SCORE_COLUMNS = ("task", "metric", "value", "± stderr", "seeds mean ± std", "n")


def score_table(run: dict) -> list[tuple[str, list[str]]]:
    """The scores of an eval run as (task, row) pairs, leaf tasks then groups; a row is the
    SCORE_COLUMNS of one task and metric, as text (summary.md and the console show the same):

        ("kmmlu", ["kmmlu (1/45 subjects: criminal_law)", "acc", "0.3000", "0.0458", "", "100"])
    """
    info = run["limacot"]
    variance = info.get("seed_variance", {})
    rows = metric_rows(run.get("results", {}))
    ran = {row["task"] for row in rows}
    table = []
    for row in rows:
        seeds = seed_text(variance.get(row["task"], {}).get(row["metric"]), len(info["seeds"]))
        n = run.get("n-samples", {}).get(row["task"], {}).get("effective", "")
        table.append((row["task"], [task_label(row["task"], ran), row["metric"], _fmt(row["value"]),
                                    _fmt(row["stderr"]), seeds, str(n)]))
    return table


def seed_text(spread: dict | None, seeds: int) -> str:
    """The few-shot seed spread of one score, telling "ran once" from "k seeds, all equal":

        {"mean": .61, "std": .02, "n": 3}, 3 seeds           -> "0.6100 ± 0.0200 (k=3)"
        {"mean": .61, "std": 0, "n": 3, "values": [.61]*3}    -> "0.6100 ± 0.0000 (k=3, identical)"
        {"n": 1}, 3 seeds asked                               -> "ran once (fixed few-shot examples)"
        one seed asked                                        -> ""
    """
    if seeds <= 1 or not spread:
        return ""
    if spread["n"] <= 1:
        return "ran once (fixed few-shot examples)"
    same = len(set(spread.get("values") or [])) == 1
    return f"{spread['mean']:.4f} ± {spread['std']:.4f} (k={spread['n']}{', identical' if same else ''})"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
