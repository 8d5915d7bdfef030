"""The LIMA recipe, top to bottom (Zhou et al., 2023, "Training LIMA"), on transformers' Trainer.

    1. Load the backbone (float32 for full fine-tuning, a bf16 base for LoRA on a GPU, 4-bit
       for QLoRA) and its tokenizer; add the template's special tokens (LIMA's new
       end-of-turn <EOT>) and a pad token distinct from EOS, embeddings at the mean.
    2. Render the training conversations with the chat template; loss only on assistant
       tokens and their end-of-turn token.
    3. Full fine-tuning, or LoRA/QLoRA with the special-token rows still trainable.
    4. Residual dropout rising linearly with depth to p_d at the top layer.
    5. Train: AdamW (0.9, 0.95), weight decay 0.1, lr 1e-5 -> 1e-6 linear over all 15 epochs,
       no warmup, 64 sequences per step, padding-free batches, one save per epoch (resumable);
       stop after the save window's last epoch (nothing selects the later ones).
    6. For the epochs in the save window (5..10), answer the dev prompts; pick one
       checkpoint (last, min dev loss, or a scorer) and publish it as final/.

Every number comes from the resolved config (recipes.yaml, then the user's YAML, then flags).
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml
from transformers import PrinterCallback

from limacot.io.atomic import atomic_write_json, atomic_write_text
from limacot.models.compute import Compute
from limacot.io.yaml_config import dump_config
from limacot.data.records import Turn
from limacot.data.sources import prompt_entry, read_prompts
from limacot.data.templates import resolve_template
from limacot.errors import LimacotInputError
from limacot.generate.generation import GenerationSettings
from limacot.models.loading import load_model, load_tokenizer
from limacot.train import selection
from limacot.train.callbacks import EpochExport, MetricsWriter, RichProgress, StopAfterWindow, epoch_of
from limacot.train.config import TrainConfig, resolve_train_config
from limacot.train.dataset import disable_forward_cache, load_training_data, padding_free_collator
from limacot.train.dropout import add_residual_dropout
from limacot.train.methods import apply_method, load_backbone, merge_adapter, training_compute
from limacot.train.tokens import setup_special_tokens
from limacot.train.trainer import LimaTrainer, last_complete_checkpoint, train_from, training_arguments

log = logging.getLogger(__name__)
CONFIG_FILE = "config.resolved.yaml"


@dataclass
class TrainResult:
    run_dir: Path
    final: Path
    selection: dict
    summary: dict


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run the recipe into `run_dir` (layout in the README); `resume` continues a killed run."""
    config = resolve_train_config(config)
    compute = training_compute(config)
    run_dir = Path(run_dir)
    _claim_run_dir(run_dir, config, resume)

    # 1. Backbone (device, dtype and attention from the config), tokenizer, special tokens.
    model = load_backbone(config, compute)
    tokenizer = load_tokenizer(config.model)
    template = resolve_template(config.template, tokenizer)
    tokens = setup_special_tokens(model, tokenizer, template)
    tokenizer.chat_template = template.jinja  # saved with every checkpoint: serve as trained

    # 2. Data, rendered with the template (assistant tokens + end of turn carry the loss).
    data_options = {"data_format": config.data_format, "columns": config.columns, "cot_style": config.cot_style}
    data = load_training_data(config.data, tokenizer, template, config.max_length, **data_options)
    dev = load_training_data(config.dev_data, tokenizer, template, config.max_length) if config.dev_data else None
    if not len(data.dataset):
        raise LimacotInputError(f"{config.data}: no example left to train on ({dict(data.dropped)})")

    # 3-4. Method and residual dropout.
    disable_forward_cache(model)
    model = apply_method(model, config, tokens.trainable_ids)
    add_residual_dropout(model, config.residual_dropout)

    # 5. Train. The schedule spans all epochs; training may stop after the save window.
    trainer_dir, stop = run_dir / "trainer", _stop_epoch(config)
    callbacks = [MetricsWriter(run_dir / "metrics.jsonl"), EpochExport(run_dir / "checkpoints", config.save_window)]
    trainer = LimaTrainer(
        model=model, args=training_arguments(config, compute, trainer_dir, has_dev=dev is not None),
        train_dataset=data.dataset, eval_dataset=dev.dataset if dev else None,
        data_collator=padding_free_collator(), processing_class=tokenizer,
        callbacks=callbacks + ([StopAfterWindow(stop)] if stop else []) + ([RichProgress()] if progress else []),
        decay=config.lr_scheduler, min_lr_ratio=config.min_learning_rate / config.learning_rate)
    trainer.remove_callback(PrinterCallback)  # progress and metrics.jsonl replace its raw dict prints
    output = train_from(trainer, last_complete_checkpoint(trainer_dir) if resume else None, stop)
    if not trainer.is_world_process_zero():
        return TrainResult(run_dir, run_dir / "final", {}, {})
    history, epochs_trained = trainer.state.log_history, round(trainer.state.epoch or 0, 4)
    window = range(config.save_window[0], min(config.save_window[1], epoch_of(trainer.state)) + 1)
    del trainer, model
    gc.collect()

    # 6. Dev answers per saved epoch (batched, on the training device), selection, final/.
    found = selection.candidates(run_dir, selection.dev_losses(history), window)
    _answer_dev_prompts(config, compute, found)
    chosen, reason, scores = selection.choose(config.selection, found)
    merge = partial(merge_adapter, dtype=compute.dtype) if config.method != "full" and config.merge else None
    final = selection.publish_final(run_dir, chosen, reason, scores, found, merge)
    summary = {"examples": len(data.dataset), "records": data.records, "dropped": dict(data.dropped),
               "tokens": data.tokens, "trained_tokens": data.trained_tokens, "added_tokens": tokens.added,
               "reinitialised_tokens": tokens.reinitialised, "train_loss": output.training_loss,
               "steps": output.global_step, "epochs_trained": epochs_trained, "epochs_scheduled": config.epochs,
               "stopped_after_window": epochs_trained == stop}
    atomic_write_json(run_dir / "summary.json", summary)
    return TrainResult(run_dir, final, selection.read_selection(run_dir), summary)


