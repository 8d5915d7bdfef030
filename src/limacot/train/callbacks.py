"""Trainer callbacks: metrics.jsonl, the progress bar, per-epoch model exports, and the
stop after the save window.

`EpochExport` copies the model files of the checkpoint the Trainer has just saved (the
Trainer gathers sharded weights for DeepSpeed/FSDP itself) into `checkpoints/epoch-K/`
for the epochs inside the save window, atomically (a temp folder renamed into place).
A LoRA checkpoint holds only the adapter, so the export adds the model's generation config
(its stop tokens: the template's end of turn). A kill between the save and the end of its
export loses nothing: that checkpoint is the newest complete one (the Trainer rotates the
older ones away only while saving the next, after their export), so --resume starts from it
and exports it before training on; selection then checks every window epoch is there.

`StopAfterWindow` ends training after the save at the end of the window's last epoch. The
Trainer's step count and learning-rate schedule stay those of all `epochs`, so each saved
checkpoint is the one a full run would save; the later epochs, which nothing selects, are
simply not trained.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from contextlib import ExitStack
from pathlib import Path

from transformers import TrainerCallback

from limacot.io.cli_common import progress_bars

MODEL_FILES = ("*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json",
               "adapter_config.json", "tokenizer*", "special_tokens_map.json", "chat_template.jinja")


# Test-only fault injection: LIMACOT_FAULT=kill-after-checkpoint:K makes the process kill
# itself with SIGKILL (as `kill -9` would) right after the Trainer saved epoch K's checkpoint,
# before its export. Read in this one place; never set outside tests.
FAULT_ENV = "LIMACOT_FAULT"


def _fault_point(name: str, epoch: int) -> None:
    if os.environ.get(FAULT_ENV) == f"{name}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)


def epoch_of(state) -> int:
    """The (1-based) epoch that just ended, from the Trainer's fractional epoch counter."""
    return int(round(state.epoch or 0))


class MetricsWriter(TrainerCallback):
    """Appends one JSON line per logging step: step, epoch, loss, lr, grad_norm, tokens/s.

    tokens/s counts real tokens (batches are padding-free) over the wall time since the
    previous log. On resume, lines for steps after the resumed checkpoint are dropped first,
    so the file never holds a step twice.
    """

    def __init__(self, path: Path):
        self.path = path
        self._last = (0.0, 0)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= state.global_step]
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self._last = (time.perf_counter(), state.num_input_tokens_seen)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or not {"loss", "eval_loss"} & set(logs):
            return  # the end-of-training summary is in summary.json
        now, seen = time.perf_counter(), state.num_input_tokens_seen
        row = {"step": state.global_step, "epoch": round(state.epoch or 0, 4)}
        for key in ("loss", "learning_rate", "grad_norm", "eval_loss"):
            if key in logs:
                row[key] = logs[key]
        if "loss" in logs and now > self._last[0]:
            row["tokens_per_second"] = round((seen - self._last[1]) / (now - self._last[0]), 2)
            self._last = (now, seen)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class RichProgress(TrainerCallback):
    """The progress bar of the command (`progress_bars`) over optimizer steps, with epoch, real
    tokens/s and loss beside it."""

    def __init__(self):
        self._bars: ExitStack | None = None
        self._update = None
        self._start = (0.0, 0)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self._bars = ExitStack()
        self._update = self._bars.enter_context(progress_bars())
        self._update("train", state.global_step, state.max_steps)
        self._start = (time.perf_counter(), state.num_input_tokens_seen)

    def on_step_end(self, args, state, control, **kwargs):
        if self._update is None:
            return
        elapsed = max(time.perf_counter() - self._start[0], 1e-9)
        rate = (state.num_input_tokens_seen - self._start[1]) / elapsed
        loss = next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None)
        info = f"epoch {state.epoch:.2f}  {rate:,.0f} tok/s" + (f"  loss {loss:.4f}" if loss is not None else "")
        self._update("train", state.global_step, state.max_steps, info)

    def on_train_end(self, args, state, control, **kwargs):
        if self._bars is not None:
            self._bars.close()
            self._bars = self._update = None


class EpochExport(TrainerCallback):
    """After each epoch-end save inside [first, last], export the model to checkpoints/epoch-K
    (again on resume: the export of the checkpoint resumed from may not have finished)."""

    def __init__(self, checkpoints_dir: Path, window: tuple[int, int]):
        self.dir = checkpoints_dir
        self.window = window

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step:  # resumed: a kill may have cut short the export of the checkpoint resumed from
            self._export(args, state, model)

    def on_save(self, args, state, control, model=None, **kwargs):
        _fault_point("kill-after-checkpoint", epoch_of(state))
        self._export(args, state, model)

    def _export(self, args, state, model) -> None:
        epoch = epoch_of(state)
        if not state.is_world_process_zero or not self.window[0] <= epoch <= self.window[1]:
            return
        source = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        export_model_files(source, self.dir / f"epoch-{epoch}", getattr(model, "generation_config", None))


def export_model_files(source: Path, target: Path, generation_config=None) -> None:
    """Copy the model/tokenizer files of a Trainer checkpoint to `target`, atomically, adding
    `generation_config` when the checkpoint has none (a LoRA adapter)."""
    if target.exists():
        return
    if not any(source.glob("*.safetensors")):
        raise FileNotFoundError(f"{source} holds no model weights to export to {target}")
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for pattern in MODEL_FILES:
        for path in source.glob(pattern):
            shutil.copy2(path, tmp / path.name)
    if generation_config is not None and not (tmp / "generation_config.json").exists():
        generation_config.save_pretrained(tmp)
    tmp.rename(target)


class StopAfterWindow(TrainerCallback):
    """Stop once the checkpoint of epoch `last` is saved (see the module docstring)."""

    def __init__(self, last: int):
        self.last = last

    def on_save(self, args, state, control, **kwargs):
        if epoch_of(state) >= self.last:
            control.should_training_stop = True
