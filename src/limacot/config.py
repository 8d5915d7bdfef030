"""Typed configs: YAML in, unknown keys are errors. Stage configs that grow large live
beside their stage (`limacot.train.config`) and use the same loader.

Paths inside a config file are relative to that file's folder: a model lists its path
fields in `PATH_FIELDS` (dotted, "*" for every key of a mapping) and `load_config`
resolves them, so the resolved config saved beside an output is self-contained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from limacot.errors import LimacotInputError

Size = Union[int, Literal["all"]]
MixAmount = Union[int, float, Literal["all"]]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(StrictModel):
    """One input file (or hf: dataset) and how to read it."""

    path: str
    format: Literal["lima", "sharegpt", "messages", "alpaca", "kocot"] | None = None
    columns: dict[str, str] = Field(default_factory=dict, description="our field -> the file's column")
    cot_style: str = "ko"


class DedupConfig(StrictModel):
    exact: bool = True
    near: bool = False
    threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold")
    num_perm: int = Field(128, ge=16)
    shingle_size: int = Field(5, ge=1, description="character shingle length")


class DecontaminationConfig(StrictModel):
    eval_files: dict[str, str] = Field(default_factory=dict, description="eval set name -> file")
    ngram: int = Field(13, ge=2)
    min_words: int = Field(8, ge=1)
    remove: bool = False


class VariantConfig(StrictModel):
    """A data variant: a mixture of sources (counts, 'all', or ratios summing to 1)."""

    mix: dict[str, MixAmount]
    sizes: list[Size] | None = None

    @field_validator("mix")
    @classmethod
    def _non_empty(cls, mix: dict) -> dict:
        if not mix:
            raise ValueError("a variant needs at least one source in `mix`")
        return mix


class DataBuildConfig(StrictModel):
    """`limacot data build`: sources -> dedup -> decontamination -> variants x sizes."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("sources.*.path", "decontamination.eval_files.*")

    sources: dict[str, SourceConfig]
    variants: dict[str, VariantConfig]
    sizes: list[Size] = Field(default_factory=lambda: ["all"])
    seed: int = 0
    stratify: bool = True
    skip_bad: bool = False
    cot_styles: dict[str, str] = Field(default_factory=dict)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    decontamination: DecontaminationConfig | None = None

    @model_validator(mode="after")
    def _variants_name_known_sources(self) -> "DataBuildConfig":
        for name, variant in self.variants.items():
            unknown = sorted(set(variant.mix) - set(self.sources))
            if unknown:
                raise ValueError(f"variant '{name}' mixes unknown source(s) {unknown}; "
                                 f"defined sources: {sorted(self.sources)}")
        return self

    def sizes_for(self, variant: str) -> list[Size]:
        return self.variants[variant].sizes or self.sizes


Config = TypeVar("Config", bound=BaseModel)


SPEC_PREFIX = re.compile(r"^[A-Za-z][\w+.-]*:")  # hf:org/name, openai:gpt-4o@url, ...


def _resolve_path(value: object, base: Path) -> object:
    """A relative file path -> absolute (relative to `base`); `embedded`, prefixed specs
    (hf:..., openai:...) and absolute paths are left as they are."""
    if not isinstance(value, str) or value == "embedded" or SPEC_PREFIX.match(value) or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


def _resolve_paths(raw: object, base: Path, fields: tuple[str, ...]) -> object:
    """Resolve the dotted `fields` of `raw` ("*" matches every key of a mapping) in place."""
    for dotted in fields:
        head, _, rest = dotted.partition(".")
        if not isinstance(raw, dict) or head not in raw and head != "*":
            continue
        for key in (list(raw) if head == "*" else [head]):
            raw[key] = _resolve_paths(raw[key], base, (rest,)) if rest else _resolve_path(raw[key], base)
    return raw


class DuplicateKeyError(yaml.YAMLError):
    """A mapping of a config file gives the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (plain YAML
    keeps the last one silently: a second `lima:` variant would replace the first)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(f"key '{key}' is given twice (line {seen[key] + 1} and line "
                                        f"{key_node.start_mark.line + 1}); keep one")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path, model: type[Config]) -> Config:
    """Read YAML at `path` into `model`; any problem is a LimacotInputError naming the key."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except FileNotFoundError:
        raise LimacotInputError(f"{path}: config file not found") from None
    except DuplicateKeyError as err:
        raise LimacotInputError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise LimacotInputError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise LimacotInputError(f"{path}: expected a mapping of settings at the top level")
    fields = getattr(model, "PATH_FIELDS", ())
    return validate_config(_resolve_paths(raw, path.parent, fields), model, origin=str(path))


def validate_config(raw: dict, model: type[Config], origin: str = "config") -> Config:
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
                             for e in err.errors())
        raise LimacotInputError(f"{origin}: invalid {model.__name__}: {problems}") from None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, as saved beside every output."""
    return yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
