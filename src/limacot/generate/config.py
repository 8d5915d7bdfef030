"""`limacot generate` settings: one typed config from YAML (`--config`) and/or flags.

    # generate.yaml (paths relative to this file)
    model: hf:HuggingFaceTB/SmolLM2-135M-Instruct
    prompts: dev_prompts.jsonl
    max_new_tokens: 512
    batch_size: 8
    greedy: false       # LIMA sampling: top_p 0.9, temperature 0.7, repetition_penalty 1.2
    seed: 0             # prompt i is sampled with seed + i
    dtype: bfloat16     # with device and attn_implementation (limacot.models.compute)

    # or a reference system behind an OpenAI-compatible server (limacot.generate.api):
    model: openai:gpt-4o          # openai:MODEL[@BASE_URL]
    api_key_env: OPENAI_API_KEY   # with timeout, max_retries, ... (limacot.models.api.ApiOptions)
    concurrency: 8

    # or answers made elsewhere, imported instead of generated (limacot.generate.imported):
    answers: lima-paper-answers.jsonl

`GenerationSettings` is the decoding part, which every stage that generates (dev answers in
training, a local judge) takes; `GenerateConfig` adds what the command reads, where the model
runs and, for an API model, how its server is asked.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field, model_validator

from limacot.io.yaml_config import StrictModel
from limacot.models.api import ApiOptions, is_api_spec
from limacot.models.compute import ComputeOptions


class GenerationSettings(StrictModel):
    """Decoding settings; the defaults are LIMA's sampling (top-p 0.9, temperature 0.7,
    repetition penalty 1.2). Prompt i is sampled with seed `seed + i`, so a rerun of one
    prompt gives the same answer."""

    model_config = ConfigDict(frozen=True)

    max_new_tokens: int = Field(256, ge=1, description="longest answer, in new tokens")
    greedy: bool = Field(False, description="greedy decoding instead of LIMA sampling")
    top_p: float = Field(0.9, description="sampling: the smallest set of tokens holding this much probability")
    temperature: float = Field(0.7, description="sampling temperature")
    repetition_penalty: float = Field(1.2, description="sampling: HF's penalty for tokens already in the text")
    seed: int = Field(0, description="prompt i is sampled with seed + i")

    @model_validator(mode="after")
    def _sampling(self) -> "GenerationSettings":
        if not self.greedy and (self.temperature <= 0 or not 0 < self.top_p <= 1):
            raise ValueError(f"sampling needs temperature > 0 and 0 < top_p <= 1, got temperature "
                             f"{self.temperature}, top_p {self.top_p} (use greedy decoding instead)")
        return self


class GenerateConfig(GenerationSettings, ApiOptions, ComputeOptions):
    """`limacot generate`'s settings: the model (or an answers file to import), the prompts,
    decoding, where a local model runs (device / dtype / attn_implementation are
    `limacot.models.compute`'s) and how an API model's server is asked (`limacot.models.api`)."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("model", "prompts", "answers")

    model: str = Field("embedded", description="embedded | local dir | hf:org/name | file.gguf | "
                       "openai:MODEL[@BASE_URL] (an OpenAI-compatible server)")
    prompts: str = Field(description='JSONL of {"prompt": ...}, or any data file (first user turn)')
    batch_size: int = Field(1, ge=1, description="prompts per forward pass (answers do not depend on it)")
    limit: int | None = Field(None, ge=1, description="answer only the first N prompts")
    concurrency: int = Field(4, ge=1, description="requests in flight to an openai: model's server")
    answers: str | None = Field(None, description="import this JSONL of {id, answer[, prompt]} made elsewhere "
                                "instead of generating (ids: the prompts file's)", json_schema_extra={"flag": "--import"})

    @model_validator(mode="after")
    def _model_or_answers(self) -> "GenerateConfig":
        if self.answers is not None and "model" in self.model_fields_set:
            raise ValueError("give a model to generate with or answers to import (--import), not both")
        return self

    @property
    def is_api(self) -> bool:
        """Whether the model is behind an OpenAI-compatible server (`openai:MODEL[@BASE_URL]`)."""
        return is_api_spec(self.model)
