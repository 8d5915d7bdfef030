"""`limacot generate` at batch size B against one prompt at a time: new tokens per second, same
prompts and seeds, and whether the answers are identical (they must be: each prompt has its
own seed). Both sides run through `generate_file`, in the order A B B A so that a shared
machine's changing load falls on both; the ratio is what this script is for.

    .venv/bin/python benchmarks/generate_speed.py [--n 32] [--batch-size 16] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from limacot.generate.generation import GenerationSettings, generate_file
from limacot.models.loading import load_model

REPO = Path(__file__).resolve().parents[1]
LIMA_TEST = REPO.parent / "shared/data/lima/test_prompts_from_just_eval.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--prompts", default=str(LIMA_TEST if LIMA_TEST.exists() else
                                                 REPO / "examples/data/dev_prompts.jsonl"))
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    load_model(args.model)  # converts a GGUF once, outside the timings
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seconds, tokens, rows = {1: 0.0, args.batch_size: 0.0}, {}, {}
        for round_, batch in enumerate((1, args.batch_size, args.batch_size, 1)):
            started = time.perf_counter()
            out = generate_file(args.model, args.prompts, folder / f"out-{round_}", settings, batch_size=batch,
                                limit=args.n)
            seconds[batch] += time.perf_counter() - started
            tokens[batch] = tokens.get(batch, 0) + sum(r["tokens"] for r in out)
            rows.setdefault(batch, out)
            print(f"  round {round_ + 1}/4: batch {batch:>2}: {time.perf_counter() - started:7.1f} s", flush=True)
    print(f"{len(rows[1])} prompts from {Path(args.prompts).name}, at most {args.max_new_tokens} new tokens, "
          f"model {args.model}")
    rate = {b: tokens[b] / seconds[b] for b in seconds}
    for batch in seconds:
        print(f"batch {batch:>2}: {tokens[batch]} new tokens in {seconds[batch]:7.1f} s = {rate[batch]:6.1f} tokens/s")
    print(f"batch {args.batch_size} vs batch 1: {rate[args.batch_size] / rate[1]:.2f}x the tokens/s")
    print(f"answers identical: {rows[1] == rows[args.batch_size]}")


if __name__ == "__main__":
    main()
