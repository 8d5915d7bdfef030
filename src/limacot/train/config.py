"""`limacot train` configuration: a recipe's defaults, overridden by the YAML, then by flags.

    recipe: lima        # lima | sft (defaults in recipes.yaml)
    model: embedded
    data: out/data/lima+cot/1000/train.jsonl
    epochs: 15          # ... any recipe value can be overridden
    dtype: auto         # with device and attn_implementation (limacot.models.compute); auto per method: methods.py

`resolve_train_config` fills every None from the recipe; the resolved config is saved in
the run folder, so a run records every value it used.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from typing import ClassVar, Literal

import yaml
from pydantic import Field, model_validator

from limacot.models.compute import ComputeOptions
from limacot.io.yaml_config import StrictModel
from limacot.errors import LimacotInputError

log = logging.getLogger(__name__)
JUDGE_SCORERS = "limacot.judge.selection:"  # scorers that read `selection_judge:` (imported by name, never here)


class LoraSettings(StrictModel):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


class SelectionJudge(StrictModel):
    """`selection_judge:` the settings of the judge-based selection scorers. Training never imports
    the judge: the scorer, imported by name at selection time, reads this block from the run's
    config.resolved.yaml.

        selection: limacot.judge.selection:absolute_grade          # mean 1-6 grade of each epoch's dev answers
        selection_judge: {judge: "openai:gpt-4o", samples: 3}
        # or: the share of dev answers judged equal or better than fixed reference answers
        selection: limacot.judge.selection:pairwise_vs_reference
        selection_judge: {judge: "openai:gpt-4o", reference: out/dev-reference}
    """

    judge: str = Field(..., description="openai:MODEL[@BASE_URL] or a local model spec (as `limacot judge`)")
    reference: str | None = Field(None, description="pairwise_vs_reference: answers to the dev prompts (a "
                                  "`limacot generate` folder or .jsonl, the same prompt ids) to compare with")
    samples: int = Field(1, ge=1, description="absolute_grade: judge replies per answer, averaged per prompt")
    lang: Literal["auto", "en", "ko"] = "auto"
    seed: int = Field(0, description="bootstrap seed of the scores' intervals")
    concurrency: int = Field(4, ge=1)
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int | None = Field(None, ge=1, description="longest judge reply (default: the judge command's)")


class TrainConfig(ComputeOptions):
    """Every training setting. None means "the recipe's value" until resolved.
    device / dtype / attn_implementation are `limacot.models.compute`'s shared fields."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("model", "data", "dev_prompts", "dev_data", "accelerate_config",
                                              "selection_judge.judge", "selection_judge.reference")

    recipe: Literal["lima", "sft"] = Field("lima", description="lima | sft (their values: recipes.yaml)")
    model: str = Field("embedded", description="embedded | local dir | hf:org/name | file.gguf")
    data: str | None = Field(None, description="train.jsonl from `limacot data build`, or any data file")
    data_format: Literal["lima", "sharegpt", "messages", "alpaca", "kocot"] | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    cot_style: str = "ko"
    method: Literal["full", "lora", "qlora"] = Field("full", description="full | lora | qlora")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    merge: bool = Field(False, description="LoRA: merge the adapters into final/ weights")

    epochs: int | None = Field(None, ge=1, description="epochs to train (default: the recipe's)")
    max_steps: int | None = Field(None, ge=1, description="stop early after this many optimizer steps")
    learning_rate: float | None = Field(None, gt=0)
    min_learning_rate: float | None = Field(None, ge=0)
    lr_scheduler: Literal["linear", "cosine"] | None = None
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    weight_decay: float | None = Field(None, ge=0)
    adam_beta1: float | None = Field(None, ge=0, lt=1)
    adam_beta2: float | None = Field(None, ge=0, lt=1)
    effective_batch_size: int | None = Field(None, ge=1)
    per_device_batch_size: int = Field(1, ge=1)
    max_length: int | None = Field(None, ge=8)
    residual_dropout: float | None = Field(None, ge=0, lt=1)
    template: str | None = None
    save_window: tuple[int, int] | None = None
    stop_after_window: bool = Field(True, description="stop after the save window's last epoch (the schedule "
                                    "still spans all epochs, so the window's checkpoints are a full run's)")
    selection: str | None = Field(None, description="last | min_dev_loss | module:function scorer")
    selection_judge: SelectionJudge | None = Field(None, description="settings of the judge-based scorers "
                                                   "(limacot.judge.selection)")

    dev_prompts: str | list[str] | None = Field(None, description="JSONL/data file of prompts, or a list")
    dev_max_new_tokens: int = Field(256, ge=1)
    dev_batch_size: int = Field(8, ge=1, description="dev prompts answered together (answers do not depend on it)")
    dev_data: str | None = Field(None, description="held-out conversations for the dev loss")
    seed: int = Field(0, description="training seed (the Trainer's)")
    deterministic: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    logging_steps: int = Field(1, ge=1)
    report_to: list[str] = Field(default_factory=lambda: ["tensorboard"])
    accelerate_config: str | None = Field(None, description="the accelerate config this preset is launched with "
                                          "(`accelerate launch --config_file ...`); read by `limacot run`'s launchers")

    @model_validator(mode="after")
    def _window_is_ordered(self) -> "TrainConfig":
        if self.save_window and not 1 <= self.save_window[0] <= self.save_window[1]:
            raise ValueError(f"save_window must be [first, last] epochs with 1 <= first <= last, "
                             f"got {list(self.save_window)}")
        if (self.selection or "").startswith(JUDGE_SCORERS):
            judge, pairwise = self.selection_judge, self.selection.endswith(":pairwise_vs_reference")
            if judge is None:
                raise ValueError(f"selection '{self.selection}' needs a `selection_judge:` block (judge, ...)")
            if pairwise and not judge.reference:
                raise ValueError("selection pairwise_vs_reference needs `selection_judge.reference:` (answers to "
                                 "the dev prompts to compare each epoch's with)")
            if pairwise and judge.samples != 1:
                raise ValueError("selection_judge.samples is for absolute_grade (pairwise_vs_reference judges "
                                 "each pair once in each order)")
        return self


@cache
def recipe_defaults() -> dict[str, dict]:
    text = resources.files("limacot.train").joinpath("recipes.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def resolve_train_config(config: TrainConfig) -> TrainConfig:
    """Fill every unset (None) value from the recipe and check what needs a value."""
    defaults = {k: v for k, v in recipe_defaults()[config.recipe].items()
                if getattr(config, k) is None}
    resolved = config.model_copy(update={**defaults, "save_window": tuple(defaults.get(
        "save_window", config.save_window))})
    if resolved.data is None:
        raise LimacotInputError("no training data: pass --data PATH or set `data:` in the config")
    first, last = resolved.save_window
    if last > resolved.epochs:
        if config.save_window is not None:
            raise LimacotInputError(f"save_window {list(config.save_window)} ends after the last epoch "
                                    f"({resolved.epochs}); set it within 1..{resolved.epochs}")
        window = (min(first, resolved.epochs), resolved.epochs)
        log.warning("recipe %s saves at epochs %s, but this run has %d epochs: saving at epochs %s instead",
                    config.recipe, list(resolved.save_window), resolved.epochs, list(window))
        resolved = resolved.model_copy(update={"save_window": window})
    if resolved.selection == "min_dev_loss" and not resolved.dev_data:
        raise LimacotInputError("selection 'min_dev_loss' needs `dev_data:` (held-out conversations)")
    return resolved
