"""Time a local judge's choice mode: the three verdict options ("1", "2", "tie") scored as three
whole sequences per prompt in one padded batch (the plain way, and limacot's before) against the
prompt run once into a KV cache with each option's few tokens on top (`limacot.judge.local`).

Requests: real pairwise-judge prompts (`limacot.judge.instructions.judge_messages`) built from
the bundled dev prompts with two answers each, taken from the LIMA sample's assistant turns, so
a request is about as long as the demo's (1,000 tokens with the embedded model). Both sides
score the same batches (B requests at a time, the order of the sides rotated each batch); wall
and CPU time are summed per side, and the largest log-probability difference is printed.

    .venv/bin/python benchmarks/judge_choice.py [--model embedded] [--n 8] [--batch-size 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from judge_generate import interleaved

from limacot.data.sources import read_prompts, read_records
from limacot.judge.instructions import judge_messages
from limacot.judge.local import OPTIONS, PREFIX, _common_prefix, _option_logprobs
from limacot.models.loading import load_model, load_tokenizer

REPO = Path(__file__).resolve().parents[1]


def option_ids(tokenizer, messages: list[dict]) -> list[list[int]]:
    """The token ids of the judge's reply started with each option, as the judge tokenizes them."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + PREFIX
    return [tokenizer(prompt + option + '"', add_special_tokens=False)["input_ids"] for option in OPTIONS]


def whole_sequences(model, tokenizer, rows: list[list[list[int]]]) -> list[list[float]]:
    """The plain way: every option of every request as its own sequence, left-padded in one batch,
    logits only for the last positions; each option's score is the sum over its own tokens."""
    import torch

    sequences = [ids for options in rows for ids in options]
    starts = [_common_prefix(options) for options in rows for _ in options]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(map(len, sequences))
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences])
    keep = max(len(s) - start for s, start in zip(sequences, starts)) + 1
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                       logits_to_keep=keep).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    scores = []
    for row, (s, start) in enumerate(zip(sequences, starts)):
        offset = width - len(s) - (width - keep)  # column of token j: offset + j - 1
        scores.append(float(sum(logprobs[row, offset + j - 1, s[j]] for j in range(start, len(s)))))
    return [scores[i:i + len(OPTIONS)] for i in range(0, len(scores), len(OPTIONS))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--n", type=int, default=8, help="judge requests")
    parser.add_argument("--batch-size", type=int, default=4, help="requests per forward (the judge's concurrency)")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model), load_tokenizer(args.model)
    prompts = [messages[-1]["content"] for _, messages in read_prompts(REPO / "examples/data/dev_prompts.jsonl")]
    answers = [c.turns[1].content for c in read_records(REPO / "examples/data/lima_sample.jsonl").records]
    requests = [option_ids(tokenizer, judge_messages(prompts[i % len(prompts)], answers[2 * i % len(answers)],
                                                     answers[(2 * i + 1) % len(answers)]))
                for i in range(args.n)]
    groups = [list(range(i, min(i + args.batch_size, args.n))) for i in range(0, args.n, args.batch_size)]
    scores: dict[str, dict[int, list[float]]] = {"whole": {}, "cached": {}}

    def whole(group):
        scores["whole"].update(zip(group, whole_sequences(model, tokenizer, [requests[i] for i in group])))

    def cached(group):
        shared = [min(_common_prefix(requests[i]), min(map(len, requests[i])) - 1) for i in group]
        prefixes = [requests[i][0][:k] for i, k in zip(group, shared)]
        suffixes = [[ids[k:] for ids in requests[i]] for i, k in zip(group, shared)]
        scores["cached"].update(zip(group, _option_logprobs(model, prefixes, suffixes, tokenizer)))

    tokens = sum(len(r[0]) for r in requests)
    print(f"{args.n} judge requests, {tokens / args.n:.0f} prompt tokens each on average, batch {args.batch_size}, "
          f"model {args.model}")
    totals = interleaved(groups, {"whole sequences": whole, "prompt cached": cached})
    for name, (wall, cpu) in totals.items():
        print(f"{name:<16} wall {wall:7.2f} s ({wall / args.n:5.2f} s/request)   cpu {cpu:7.2f} s")
    ratio = [totals["whole sequences"][k] / totals["prompt cached"][k] for k in (0, 1)]
    print(f"prompt cached vs whole sequences: {ratio[0]:.2f}x faster (wall), {ratio[1]:.2f}x (cpu)")
    worst = max(abs(a - b) for i in range(args.n) for a, b in zip(scores["whole"][i], scores["cached"][i]))
    same = all(max(range(3), key=scores["whole"][i].__getitem__) == max(range(3), key=scores["cached"][i].__getitem__)
               for i in range(args.n))
    print(f"largest option log-probability difference: {worst:.2e}; same verdict on every request: {same}")


if __name__ == "__main__":
    main()
