"""Trained tokens per second: limacot's padding-free batches vs TRL SFTTrainer at its best settings,
same model, same examples, same epochs, batch, max length and learning rate.

Examples: LIMA train rendered with the `lima` template and the LLaMA-2 tokenizer, so the
lengths follow the real distribution (capped at --max-length, for both sides); a seeded sample
of --examples of them. Model: a small random LLaMA with LLaMA-2's vocabulary (--hidden/--layers),
or --model SPEC (e.g. embedded). Each run is its own subprocess (peak RSS is per process);
--repeats runs per side alternate (ours, TRL, TRL, ours, ...) so a load change on a shared
machine hits both sides, and each side's fastest run is compared.

TRL's defaults are not its best here: SFTConfig turns on activation (gradient) checkpointing
and bf16 autocast, and trains every token of a pre-tokenized dataset unless
`completion_only_loss=True`; padded batches in random order carry ~2-3x padding at these lengths.
Both sides get: the same precision (--precision; auto: fp32 on CPU, bf16 on a GPU), no
checkpointing, loss on the response tokens only (each side counts the labelled tokens its batches
carried; the run fails unless both equal the examples' count). TRL also gets its best batching
(--trl-batches): `padding-free` (flattened rows, position ids restarting per example: the same
block-diagonal masking as ours, so both see the same batches and report the same loss) or
`grouped` (padded, `group_by_length` sampling). What remains is TRL's own loss head (chunked
log-probs plus entropy and top-1 metrics, scoring every position on CPU). `--trl-defaults` runs
TRL with its defaults instead (still completion-only), to show what they cost.

    .venv/bin/python benchmarks/train_throughput.py [--examples 32] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
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
    from limacot.models.tokenizer_files import load_tokenizer_file

    tokenizer = load_tokenizer_file(shared / "tokenizers" / "llama2")
    prepare_tokenizer(tokenizer, get_template("lima"))
    records = read_records(shared / "lima" / "train.jsonl").records
    examples, _ = render_many(random.Random(seed).sample(records, count), tokenizer, "lima", max_length=max_length)
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]


def trained_tokens(labels) -> int:
    """Labelled tokens a causal LM predicts: the first token of an example has nothing before it."""
    return sum(label != -100 for label in labels[1:])


def make_model(args, vocab_size: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from limacot.models.loading import load_model

    torch.manual_seed(0)
    if args.model:
        model = load_model(args.model)
        model.resize_token_embeddings(vocab_size)
    else:
        heads = max(1, args.hidden // 64)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=vocab_size, hidden_size=args.hidden, intermediate_size=args.hidden * 8 // 3,
            num_hidden_layers=args.layers, num_attention_heads=heads, num_key_value_heads=heads,
            max_position_embeddings=4096, use_cache=False))
    return model.to(torch.float32)  # the Trainer's bf16 flag (autocast) sets the compute precision


def trl_batches(args) -> str:
    """TRL's faster correct batching: padding-free (on 2 CPU cores it beat length-grouped padded
    batches, 54 s vs 79 s for the default run; on a GPU it is TRL's recommended mode)."""
    return "padding-free" if args.trl_batches == "auto" else args.trl_batches


def precision_of(args) -> str:
    """Both sides' precision: --precision, or auto: fp32 on CPU, bf16 autocast on a GPU."""
    if args.precision != "auto":
        return args.precision
    return "bf16" if args.device == "cuda" else "fp32"


def settings(args) -> dict:
    """What each side uses, beyond the shared model, examples and hyperparameters."""
    precision = precision_of(args)
    ours = {"precision": precision, "batches": "padding-free (DataCollatorWithFlattening)",
            "sampling": "random", "checkpointing": False, "loss": "response tokens (labels)"}
    if args.trl_defaults:
        trl = {"precision": "bf16 (TRL default)", "batches": "padded", "sampling": "random",
               "checkpointing": "True (TRL default)", "loss": "response tokens (completion_only_loss=True)"}
    else:
        batches = trl_batches(args)
        trl = {"precision": precision, "batches": batches,
               "sampling": "group_by_length" if batches == "grouped" else "random",
               "checkpointing": False, "loss": "response tokens (completion_only_loss=True)"}
    return {"ours": ours, "trl": trl}


def counting(collator, counter: list):
    """Wrap a collator to add up the labelled tokens of every batch it builds."""
    def collate(features):
        batch = collator(features)
        counter[0] += int((batch["labels"][..., 1:] != -100).sum())
        return batch
    return collate


