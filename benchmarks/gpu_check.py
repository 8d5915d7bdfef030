"""One check of the GPU path, stage by stage, on one CUDA device (run it as `benchmarks/gpu_check.sh`).

    1. train     20 optimizer steps of a train preset (default: the LoRA preset) in bf16
    2. generate  32 prompts, batched, LIMA sampling
    3. eval      5-shot on about 50 docs with both eval backends (fast and hf), which must agree

For each stage it prints tokens/s (training: real tokens; generation: new tokens) or docs/s,
and the peak GPU memory (torch.cuda.max_memory_allocated). Exit code 1 when a stage fails or
the two eval backends disagree. Everything is written under --out.

    .venv/bin/python benchmarks/gpu_check.py --model embedded --out out/gpu-check
    .venv/bin/python benchmarks/gpu_check.py --model hf:meta-llama/Meta-Llama-3-8B \\
        --preset configs/train/lima-llama3-8b-lora.yaml --data-dir ../shared/data --out out/gpu-check-8b
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from limacot.io.yaml_config import load_config
from limacot.eval.config import EvalConfig
from limacot.eval.harness import run_eval
from limacot.generate.generation import GenerationSettings, generate_file
from limacot.train.config import TrainConfig
from limacot.train.recipe import train

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "data"


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30


def stage(name: str, results: dict, work) -> None:
    """Run `work()` (returns a dict of numbers), timing it and recording its peak GPU memory."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        numbers = work()
    except Exception as err:  # report every stage, then fail at the end
        results[name] = {"error": f"{type(err).__name__}: {err}"}
        print(f"{name:<9} FAILED: {results[name]['error']}", flush=True)
        return
    results[name] = {"seconds": round(time.perf_counter() - started, 1), "peak_gib": round(peak_gib(), 2), **numbers}
    print(f"{name:<9} " + "  ".join(f"{k} {v}" for k, v in results[name].items()), flush=True)


def train_steps(args, out: Path) -> dict:
    """20 optimizer steps, 8 sequences each: 160 training rows, one epoch, one save."""
    rows = [line for line in (EXAMPLES / "lima_sample.jsonl").read_text(encoding="utf-8").splitlines() if line]
    data = out / "train.jsonl"
    data.write_text("".join(rows[i % len(rows)] + "\n" for i in range(160)), encoding="utf-8")
    preset = load_config(args.preset, TrainConfig)
    config = preset.model_copy(update={
        "model": args.model, "data": str(data), "epochs": 1, "save_window": (1, 1), "effective_batch_size": 8,
        "per_device_batch_size": min(preset.per_device_batch_size, 8), "dev_prompts": None, "precision": "bf16",
        "report_to": [], "max_length": 1024, "stop_after_window": True})
    result = train(config, out / "run", progress=False)
    logged = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = [row["tokens_per_second"] for row in logged if "tokens_per_second" in row]
    return {"steps": result.summary["steps"], "tokens_per_s": round(sum(rates) / max(len(rates), 1), 1),
            "method": config.method}


def generation(args, out: Path) -> dict:
    prompts = out / "prompts.jsonl"
    base = [json.loads(line) for line in (EXAMPLES / "dev_prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    prompts.write_text("".join(json.dumps({"prompt": f"{base[i % len(base)]['prompt']} ({i})"}, ensure_ascii=False)
                               + "\n" for i in range(32)), encoding="utf-8")
    started = time.perf_counter()
    rows = generate_file(args.model, prompts, out / "generate", GenerationSettings(max_new_tokens=args.max_new_tokens),
                         batch_size=args.batch_size)
    tokens = sum(row["tokens"] for row in rows)
    return {"prompts": len(rows), "new_tokens": tokens,
            "tokens_per_s": round(tokens / (time.perf_counter() - started), 1)}


def evaluation(args, out: Path) -> dict:
    """Both backends on the same docs; their per-doc predictions and scores must agree."""
    numbers, preds = {}, {}
    for backend in ("fast", "hf"):
        config = EvalConfig(model=args.model, tasks=args.tasks.split(","), num_fewshot=5, limit=args.limit,
                            data_dir=args.data_dir, backend=backend, batch_size=args.eval_batch_size)
        started = time.perf_counter()
        run = run_eval(config, out / f"eval-{backend}")
        docs = sum(v.get("effective", 0) for v in run.get("n-samples", {}).values())
        numbers[f"{backend}_docs_per_s"] = round(docs / (time.perf_counter() - started), 2)
        numbers["docs"] = docs
        preds[backend] = {task: [json.loads(line)["pred"] for line in
                                 (out / f"eval-{backend}" / "samples" / f"{task}.jsonl").read_text().splitlines()]
                          for task in run["limacot"]["samples"]}
    numbers["backends_agree"] = preds["fast"] == preds["hf"]
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--preset", default=str(REPO / "configs/train/lima-llama3-8b-lora.yaml"))
    parser.add_argument("--data-dir", default=str(REPO / "examples/eval_data"))
    parser.add_argument("--tasks", default="kobest_copa,kobest_boolq,kobest_sentineg")
    parser.add_argument("--limit", type=int, default=17, help="docs per task (3 tasks x 17 = 51)")
    parser.add_argument("--batch-size", type=int, default=16, help="generation batch size")
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--out", default="out/gpu-check")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device; run it on a GPU machine")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"device {torch.cuda.get_device_name(0)}, torch {torch.__version__}, model {args.model}", flush=True)
    results: dict = {}
    stage("train", results, lambda: train_steps(args, out / "train"))
    stage("generate", results, lambda: generation(args, out))
    stage("eval", results, lambda: evaluation(args, out))
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    failed = [name for name, r in results.items() if "error" in r] + \
        (["eval backends disagree"] if results.get("eval", {}).get("backends_agree") is False else [])
    print("gpu check: " + ("OK" if not failed else f"FAILED ({', '.join(failed)})"), flush=True)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
