"""Checkpoint selection: dev answers at each saved epoch, a policy, and `final/`.

Candidates are the exported `checkpoints/epoch-K/` folders. For each, answers to the dev
prompts are generated with LIMA's sampling, in batches, and stored in
`dev_generations/epoch-K.jsonl`; dev prompt i is sampled with seed `seed + i`, so its
answer does not depend on the batch size.
Policies: `last` (the latest epoch), `min_dev_loss` (lowest held-out loss), or a scorer
given as `module:function`, called as `function(candidates) -> {epoch: score}` (higher
is better; candidates are dicts with epoch, path, dev_loss and dev_generations, the path
of the answers file). The decision is written to `selection.json`.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Callable

from limacot.io.atomic import atomic_write_json, atomic_write_jsonl
from limacot.errors import LimacotInputError
from limacot.generate.generation import GenerationSettings, answer_batch


def dev_losses(log_history: list[dict]) -> dict[int, float]:
    """eval_loss per (rounded) epoch from the Trainer's log history."""
    return {int(round(h["epoch"])): h["eval_loss"] for h in log_history if "eval_loss" in h}


def candidates(run_dir: Path, losses: dict[int, float], expected: range) -> list[dict]:
    """The exported epochs, which must include every epoch of `expected` (the window's epochs
    that training reached): selecting among fewer would silently change the result."""
    found = sorted(run_dir.glob("checkpoints/epoch-*"), key=lambda p: int(p.name.split("-")[1]))
    missing = sorted(set(expected) - {int(p.name.split("-")[1]) for p in found})
    if missing:
        raise RuntimeError(f"{run_dir / 'checkpoints'}: no export of window epoch(s) {missing} (expected epochs "
                           f"{expected.start}..{expected.stop - 1}); refusing to select among fewer. Train again "
                           "into a new --out")
    return [{"epoch": int(p.name.split("-")[1]), "path": str(p), "dev_loss": losses.get(int(p.name.split("-")[1])),
             "dev_generations": str(run_dir / "dev_generations" / f"{p.name}.jsonl")} for p in found]


def generate_dev_answers(candidate: dict, prompts: list[tuple[str, list[dict]]], settings: GenerationSettings,
                         batch_size: int, load: Callable) -> None:
    """Answer every dev prompt with the candidate's weights (`load(path) -> (model, tokenizer)`),
    `batch_size` prompts at a time, prompt i with seed `settings.seed + i`; skipped when done."""
    out = Path(candidate["dev_generations"])
    if out.exists():
        return
    model, tokenizer = load(candidate["path"])
    rows = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        seeds = [settings.seed + start + i for i in range(len(batch))]
        replies = answer_batch(model, tokenizer, [messages for _, messages in batch], settings, seeds=seeds)
        rows += [{"id": pid, "prompt": messages[-1]["content"], **reply}
                 for (pid, messages), reply in zip(batch, replies)]
    atomic_write_jsonl(out, rows)


def _scorer(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise LimacotInputError(f"selection scorer '{spec}': expected module:function importable here ({err})") \
            from None


def choose(policy: str, found: list[dict]) -> tuple[dict, str, dict[int, float] | None]:
    """(chosen candidate, reason, scores) under `policy`."""
    if not found:
        raise LimacotInputError("no checkpoint was saved inside the save window, so there is nothing to select")
    if policy == "last":
        return found[-1], f"policy 'last': the latest saved epoch ({found[-1]['epoch']})", None
    if policy == "min_dev_loss":
        scored = [c for c in found if c["dev_loss"] is not None]
        if not scored:
            raise LimacotInputError("policy 'min_dev_loss' found no dev loss for the saved epochs")
        best = min(scored, key=lambda c: c["dev_loss"])
        return best, f"policy 'min_dev_loss': epoch {best['epoch']} has the lowest dev loss ({best['dev_loss']:.4f})", \
            {c["epoch"]: c["dev_loss"] for c in scored}
    scores = {int(k): float(v) for k, v in _scorer(policy)(found).items()}
    best = max((c for c in found if c["epoch"] in scores), key=lambda c: scores[c["epoch"]])
    return best, f"scorer '{policy}': epoch {best['epoch']} scored highest ({scores[best['epoch']]:.4f})", scores


def publish_final(run_dir: Path, chosen: dict, reason: str, scores, found: list[dict],
                  merge: Callable[[Path, Path], None] | None = None) -> Path:
    """Copy (or merge, for LoRA with --merge) the chosen checkpoint to final/; write selection.json."""
    final, tmp = run_dir / "final", run_dir / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if merge is not None:
        merge(Path(chosen["path"]), tmp)
    else:
        shutil.copytree(chosen["path"], tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    atomic_write_json(run_dir / "selection.json", {
        "chosen_epoch": chosen["epoch"], "chosen_path": chosen["path"], "reason": reason, "scores": scores,
        "candidates": found, "merged": merge is not None})
    return final


def read_selection(run_dir: Path) -> dict | None:
    path = run_dir / "selection.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() and (run_dir / "final").is_dir() else None
