"""Per-doc sample records (`samples/<task>.jsonl`) and the run summary (`summary.md`).

One lm-eval logged sample becomes one flat record:

    multiple choice  {"doc_id": 0, "id": "3394", "doc_hash": "9f..", "prompt_hash": "c1..",
                      "choices": ["부정", "긍정"], "loglikelihoods": [-3.2, -2.9], "pred": 1,
                      "pred_norm": 1, "gold": 1, "correct": true, "acc": 1.0, "acc_norm": ..}
    generation       {"doc_id": 0, ..., "generation": "... The answer is 18.", "prediction": "18",
                      "gold": "18", "correct": true, "exact_match": 1.0}

`pred` is the argmax of the loglikelihoods and `pred_norm` of loglikelihood / choice length in
characters, as lm-eval computes acc and acc_norm; `correct` is the first accuracy-type metric
(PRIMARY_METRICS order) the record has: exact_match, else acc.

The metric story is defined here once and imported by compare, run and report:

    PRIMARY_METRICS   a task's headline metric is the first of these it reports
    ACCURACY_METRICS  per-document 0/1 scores: B - A is tested with McNemar's exact test
    CORPUS_METRICS    computed over all documents (macro-F1): B - A is tested with a paired
                      permutation test (swap A's and B's prediction per document, recompute F1)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Iterable

import yaml

from limacot.eval.answers import extract_answer, gsm8k_gold, normalize_number
from limacot.eval.catalog import TASKS_DIR
from limacot.io.tables import markdown_table

# KoBEST's headline is macro-F1 (as the KoBEST paper reports it), GSM8K's exact match, every
# other task's (MMLU, KMMLU, HAE-RAE, ARC) accuracy.
PRIMARY_METRICS = ("f1", "exact_match", "acc", "acc_norm")
CORPUS_METRICS = ("f1",)
ACCURACY_METRICS = tuple(m for m in PRIMARY_METRICS if m not in CORPUS_METRICS)


def sample_record(sample: dict, output_type: str, task: str) -> dict:
    doc = sample.get("doc") or {}
    record: dict[str, Any] = {"doc_id": sample["doc_id"], "id": str(doc.get("limacot_id", sample["doc_id"])),
                              "doc_hash": sample.get("doc_hash"), "prompt_hash": sample.get("prompt_hash")}
    if output_type == "multiple_choice":
        record.update(_choice_fields(sample))
    else:
        record.update(_generation_fields(sample, task))
    for metric in ACCURACY_METRICS:
        if metric in sample:
            record[metric] = float(sample[metric])
    record["correct"] = bool(next((record[m] for m in ACCURACY_METRICS if m in record), 0.0))
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


def _generation_fields(sample: dict, task: str) -> dict:
    resp = sample["filtered_resps"][0]
    generation = resp[0] if isinstance(resp, list) else resp
    doc = sample.get("doc") or {}
    gold = gsm8k_gold(doc) if task == "gsm8k" else normalize_number(doc.get("answer"))
    return {"generation": generation, "prediction": extract_answer(str(generation)), "gold": gold}


def primary_metric(metrics: Iterable[str]) -> str | None:
    """The headline metric among a task's metric names: the first of PRIMARY_METRICS present,
    else the first name alphabetically (None for no names).

        {"acc", "acc_norm", "f1"} -> "f1"      {"acc", "acc_norm"} -> "acc"      {"mcc"} -> "mcc"
    """
    names = set(metrics)
    return next((m for m in PRIMARY_METRICS if m in names), min(names, default=None))


def metric_test(metric: str) -> str:
    """The paired test of B - A on `metric`: "mcnemar" (accuracy-type) or "permutation" (F1, and
    any other metric that is not a per-document 0/1 score)."""
    return "mcnemar" if metric in ACCURACY_METRICS else "permutation"


class _PackLoader(yaml.SafeLoader):
    """Reads the task pack's YAML without importing anything: `!function x.y` stays the text."""


_PackLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@lru_cache(maxsize=1)
def task_pack() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """(group -> its member names, the subject tasks) as the task pack's YAML files declare them.
    A subject task is one of a benchmark's subjects (MMLU, KMMLU, HAE-RAE: `dataset_kwargs.subject`)."""
    groups: dict[str, tuple[str, ...]] = {}
    subjects = set()
    for path in sorted(TASKS_DIR.rglob("*.yaml")):
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_PackLoader) or {}
        if "group" in cfg:
            groups[cfg["group"]] = tuple(m if isinstance(m, str) else m["task"] for m in cfg.get("task", []))
        elif (cfg.get("dataset_kwargs") or {}).get("subject"):
            subjects.add(cfg["task"])
    return groups, frozenset(subjects)


def group_leaves(name: str) -> list[str]:
    """The leaf tasks a task or group name stands for (a task stands for itself)."""
    groups = task_pack()[0]
    if name not in groups:
        return [name]
    return [leaf for member in groups[name] for leaf in group_leaves(member)]


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
    """Flatten lm-eval's results[task] dicts ("acc,none": x, "acc_stderr,none": s) into rows."""
    rows = []
    for task, values in results.items():
        for key, value in values.items():
            name, _, flt = key.partition(",")
            if name.endswith("_stderr") or name in ("alias", "samples", "name", "sample_len") or not flt:
                continue
            stderr = values.get(f"{name}_stderr,{flt}")
            rows.append({"task": task, "metric": name, "filter": flt, "value": _num(value), "stderr": _num(stderr)})
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
