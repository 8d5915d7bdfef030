"""Per-doc sample records (`samples/<task>.jsonl`) and the run summary (`summary.md`).

One lm-eval logged sample becomes one flat record:

    multiple choice  {"doc_id": 0, "id": "3394", "doc_hash": "9f..", "prompt_hash": "c1..",
                      "choices": ["부정", "긍정"], "loglikelihoods": [-3.2, -2.9], "pred": 1,
                      "pred_norm": 1, "gold": 1, "correct": true, "acc": 1.0, "acc_norm": ..}
    generation       {"doc_id": 0, ..., "generation": "... The answer is 18.", "prediction": "18",
                      "gold": "18", "correct": true, "exact_match": 1.0}

`pred` is the argmax of the loglikelihoods and `pred_norm` of loglikelihood / choice length in
characters, as lm-eval computes acc and acc_norm; `correct` is lm-eval's acc (or exact_match).
"""

from __future__ import annotations

import math
from typing import Any

from limacot.eval.answers import extract_answer, gsm8k_gold, normalize_number

PRIMARY_METRICS = ("acc", "exact_match")


def sample_record(sample: dict, output_type: str, task: str) -> dict:
    doc = sample.get("doc") or {}
    record: dict[str, Any] = {"doc_id": sample["doc_id"], "id": str(doc.get("limacot_id", sample["doc_id"])),
                              "doc_hash": sample.get("doc_hash"), "prompt_hash": sample.get("prompt_hash")}
    if output_type == "multiple_choice":
        record.update(_choice_fields(sample))
    else:
        record.update(_generation_fields(sample, task))
    for metric in ("acc", "acc_norm", "exact_match"):
        if metric in sample:
            record[metric] = float(sample[metric])
    record["correct"] = bool(next((record[m] for m in PRIMARY_METRICS if m in record), 0.0))
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


def primary_metric(metrics: dict) -> str | None:
    for name in ("acc", "exact_match", "acc_norm", "f1"):
        if name in metrics:
            return name
    return None


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
             f"- wall time: {info['wall_seconds']:.1f} s", "",
             "| task | metric | value | ± stderr | seeds mean ± std | n |", "|---|---|---|---|---|---|"]
    variance = info.get("seed_variance", {})
    for row in metric_rows(run.get("results", {})):  # leaf tasks, then groups
        spread = variance.get(row["task"], {}).get(row["metric"])
        seeds = f"{spread['mean']:.4f} ± {spread['std']:.4f} (k={spread['n']})" if spread and spread["n"] > 1 else ""
        n = run.get("n-samples", {}).get(row["task"], {}).get("effective", "")
        lines.append(f"| {row['task']} | {row['metric']} | {_fmt(row['value'])} | {_fmt(row['stderr'])} | {seeds} | {n} |")
    skipped = info.get("skipped_tasks", {})
    notes = list(info.get("notes", []))
    if skipped:
        notes.append(f"skipped {len(skipped)} task(s) without local data: " +
                     "; ".join(f"{t} ({why})" for t, why in list(skipped.items())[:10]) +
                     (" ..." if len(skipped) > 10 else ""))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
