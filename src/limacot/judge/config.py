"""`limacot judge` settings: one typed config from YAML (`--config`) and/or flags.

    # judge.yaml (paths relative to this file)
    judge: openai:gpt-4o              # or openai:MODEL@http://host:8000/v1, or a local model spec
    api_key_env: OPENAI_API_KEY       # the variable holding the key (never the key itself)
    concurrency: 8
    max_total_wait: 900
    resamples: 2000                   # bootstrap resamples for the 95% CI

`HttpOptions` is how a judge is asked (limacot.judge.clients); `JudgeConfig` adds the judge, the
protocol's settings and, for a local judge, where its model runs. The runs (A and the B runs)
and the output folder are the command's arguments, not settings.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field

from limacot.judge.instructions import LANGS
from limacot.models.api import ApiOptions
from limacot.models.compute import ComputeOptions

RESAMPLES = 2000  # bootstrap resamples of a B run's 95% interval, unless the config says otherwise


class HttpOptions(ApiOptions):
    """How a judge is asked: the HTTP transport (`limacot.models.api.ApiOptions`; defaults suit a
    hosted API), plus `max_tokens` and `json_mode`, which apply to local judges too (see
    limacot.judge.local)."""

    model_config = ConfigDict(frozen=True)

    json_mode: Literal["auto", "on", "off"] = Field("auto", description="auto | on: API judges are asked for JSON, "
                                                    "local judges choose 1/2/tie by likelihood; off: free text, "
                                                    "read by the parser")
    max_tokens: int = Field(256, ge=1, description="longest judge reply, in tokens (API judges and json_mode off)")
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature of API judges (0: the most "
                               "likely reply; local judges always decode greedily)")


def _known_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"expected one of {', '.join(LANGS)}, got {lang!r}")
    return lang


class JudgeConfig(HttpOptions, ComputeOptions):
    """Everything `limacot judge` takes besides the runs and OUT; device / dtype /
    attn_implementation place a local judge's model (`limacot.models.compute`)."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("judge", "cache")
    # the settings that change a judgment or its statistics (the others: how the judge is asked)
    VERDICT_FIELDS: ClassVar[tuple[str, ...]] = ("lang", "json_mode", "max_tokens", "resamples", "seed",
                                                 "min_coverage", "temperature")

    judge: str = Field("embedded", description="openai:MODEL or openai:MODEL@BASE_URL (any OpenAI-compatible "
                       "server), or a local model spec (embedded | dir | hf:org/name)")
    lang: Annotated[str, AfterValidator(_known_lang)] = Field(
        "auto", description="instruction language: auto (ko for Hangul prompts) | ko | en")
    concurrency: int = Field(4, ge=1, description="requests in flight (API) or batch size (local judge)")
    min_coverage: float = Field(1.0, ge=0, le=1, description="share of A's prompts each B run must answer (0..1); a B "
                                "run below it is refused (exit 2). Below 1, only the shared prompts are judged and "
                                "each run's coverage is reported")
    resamples: int = Field(RESAMPLES, ge=1, description="bootstrap resamples for the 95% CI",
                           json_schema_extra={"flag": "--bootstrap"})
    seed: int = Field(0, description="bootstrap seed, and the draw of the order each prompt counts in the "
                      "single-order table")
    cache: str | None = Field(None, description="judge cache file (default OUT/judge-cache.jsonl)")

    def http(self) -> HttpOptions:
        """How the judge is asked (`limacot.judge.clients`)."""
        return self.part(HttpOptions)
