"""Benchmark: lm-eval's `hf` backend vs limacot's `fast` backend on the same docs and prompts.

Both backends wrap the same loaded model (the embedded SmolLM2-135M, fp32, CPU). For each
task the 5-shot requests are built once through lm-eval; then, doc by doc, the hf and the
fast backend score that doc's requests, alternating which goes first so that load drift on a
shared machine hits both sides alike. MMLU (whose docs share one 5-shot prefix) is scored as
one call per side over all its docs, twice, in both orders, since sharing needs several docs
per call. Printed per task: wall-clock of each side, the ratio, peak extra memory (RSS sampled
every 10 ms above the level before the call, after returning freed heap memory to the OS),
the largest loglikelihood difference and whether acc / acc_norm agree on every doc.

    python benchmarks/eval_speed.py                      # data from ../shared/data
    python benchmarks/eval_speed.py --copa-docs 20 --hellaswag-docs 5 --threads 2

Goals (issue #5): >= 3x on kobest_hellaswag 5-shot, >= 1.7x on kobest_copa 5-shot.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


class PeakRSS:
    """Context manager: the largest RSS increase (MiB) seen while the block runs."""

    def __init__(self, interval: float = 0.01):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0.0

    def __enter__(self):
        _trim_heap()
        self.base = self.process.memory_info().rss
        self.top = self.base
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.top = max(self.top, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.top = max(self.top, self.process.memory_info().rss)
        self.peak = (self.top - self.base) / 2**20
        return False


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc), so RSS before a call is its true floor."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: measurements are upper-bounded by reuse instead
        pass


def build_requests(task_name: str, data_dir: Path, shots: int, docs: int):
    """{doc_id: [Instance, ...]} of `docs` docs, 5-shot prompts as lm-eval builds them."""
    from limacot.eval.catalog import task_manager

    task = task_manager(data_dir).load([task_name])["tasks"][task_name]
    task.set_config("num_fewshot", shots)
    task.set_fewshot_seed(1234)
    task.build_all_requests(limit=docs)
    by_doc: dict[int, list] = {}
    for instance in task.instances:
        by_doc.setdefault(instance.doc_id, []).append(instance)
    for instances in by_doc.values():
        instances.sort(key=lambda i: i.idx)
    return task, by_doc


def predictions(task, instances, results) -> tuple[int, int]:
    """(argmax, length-normalized argmax) as lm-eval computes acc and acc_norm."""
    lls = [r[0] for r in results]
    choices = task.doc_to_choice(instances[0].doc)
    pred = max(range(len(lls)), key=lambda i: lls[i])
    pred_norm = max(range(len(lls)), key=lambda i: lls[i] / len(choices[i]))
    return pred, pred_norm


def run_task(name: str, docs: int, args, hf, fast, per_doc: bool = True) -> dict:
    task, by_doc = build_requests(name, args.data_dir, args.num_fewshot, docs)
    seconds = {"hf": 0.0, "fast": 0.0}
    peak = {"hf": 0.0, "fast": 0.0}
    max_diff, agree = 0.0, True
    backends = {"hf": hf, "fast": fast}
    docs_sorted = sorted(by_doc.items())
    rounds = [[d] for d in docs_sorted] if per_doc else [docs_sorted, docs_sorted]
    for position, round_docs in enumerate(rounds):
        instances = [i for _, doc_instances in round_docs for i in doc_instances]
        order = ("hf", "fast") if position % 2 == 0 else ("fast", "hf")
        out = {}
        for side in order:
            with PeakRSS() as memory:
                start = time.perf_counter()
                out[side] = backends[side].loglikelihood(instances, disable_tqdm=True)
                seconds[side] += time.perf_counter() - start
            peak[side] = max(peak[side], memory.peak)
        max_diff = max(max_diff, max(abs(a[0] - b[0]) for a, b in zip(out["hf"], out["fast"])))
        start = 0
        for _, doc_instances in round_docs:
            window = slice(start, start + len(doc_instances))
            agree &= predictions(task, doc_instances, out["hf"][window]) == \
                predictions(task, doc_instances, out["fast"][window])
            start += len(doc_instances)
        print(f"  {name} round {position}: hf {seconds['hf']:.1f}s  fast {seconds['fast']:.1f}s (cumulative)",
              file=sys.stderr, flush=True)
    if not per_doc:  # each side scored every doc twice
        seconds = {side: value / 2 for side, value in seconds.items()}
    return {"task": name, "docs": len(by_doc), "hf_s": seconds["hf"], "fast_s": seconds["fast"],
            "ratio": seconds["hf"] / seconds["fast"], "hf_peak_mib": peak["hf"], "fast_peak_mib": peak["fast"],
            "max_abs_ll_diff": max_diff, "acc_and_acc_norm_agree": agree}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--num-fewshot", type=int, default=5)
    parser.add_argument("--copa-docs", type=int, default=10)
    parser.add_argument("--hellaswag-docs", type=int, default=3)
    parser.add_argument("--mmlu-docs", type=int, default=5, help="mmlu_marketing: a shared few-shot prefix (0: skip)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides (default 1: stable "
                                                                 "timings on a shared machine)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import logging

    import torch
    from lm_eval.models.huggingface import HFLM

    from limacot.eval.fastlm import FastHFLM
    from limacot.eval.views import quiet_libraries
    from limacot.models.loading import load_model, load_tokenizer

    quiet_libraries(False)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model("embedded"), load_tokenizer("embedded")
    hf = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    fast = FastHFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    plan = [("kobest_hellaswag", args.hellaswag_docs), ("kobest_copa", args.copa_docs),
            ("mmlu_marketing", args.mmlu_docs)]
    rows = [run_task(name, docs, args, hf, fast, per_doc=not name.startswith("mmlu")) for name, docs in plan if docs > 0]
    print(f"\nembedded SmolLM2-135M, fp32, CPU, torch threads {args.threads}, {args.num_fewshot}-shot, "
          f"batch size 1 both sides, same requests (KoBEST: docs interleaved; MMLU: all docs per call, "
          f"2 rounds, time per round)")
    header = f"{'task':<18}{'docs':>5}{'hf s':>9}{'fast s':>9}{'ratio':>8}{'hf MiB':>9}{'fast MiB':>10}" \
             f"{'max|dLL|':>11}  acc/acc_norm agree"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['task']:<18}{r['docs']:>5}{r['hf_s']:>9.1f}{r['fast_s']:>9.1f}{r['ratio']:>7.2f}x"
              f"{r['hf_peak_mib']:>9.0f}{r['fast_peak_mib']:>10.0f}{r['max_abs_ll_diff']:>11.2e}  "
              f"{r['acc_and_acc_norm_agree']}")
    print(f"fast backend counters: {fast.stats}")


if __name__ == "__main__":
    main()
