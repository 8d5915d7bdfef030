"""`limacot eval` settings: one typed config from YAML (`--config`) and/or flags.

    # configs/eval/seed-study.yaml
    model: embedded
    tasks: [seed-study]
    num_fewshot: 5
    data_dir: ../../../shared/data     # relative to this file
    fewshot_seeds: 3

Unknown keys are errors; `data_dir` in a file is relative to that file. The resolved config is
saved as OUT/config.resolved.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from limacot.models.compute import ComputeOptions
from limacot.eval.catalog import split_names
from limacot.io.yaml_config import load_config, validate_config


class EvalConfig(ComputeOptions):
    """`limacot eval`'s settings; device / dtype / attn_implementation are `limacot.models.compute`'s."""

    model: str = Field("embedded", description="embedded | local dir | hf:org/name | file.gguf")
    tasks: list[str] = Field(..., min_length=1, description="task or group names (see `limacot eval list`)")
    num_fewshot: int | None = Field(5, ge=0, description="None: each task's own default")
    data_dir: str | None = Field(None, description="original files laid out as in ../shared/data; None: hub")
    limit: int | None = Field(None, ge=1, description="score only the first N docs of each task")
    backend: Literal["fast", "hf"] = "fast"
    fewshot_seeds: int = Field(1, ge=1, description="rerun each task with K few-shot samples")
    seed: int = Field(1234, description="first few-shot seed (lm-eval's default); then seed+1, ...")
    batch_size: int = Field(1, ge=1)
    max_length: int | None = Field(None, ge=16, description="context window; None: the model config's")
    max_gen_toks: int | None = Field(None, ge=1, description="generation cap for CoT tasks (lm-eval: 256)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; None: torch's default")

    @field_validator("tasks", mode="before")
    @classmethod
    def _split(cls, value):
        return split_names(value) if isinstance(value, (str, list)) else value

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.fewshot_seeds)]


def load_eval_config(path: str | Path | None, overrides: dict) -> EvalConfig:
    """The YAML at `path` (if any) with `overrides` (flags that were given) on top."""
    base: dict = {}
    if path is not None:
        loaded = load_config(path, _Partial)
        base = loaded.model_dump(exclude_unset=True)
        if base.get("data_dir") and not Path(base["data_dir"]).is_absolute():
            base["data_dir"] = str((Path(path).parent / base["data_dir"]).resolve())
    merged = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    return validate_config(merged, EvalConfig, origin=str(path) if path else "flags")


class _Partial(EvalConfig):
    """A config file may leave out what flags will give (tasks included)."""

    tasks: list[str] | None = None  # type: ignore[assignment]
