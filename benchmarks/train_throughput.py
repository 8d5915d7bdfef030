"""Real (non-pad) training tokens per second: limacot's padding-free batches vs TRL SFTTrainer's
default padded batches, same model, same examples, same effective batch.

Examples: LIMA train rendered with the `lima` template and the LLaMA-2 tokenizer, so the
lengths follow the real distribution (capped at --max-length so it runs in minutes on CPU);
a seeded sample of --examples of them. Model: a small random LLaMA with LLaMA-2's vocabulary
(--hidden/--layers), or --model SPEC (e.g. embedded). Each side runs in its own subprocess
(peak RSS is per process) for the same number of optimizer steps.

    .venv/bin/python benchmarks/train_throughput.py [--examples 64] [--max-length 1024]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_examples(shared: Path, count: int, max_length: int, seed: int) -> list[dict]:
    from limacot.data.sources import read_records
    from limacot.data.templates import get_template, prepare_tokenizer, render_many
    from limacot.tokenizer_files import load_tokenizer_file

    tokenizer = load_tokenizer_file(shared / "tokenizers" / "llama2")
    prepare_tokenizer(tokenizer, get_template("lima"))
    records = read_records(shared / "lima" / "train.jsonl").records
    examples, _ = render_many(random.Random(seed).sample(records, count), tokenizer, "lima", max_length=max_length)
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]


def make_model(args, vocab_size: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from limacot.models import load_model

    torch.manual_seed(0)
    if args.model:
        model = load_model(args.model)
        model.resize_token_embeddings(vocab_size)
        return model
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=args.hidden, intermediate_size=args.hidden * 8 // 3,
                         num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
                         num_key_value_heads=args.hidden // 64, max_position_embeddings=4096, use_cache=False)
    return LlamaForCausalLM(config)


def run_side(args) -> dict:
    """Train one side; print its measurements as one JSON line."""
    import datasets
    import torch

    torch.set_num_threads(args.threads)
    rows = json.loads(Path(args.examples_file).read_text())
    vocab = max(max(r["input_ids"]) for r in rows) + 2
    model = make_model(args, vocab)
    common = dict(output_dir=str(Path(args.workdir) / args.side), per_device_train_batch_size=args.per_device,
                  gradient_accumulation_steps=args.accumulation, num_train_epochs=1, learning_rate=1e-5,
                  report_to=[], save_strategy="no", logging_steps=1000, disable_tqdm=True, use_cpu=True,
                  dataloader_pin_memory=False, seed=0)
    if args.side == "ours":
        from limacot.train.dataset import disable_forward_cache, padding_free_collator
        from limacot.train.trainer import LimaTrainer
        from transformers import TrainingArguments

        disable_forward_cache(model)
        trainer = LimaTrainer(model=model, args=TrainingArguments(**common, remove_unused_columns=False),
                              train_dataset=datasets.Dataset.from_list(rows), data_collator=padding_free_collator())
    else:
        from transformers import PreTrainedTokenizerFast
        from trl import SFTConfig, SFTTrainer
        from tokenizers import Tokenizer, models

        # a stand-in tokenizer object: TRL only reads pad/eos ids from it for pre-tokenized data
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1},
                                                                                         unk_token="<pad>")),
                                            pad_token="<pad>", eos_token="</s>")
        trl_rows = [{"input_ids": r["input_ids"], "completion_mask": [int(x != -100) for x in r["labels"]]}
                    for r in rows]
        trainer = SFTTrainer(model=model, args=SFTConfig(**common, max_length=None),
                             train_dataset=datasets.Dataset.from_list(trl_rows), processing_class=tokenizer)
    real_tokens = sum(len(r["input_ids"]) for r in rows)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"side": args.side, "seconds": seconds, "real_tokens": real_tokens,
            "tokens_per_second": real_tokens / seconds, "peak_rss_mb": peak_mb,
            "steps": trainer.state.global_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--per-device", type=int, default=8)
    parser.add_argument("--accumulation", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--model", default=None, help="a model SPEC instead of the random LLaMA (e.g. embedded)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--examples-file", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="/tmp/limacot-train-throughput", help="scratch folder")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args)))
        return
    rows = build_examples(args.shared_data, args.examples, args.max_length, args.seed)
    lengths = sorted(len(r["input_ids"]) for r in rows)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    examples_file = Path(args.workdir) / "examples.json"
    examples_file.write_text(json.dumps(rows))
    print(f"{len(rows)} LIMA examples (LLaMA-2 tokens, capped at {args.max_length}): median {lengths[len(lengths) // 2]}, "
          f"max {lengths[-1]}; effective batch {args.per_device * args.accumulation} "
          f"({args.per_device} x {args.accumulation}); model {args.model or f'random LLaMA h{args.hidden} L{args.layers}'}")
    results = {}
    for side in ("ours", "trl"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--side", side, "--examples-file", str(examples_file)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results[side] = json.loads(out)
        r = results[side]
        print(f"  {side:4s}: {r['tokens_per_second']:8.1f} real tokens/s ({r['real_tokens']} tokens in "
              f"{r['seconds']:.1f} s, {r['steps']} steps), peak RSS {r['peak_rss_mb']:.0f} MB")
    ratio = results["ours"]["tokens_per_second"] / results["trl"]["tokens_per_second"]
    print(f"ratio ours / TRL padded: {ratio:.2f}x (goal >= 1.5x)")


if __name__ == "__main__":
    main()