def _claim_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> None:
    """Write the resolved config; refuse to mix two different runs in one folder.
    Only the main process (RANK 0) checks and writes; the others train alongside it."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    saved = run_dir / CONFIG_FILE
    text = dump_config(config)
    if saved.exists():
        if not resume:
            raise LimacotInputError(f"{run_dir} already holds a training run; pass --resume to continue it, "
                                    "or choose another --out")
        if yaml.safe_load(saved.read_text(encoding="utf-8")) != yaml.safe_load(text):
            raise LimacotInputError(f"{run_dir}: --resume with a different config than the run's "
                                    f"{CONFIG_FILE}; resume with the same settings or use another --out")
    atomic_write_text(saved, text)


def _stop_epoch(config: TrainConfig) -> int | None:
    """The epoch after which training stops: the save window's last, when `stop_after_window`
    is on and later epochs remain (they would train weights nothing selects)."""
    last = config.save_window[1]
    return last if config.stop_after_window and last < config.epochs else None


def _answer_dev_prompts(config: TrainConfig, compute: Compute, found: list[dict]) -> None:
    """Each candidate's answers to the dev prompts, batched, on the training device and dtype."""
    prompts = _dev_prompts(config)
    settings = GenerationSettings(max_new_tokens=config.dev_max_new_tokens, seed=config.seed)
    for candidate in found if prompts else []:
        selection.generate_dev_answers(candidate, prompts, settings, config.dev_batch_size,
                                       partial(_load_candidate, compute=compute))


def _dev_prompts(config: TrainConfig) -> list[tuple[str, list[dict]]]:
    if config.dev_prompts is None:
        log.warning("no dev_prompts configured: checkpoints get no dev generations")
        return []
    if isinstance(config.dev_prompts, list):
        return [prompt_entry([Turn("user", p)]) for p in config.dev_prompts]
    return read_prompts(config.dev_prompts)


def _load_candidate(path: str, compute: Compute):
    """Model and tokenizer of an exported checkpoint (full weights, or a LoRA adapter merged
    into its base), on the run's device and dtype."""
    return load_model(path, compute), load_tokenizer(path)