def make_trainer(args, model, rows: list[dict], common: dict):
    import datasets

    if args.side == "ours":
        from transformers import TrainingArguments

        from limacot.train.dataset import disable_forward_cache, padding_free_collator
        from limacot.train.trainer import LimaTrainer

        disable_forward_cache(model)
        return LimaTrainer(model=model, args=TrainingArguments(**common, remove_unused_columns=False),
                           train_dataset=datasets.Dataset.from_list(rows), data_collator=padding_free_collator())
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer

    # a stand-in tokenizer: TRL only reads the pad/eos ids from it for pre-tokenized data
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1}, unk_token="<pad>")),
        pad_token="<pad>", eos_token="</s>")
    trl_rows = [{"input_ids": r["input_ids"], "completion_mask": [int(x != -100) for x in r["labels"]],
                 "length": len(r["input_ids"])} for r in rows]
    if args.trl_defaults:
        for key in ("bf16", "activation_checkpointing"):
            common.pop(key)  # TRL's: bf16 autocast and checkpointing on
        config = SFTConfig(**common, completion_only_loss=True, max_length=args.max_length)
    elif trl_batches(args) == "padding-free":
        # examples are already capped at --max-length; TRL refuses max_length with padding-free unpacked
        config = SFTConfig(**common, completion_only_loss=True, padding_free=True, max_length=None)
    else:
        config = SFTConfig(**common, completion_only_loss=True, max_length=args.max_length,
                           train_sampling_strategy="group_by_length")
    return SFTTrainer(model=model, args=config, train_dataset=datasets.Dataset.from_list(trl_rows),
                      processing_class=tokenizer)


def run_side(args) -> dict:
    """Train one side; return its measurements (printed as one JSON line)."""
    import torch

    torch.set_num_threads(args.threads)
    rows = json.loads(Path(args.examples_file).read_text())
    model = make_model(args, max(max(r["input_ids"]) for r in rows) + 2)
    cpu = args.device == "cpu"
    common = dict(output_dir=str(Path(args.workdir) / args.side), per_device_train_batch_size=args.per_device,
                  gradient_accumulation_steps=args.accumulation, num_train_epochs=args.epochs,
                  learning_rate=args.learning_rate, bf16=precision_of(args) == "bf16", activation_checkpointing=False,
                  report_to=[], save_strategy="no", eval_strategy="no", logging_steps=1000, disable_tqdm=True,
                  use_cpu=cpu, dataloader_num_workers=0, dataloader_pin_memory=not cpu, seed=0)
    trainer = make_trainer(args, model, rows, common)
    seen = [0]
    trainer.data_collator = counting(trainer.data_collator, seen)
    start = time.perf_counter()
    out = trainer.train()
    if not cpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"side": args.side, "seconds": seconds, "trained_tokens": seen[0],
            "tokens_per_second": seen[0] / seconds, "loss": out.training_loss, "steps": trainer.state.global_step,
            "bf16": bool(trainer.args.bf16), "checkpointing": bool(trainer.args.activation_checkpointing),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def versions() -> str:
    import importlib.metadata as meta

    return ", ".join(f"{name} {meta.version(name)}" for name in ("torch", "transformers", "trl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--per-device", type=int, default=8)
    parser.add_argument("--accumulation", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--model", default=None, help="a model SPEC instead of the random LLaMA (e.g. embedded)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="both sides; auto: fp32 on CPU, bf16 on a GPU")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per side")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, alternating; the fastest counts")
    parser.add_argument("--trl-batches", choices=["auto", "padding-free", "grouped"], default="auto")
    parser.add_argument("--trl-defaults", action="store_true", help="TRL with its own defaults (bf16, checkpointing)")
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
    expected = sum(trained_tokens(r["labels"]) for r in rows)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    examples_file = Path(args.workdir) / "examples.json"
    examples_file.write_text(json.dumps(rows))
    print(f"{versions()}; {os.cpu_count()} CPU cores, {args.threads} torch threads per side, device {args.device}")
    print(f"{len(rows)} LIMA examples (LLaMA-2 tokens, capped at {args.max_length}): median "
          f"{lengths[len(lengths) // 2]}, max {lengths[-1]}, {sum(lengths)} tokens, {expected} trained; "
          f"{args.epochs} epoch(s), batch {args.per_device} x {args.accumulation} accumulation, "
          f"lr {args.learning_rate}; model {args.model or f'random LLaMA h{args.hidden} L{args.layers}'}")
    for side, used in settings(args).items():
        print(f"  {side:4s} settings: " + ", ".join(f"{k} {v}" for k, v in used.items()))
    runs: dict[str, list[dict]] = {"ours": [], "trl": []}
    order = [side for i in range(args.repeats) for side in (("ours", "trl") if i % 2 == 0 else ("trl", "ours"))]
    for side in order:
        cmd = [sys.executable, __file__, *sys.argv[1:], "--side", side, "--examples-file", str(examples_file)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{side} run failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        if r["trained_tokens"] != expected * args.epochs:
            sys.exit(f"{side} trained {r['trained_tokens']} tokens, expected {expected * args.epochs}")
        runs[side].append(r)
        print(f"  {side:4s} run: {r['tokens_per_second']:7.1f} trained tokens/s ({r['trained_tokens']} in "
              f"{r['seconds']:.1f} s, {r['steps']} steps, loss {r['loss']:.4f}, bf16 {r['bf16']}, "
              f"checkpointing {r['checkpointing']}), peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    best = {side: max(rs, key=lambda r: r["tokens_per_second"]) for side, rs in runs.items()}
    for side, r in best.items():
        print(f"{side:4s} best: {r['tokens_per_second']:7.1f} trained tokens/s, {r['seconds']:.1f} s")
    ratio = best["ours"]["tokens_per_second"] / best["trl"]["tokens_per_second"]
    print(f"ratio ours / TRL: {ratio:.2f}x")


if __name__ == "__main__":
    main()
