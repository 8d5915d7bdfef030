"""`limacot eval compare OUT_A OUT_B`: is B better than A on the same docs, and how sure are we?

Per task (from the two runs' `samples/<task>.jsonl`):

- both runs must have scored the same docs with the same prompts (doc ids, doc hashes and
  prompt hashes equal); otherwise the comparison is refused (an input error);
- per metric the task reports (acc, acc_norm, exact_match_strict, exact_match_flexible, macro F1,
  ll_per_char): A, B, B - A, its paired bootstrap 95% CI (10,000 resamples, seeded) and a p-value
  from the test that fits the metric (`limacot.eval.scores.metric_test`): McNemar's exact test for
  an accuracy-type metric, a paired permutation test for F1 (predictions swapped per document)
  and for a continuous per-doc score (scores swapped per document). The delta, CI and p of a
  metric are always that metric's;
- the task's primary metric (`limacot.eval.scores.PRIMARY_METRICS`: KoBEST's is F1) is its
  headline test; Holm's correction runs over the compared tasks' primary tests.

    {"task": "kobest_copa", "n": 20, "primary": "f1",
     "metrics": {"f1": {"a": .52, "b": .64, "diff": .12, "ci_low": -.05, "ci_high": .30,
                        "test": "permutation", "p_value": .21, "p_holm": .42},
                 "acc": {..., "test": "mcnemar", "a_only": 1, "b_only": 3, "p_value": .625, "p_holm": null}}}
"""

from __future__ import annotations

import json
from pathlib import Path

from limacot.errors import LimacotInputError
from limacot.eval.scores import (PER_DOC_METRICS, PRIMARY_METRICS, metric_base, metric_rows, metric_test,
                                  primary_metric)
from limacot.stats.bootstrap import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Interval, bootstrap_interval
from limacot.stats.paired import (holm, macro_f1_rows, mcnemar_exact, paired_diff, paired_f1_diff,
                                  paired_permutation_f1, paired_permutation_mean)


def _read_json(path: Path, data: bytes, line: int | None = None) -> object:
    """One JSON document (a whole file, or line `line` of a .jsonl); a broken one names the file."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        where = f"{path}:line {line}" if line else str(path)
        raise LimacotInputError(f"{where}: not valid JSON ({err}); expected a file written by `limacot eval`") from None


def load_run(out: str | Path) -> tuple[dict, dict[str, list[dict]]]:
    """(results.json, {task: sample records}) of an eval output folder."""
    out = Path(out)
    results_path = out / "results.json"
    if not results_path.is_file():
        raise LimacotInputError(f"{out}: not a `limacot eval` output folder (no results.json)")
    results = _read_json(results_path, results_path.read_bytes())
    samples = {}
    for path in sorted((out / "samples").glob("*.jsonl")):
        lines = path.read_bytes().splitlines()
        samples[path.stem] = [_read_json(path, line, number) for number, line in enumerate(lines, 1) if line.strip()]
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


def compared_metrics(reported: set[str], ra: list[dict], rb: list[dict]) -> list[str]:
    """The metrics of a task that can be compared doc by doc, in PRIMARY_METRICS order: an
    accuracy-type or continuous per-doc metric (under any filter) both runs' records carry, and
    F1 where the task reports it and the records carry predictions."""
    carried = sorted(k for k in ra[0] if k in rb[0] and metric_base(k) in PER_DOC_METRICS)
    names = []
    for name in PRIMARY_METRICS:
        if name in PER_DOC_METRICS:
            names += [k for k in carried if metric_base(k) == name]
        elif name in reported and "pred" in ra[0] and "pred" in rb[0]:
            names.append(name)
    return names


def metric_comparison(name: str, ra: list[dict], rb: list[dict], resamples: int, seed: int) -> dict:
    """A, B, the bootstrap CI of B - A and the p-value of `name`'s own test (see module docstring)."""
    n = len(ra)
    if metric_base(name) in PER_DOC_METRICS:
        va, vb = [float(r[name]) for r in ra], [float(r[name]) for r in rb]
        ci = bootstrap_interval(paired_diff(va, vb), n, resamples=resamples, seed=seed)
        test = (mcnemar_exact(va, vb) if metric_test(name) == "mcnemar" else
                {"p_value": paired_permutation_mean(va, vb, resamples=resamples, seed=seed)})
        return {"a": sum(va) / n, "b": sum(vb) / n, **_ci_fields(ci), "test": metric_test(name), **test}
    golds, pa, pb = [r["gold"] for r in ra], [r["pred"] for r in ra], [r["pred"] for r in rb]
    ci = bootstrap_interval(paired_f1_diff(golds, pa, pb), n, resamples=resamples, seed=seed)
    return {"a": float(macro_f1_rows(golds, pa)), "b": float(macro_f1_rows(golds, pb)), **_ci_fields(ci),
            "test": "permutation", "p_value": paired_permutation_f1(golds, pa, pb, resamples=resamples, seed=seed)}


def _ci_fields(ci: Interval) -> dict:
    return {"diff": ci.value, "ci_low": ci.low, "ci_high": ci.high, "resamples": ci.resamples, "seed": ci.seed}


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
        reported = {row["metric"] for row in metric_rows({task: results_a.get("results", {}).get(task, {})})}
        names = compared_metrics(reported, ra, rb)
        if not names:
            continue
        metrics = {name: metric_comparison(name, ra, rb, resamples, seed) for name in names}
        rows.append({"task": task, "n": len(ra), "primary": primary_metric(names), "metrics": metrics})
    primary = [row["metrics"][row["primary"]] for row in rows]
    for entry, adjusted in zip(primary, holm([m["p_value"] for m in primary])):
        entry["p_holm"] = adjusted
    for row in rows:
        for entry in row["metrics"].values():
            entry.setdefault("p_holm", None)  # secondary metrics: uncorrected p only
    return {"a": {"out": str(out_a), "model": results_a.get("limacot", {}).get("model")},
            "b": {"out": str(out_b), "model": results_b.get("limacot", {}).get("model")},
            "resamples": resamples, "seed": seed, "tasks": rows,
            "not_compared": sorted(set(samples_a) ^ set(samples_b))}
