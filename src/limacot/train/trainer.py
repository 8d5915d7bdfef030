"""transformers' Trainer, configured for the recipe; one extension point overridden.

`LimaTrainer.create_scheduler`: the learning rate decays (linearly for `lima`, cosine for
`sft`) from `learning_rate` to `min_learning_rate` rather than to zero, after an optional
linear warmup. Everything else (optimizer, accumulation, loss normalisation by the number
of trained tokens in the whole effective batch, DDP/FSDP/DeepSpeed, checkpoints and resume)
is the Trainer's own; `train_from` adds one case to resume: a run that had already stopped
after its save window trains no further.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import Trainer, TrainerState, TrainingArguments
from transformers.optimization import get_wsd_schedule
from transformers.trainer_utils import TrainOutput

from limacot.models.compute import Compute
from limacot.errors import LimacotInputError
from limacot.train.callbacks import epoch_of
from limacot.train.config import TrainConfig


class LimaTrainer(Trainer):
    """Trainer whose schedule decays to `min_learning_rate` (linear or cosine), see module docstring."""

    def __init__(self, *args, decay: str = "linear", min_lr_ratio: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.decay, self.min_lr_ratio = decay, min_lr_ratio

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            warmup = self.args.get_warmup_steps(num_training_steps)
            self.lr_scheduler = get_wsd_schedule(
                optimizer or self.optimizer, num_warmup_steps=warmup, num_stable_steps=0,
                num_decay_steps=max(1, num_training_steps - warmup), decay_type=self.decay,
                min_lr_ratio=self.min_lr_ratio)
            self._created_lr_scheduler = True
        return self.lr_scheduler


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def gradient_accumulation(config: TrainConfig, world: int) -> int:
    """Micro-batches per optimizer step so that per_device x world x accumulation = effective batch."""
    per_step = config.per_device_batch_size * world
    if config.effective_batch_size % per_step:
        raise LimacotInputError(
            f"effective_batch_size {config.effective_batch_size} is not a multiple of per_device_batch_size "
            f"{config.per_device_batch_size} x {world} process(es); change one of them")
    return config.effective_batch_size // per_step


def _precision(config: TrainConfig, cuda: bool) -> dict:
    choice = config.precision
    if choice == "auto":
        choice = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def training_arguments(config: TrainConfig, compute: Compute, trainer_dir: Path, has_dev: bool) -> TrainingArguments:
    """TrainingArguments for a resolved config (see recipes.yaml for the recipe values) on
    `compute.device` (`device: cpu` trains on CPU even where there is a GPU)."""
    world, cuda = world_size(), compute.device.type == "cuda"
    if cuda and world == 1:
        torch.cuda.set_device(compute.device)  # the Trainer trains on the current CUDA device
    args = TrainingArguments(
        output_dir=str(trainer_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=gradient_accumulation(config, world),
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=config.weight_decay,
        adam_beta1=config.adam_beta1,
        adam_beta2=config.adam_beta2,
        max_grad_norm=1.0,
        logging_steps=config.logging_steps,
        save_strategy="epoch",
        save_total_limit=1,  # the latest full state, for --resume; window epochs are exported apart
        eval_strategy="epoch" if has_dev else "no",
        report_to=config.report_to,
        seed=config.seed,
        data_seed=config.seed,
        full_determinism=config.deterministic,
        activation_checkpointing=config.gradient_checkpointing,
        include_num_input_tokens_seen="all",  # batches are padding-free: all tokens are real
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,  # without it, accelerate does not set up multi-process CPU (gloo) DDP
        ddp_backend="gloo" if world > 1 and not cuda else None,
        ddp_find_unused_parameters=False if world > 1 else None,
        **_precision(config, cuda),
    )
    return args


def last_complete_checkpoint(trainer_dir: Path) -> Path | None:
    """The newest checkpoint-<step> whose trainer_state.json (written last) exists."""
    done = [p for p in trainer_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def train_from(trainer: Trainer, checkpoint: Path | None, stop_epoch: int | None) -> TrainOutput:
    """`trainer.train()`, resumed from `checkpoint` when there is one.

    A checkpoint at or after `stop_epoch` belongs to a run that had already stopped after its
    save window (and was killed later, say while answering the dev prompts): the Trainer would
    train on into the next epoch, so instead its state is read back and the save callbacks run
    again (they are idempotent: an export cut short by the kill is made now). This matches the
    Trainer's own resume of a run that finished all its steps; the train loss returned is then
    the mean of the logged losses."""
    if checkpoint is None or stop_epoch is None:
        return trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    if epoch_of(state) < stop_epoch:
        return trainer.train(resume_from_checkpoint=str(checkpoint))
    state.is_world_process_zero = trainer.is_world_process_zero()
    state.is_local_process_zero = trainer.is_local_process_zero()
    trainer.state = state
    trainer.control = trainer.callback_handler.on_save(trainer.args, state, trainer.control)
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    return TrainOutput(state.global_step, sum(losses) / len(losses) if losses else 0.0, {})
