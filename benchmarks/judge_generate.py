"""Time `limacot generate`'s decoding on real test prompts: batch size 1 against batch size B
(tokens/s and the ratio), and our per-prompt-seeded sampler against transformers' own sampling
(the path it replaced; `--skip-transformers` leaves that side out).

Prompts: the first N LIMA test prompts; model: any spec (default: embedded SmolLM2-135M).
The sides are interleaved group by group (B prompts at a time, the order rotated each group)
and both wall and CPU time are summed, because a shared machine's load changes from minute to
minute. Checks that batching leaves the answers unchanged.

    .venv/bin/python benchmarks/judge_generate.py [--n 16] [--max-new-tokens 32] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from limacot.data.sources import read_prompts
from limacot.generate.generation import GenerationSettings, answer, answer_batch
from limacot.models.loading import load_model, load_tokenizer

REPO = Path(__file__).resolve().parents[1]


def hf_sampling(model, tokenizer, messages, settings: GenerationSettings, seed: int) -> int:
    """The replaced path: transformers' do_sample with a global seed, one prompt. Returns new tokens."""
    import torch
    from transformers import GenerationConfig

    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    config = GenerationConfig(max_new_tokens=settings.max_new_tokens, do_sample=True, top_p=settings.top_p,
                              temperature=settings.temperature, top_k=0,
                              repetition_penalty=settings.repetition_penalty,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = model.generate(**inputs, generation_config=config)
    return output.shape[1] - inputs["input_ids"].shape[1]


def interleaved(groups: list[list[int]], sides: dict) -> dict[str, list[float]]:
    """Run every side on every group, rotating which side goes first; [wall, cpu] seconds per side."""
    totals = {name: [0.0, 0.0] for name in sides}
    names = list(sides)
    for number, group in enumerate(groups):
        for name in names[number % len(names):] + names[:number % len(names)]:
            wall, cpu = time.perf_counter(), time.process_time()
            sides[name](group)
            totals[name][0] += time.perf_counter() - wall
            totals[name][1] += time.process_time() - cpu
        print(f"  group {number + 1}/{len(groups)}: " + ", ".join(f"{n} {t[0]:.1f} s" for n, t in totals.items()))
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--prompts", default=str(REPO.parent / "shared/data/lima/test_prompts_from_just_eval.jsonl"))
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--skip-transformers", action="store_true", help="Time only ours, batch 1 vs batch B.")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model), load_tokenizer(args.model)
    conversations = [messages for _, messages in read_prompts(args.prompts)[:args.n]]
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    groups = [list(range(i, min(i + args.batch_size, len(conversations))))
              for i in range(0, len(conversations), args.batch_size)]
    results: dict[str, dict] = {"single": {}, "batched": {}, "hf": {}}

    def one_by_one(group):
        for i in group:
            results["single"][i] = answer(model, tokenizer, conversations[i], settings, seed=i)

    def batched(group):
        rows = answer_batch(model, tokenizer, [conversations[i] for i in group], settings, seeds=group)
        results["batched"].update(zip(group, rows))

    def transformers_sampling(group):
        for i in group:
            results["hf"][i] = hf_sampling(model, tokenizer, conversations[i], settings, seed=i)

    print(f"{len(conversations)} prompts, {args.max_new_tokens} new tokens at most, model {args.model}")
    batch_name = f"ours, batch {args.batch_size}"
    sides = {"ours, batch 1": one_by_one, batch_name: batched}
    if not args.skip_transformers:
        sides["transformers do_sample, batch 1"] = transformers_sampling
    totals = interleaved(groups, sides)
    tokens = sum(r["tokens"] for r in results["single"].values())
    print(f"\nnew tokens: ours {tokens}, transformers {sum(results['hf'].values()) if results['hf'] else '-'}")
    for name, (wall, cpu) in totals.items():
        print(f"{name:<34} wall {wall:7.2f} s ({wall / len(conversations):5.2f} s/prompt)   cpu {cpu:7.2f} s"
              + (f"   {tokens / wall:6.1f} tokens/s" if name.startswith("ours") else ""))
    base = totals["ours, batch 1"]
    print(f"batch {args.batch_size} vs batch 1: {base[0] / totals[batch_name][0]:.2f}x the tokens/s (wall), "
          f"{base[1] / totals[batch_name][1]:.2f}x (cpu)")
    print(f"batched answers identical to one-by-one: {results['batched'] == results['single']}")
    if args.skip_transformers:
        return
    hf = totals["transformers do_sample, batch 1"]
    print(f"ours vs transformers sampling, batch 1: {hf[0] / base[0]:.2f}x (wall), {hf[1] / base[1]:.2f}x (cpu); "
          f">1 means ours is faster")


if __name__ == "__main__":
    main()
