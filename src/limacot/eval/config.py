"""`limacot eval` settings: one typed config from YAML (`--config`) and/or flags.

    # configs/eval/seed-study.yaml
    model: embedded
    tasks: [seed-study]
    num_fewshot: 5
    data_dir: ../../../shared/data     # relative to this file
    fewshot_seeds: 3

Unknown keys are errors; `data_dir` in a file is relative to that file. The command reads the
file, then its flags, with `limacot.io.yaml_config.load_config`. The resolved config is saved as
OUT/config.resolved.yaml.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from limacot.eval.catalog import split_names
from limacot.models.compute import ComputeOptions


def _task_names(value: object) -> object:
    """'kobest, click' -> ['kobest', 'click'] (a list is split too; anything else is left to validation)."""
    return split_names(value) if isinstance(value, (str, list)) else value


class EvalConfig(ComputeOptions):
    """`limacot eval`'s settings; device / dtype / attn_implementation are `limacot.models.compute`'s."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("data_dir",)

    model: str = Field("embedded", description="embedded | local dir | hf:org/name | file.gguf")
    tasks: Annotated[list[str], BeforeValidator(_task_names)] = Field(
        ..., min_length=1, description="tasks or groups, comma-separated: kobest, seed-study, english, "
        "kmmlu_criminal_law ... (`limacot eval list`), or lm-eval's own (click, kmmlu_hard, haerae ...)")
    num_fewshot: int | None = Field(5, ge=0, description="few-shot examples per task (null: each task's own number)")
    data_dir: str | None = Field(None, description="run offline from the original files laid out as in "
                                 "../shared/data (default: hub datasets)")
    limit: int | None = Field(None, ge=1, description="score only the first N docs of each task")
    backend: Literal["fast", "hf"] = Field("fast", description="fast (prefix-shared scoring) | hf")
    fewshot_seeds: int = Field(1, ge=1, description="rerun each task with K few-shot samples; report mean ± std")
    seed: int = Field(1234, description="first few-shot seed (lm-eval's default); then seed+1, ...")
    batch_size: int = Field(1, ge=1, description="contexts per forward pass")
    max_length: int | None = Field(None, ge=16, description="context window (default: the model config's)")
    max_gen_toks: int | None = Field(None, ge=1, description="generation cap for CoT tasks (lm-eval's default: "
                                     "256)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's)")

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.fewshot_seeds)]
