"""`limacot eval compare OUT_A OUT_B`: is B better than A on the same docs, and how sure are we?

Per task (from the two runs' `samples/<task>.jsonl`):

- both runs must have scored the same docs with the same prompts (doc ids, doc hashes and
  prompt hashes equal); otherwise the comparison is refused (an input error);
- McNemar's exact test on per-doc correctness (acc, or exact_match for generation tasks);
- a paired bootstrap 95% CI (10,000 resamples, seeded) of B - A for acc, acc_norm and macro F1
  (where the task reports F1);
- Holm's correction of the McNemar p-values across the compared tasks.

    {"task": "kobest_copa", "n": 20, "metrics": {"acc": {"a": .55, "b": .65, "diff": .10,
     "ci_low": -.10, "ci_high": .30}, ...}, "mcnemar": {"a_only": 1, "b_only": 3, "p_value": .625},
     "p_holm": 1.0}
"""

from __future__ import annotations

import json
from pathlib import Path

from limacot.errors import LimacotInputError
from limacot.eval.stats import (BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, holm, mcnemar_exact, paired_bootstrap,
                                paired_diff, paired_f1_diff)


def load_run(out: str | Path) -> tuple[dict, dict[str, list[dict]]]:
    """(results.json, {task: sample records}) of an eval output folder."""
    out = Path(out)
    results_path = out / "results.json"
    if not results_path.is_file():
        raise LimacotInputError(f"{out}: not a `limacot eval` output folder (no results.json)")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    samples = {}
    for path in sorted((out / "samples").glob("*.jsonl")):
        samples[path.stem] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not samples:
        raise LimacotInputError(f"{out}: no samples/<task>.jsonl files to compare")
    return results, samples


def _aligned(task: str, a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict]]:
    """The two runs' records in the same doc order; refuses if docs or prompts differ."""
    by_a, by_b = {r["doc_id"]: r for r in a}, {r["doc_id"]: r for r in b}
    if set(by_a) != set(by_b):
        only = sorted(set(by_a) ^ set(by_b))[:5]
        raise LimacotInputError(f"{task}: the runs scored different docs ({len(by_a)} vs {len(by_b)}; e.g. doc ids "
                                f"{only} are in one run only). Rerun both with the same tasks, --data-dir and --limit.")
    for doc_id in sorted(by_a):
        ra, rb = by_a[doc_id], by_b[doc_id]
        for key, what in (("doc_hash", "doc"), ("prompt_hash", "prompt")):
            if ra.get(key) != rb.get(key):
                raise LimacotInputError(
                    f"{task}: doc {doc_id} was scored with a different {what} in the two runs "
                    f"({str(ra.get(key))[:12]} vs {str(rb.get(key))[:12]}). A paired comparison needs the same docs "
                    f"and prompts: use the same --data-dir, --num-fewshot and few-shot --seed for both runs.")
    ids = sorted(by_a)
    return [by_a[i] for i in ids], [by_b[i] for i in ids]


def _task_metrics(ra: list[dict], rb: list[dict], has_f1: bool, resamples: int, seed: int) -> dict:
    n = len(ra)
    out = {}
    correct_a = [float(r["correct"]) for r in ra]
    correct_b = [float(r["correct"]) for r in rb]
    primary = "acc" if "acc" in ra[0] else "exact_match"
    columns = {primary: (correct_a, correct_b)}
    if "acc_norm" in ra[0] and "acc_norm" in rb[0]:
        columns["acc_norm"] = ([float(r["acc_norm"]) for r in ra], [float(r["acc_norm"]) for r in rb])
    for name, (va, vb) in columns.items():
        ci = paired_bootstrap(paired_diff(va, vb), n, resamples=resamples, seed=seed)
        out[name] = {"a": sum(va) / n, "b": sum(vb) / n, **ci.as_dict()}
    if has_f1 and "pred" in ra[0]:
        golds = [r["gold"] for r in ra]
        metric = paired_f1_diff(golds, [r["pred"] for r in ra], [r["pred"] for r in rb])
        ci = paired_bootstrap(metric, n, resamples=resamples, seed=seed)
        from limacot.eval.prompts import macro_f1

        out["f1"] = {"a": macro_f1(list(zip(golds, [r["pred"] for r in ra]))),
                     "b": macro_f1(list(zip(golds, [r["pred"] for r in rb]))), **ci.as_dict()}
    return out


def compare_runs(out_a: str | Path, out_b: str | Path, *, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> dict:
    """The paired comparison of two eval outputs (see module docstring)."""
    results_a, samples_a = load_run(out_a)
    results_b, samples_b = load_run(out_b)
    common = [t for t in samples_a if t in samples_b]
    if not common:
        raise LimacotInputError(f"{out_a} and {out_b} share no task: nothing to compare")
    rows = []
    for task in common:
        ra, rb = _aligned(task, samples_a[task], samples_b[task])
        if not ra:
            continue
        has_f1 = any(k.startswith("f1,") for k in results_a.get("results", {}).get(task, {}))
        correct_a = [r["correct"] for r in ra]
        correct_b = [r["correct"] for r in rb]
        rows.append({"task": task, "n": len(ra), "metrics": _task_metrics(ra, rb, has_f1, resamples, seed),
                     "mcnemar": mcnemar_exact(correct_a, correct_b)})
    for row, adjusted in zip(rows, holm([r["mcnemar"]["p_value"] for r in rows])):
        row["p_holm"] = adjusted
    return {"a": {"out": str(out_a), "model": results_a.get("limacot", {}).get("model")},
            "b": {"out": str(out_b), "model": results_b.get("limacot", {}).get("model")},
            "resamples": resamples, "seed": seed, "tasks": rows,
            "not_compared": sorted(set(samples_a) ^ set(samples_b))}
