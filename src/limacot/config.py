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
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from limacot.config_errors import describe_errors
from limacot.errors import LimacotInputError

Size = Union[int, Literal["all"]]
MixAmount = Union[int, float, Literal["all"]]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _origin: str | None = PrivateAttr(None)  # the config file it was loaded from (`load_config`)

    @property
    def origin(self) -> str:
        """Where this config came from, for error messages: its file, or 'config'."""
        return self._origin or "config"


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


def check_sizes(sizes: list) -> list:
    """Training set sizes: each a count >= 1 or 'all', none given twice (two equal sizes would
    build the same file twice; a size 0 would write an empty training file)."""
    seen: set = set()
    for size in sizes:
        if size != "all" and size < 1:
            raise ValueError(f"size {size} is not a number of records >= 1 (or 'all')")
        if size in seen:
            raise ValueError(f"size {size} is given twice in {sizes}; give each size once")
        seen.add(size)
    return sizes


def is_local_path(value: str) -> bool:
    """Whether a path field names a local file (not `embedded` or a prefixed spec such as hf:...)."""
    return value != "embedded" and not SPEC_PREFIX.match(value)


def missing_file(value: str) -> str | None:
    """Why the local file `value` cannot be read as a file (None when it can)."""
    path = Path(value)
    if path.is_file():
        return None
    return f"{value} is a folder, expected a file" if path.is_dir() else f"no such file {value}"


def missing_files(config: BaseModel, keys: tuple[str, ...]) -> list[str]:
    """'key: why' for each of `keys` (fields of `config`) that names a local file that is not there;
    None values, lists (inline prompts) and prefixed specs (hf:...) are left to their readers."""
    values = {key: getattr(config, key) for key in keys}
    return [f"{key}: {why}" for key, value in values.items()
            if isinstance(value, str) and is_local_path(value) and (why := missing_file(value))]


class VariantConfig(StrictModel):
    """A data variant: a mixture of sources (counts, 'all', or ratios summing to 1)."""

    mix: dict[str, MixAmount]
    sizes: list[Size] | None = None

    @field_validator("mix")
    @classmethod
    def _non_empty(cls, mix: dict) -> dict:
        if not mix:
            raise ValueError("a variant needs at least one source in `mix`")
        ratios = {name: v for name, v in mix.items() if isinstance(v, float)}
        if ratios and len(ratios) != len(mix):
            raise ValueError(f"{mix} mixes ratios (floats) with counts (integers or 'all'); use one kind")
        if ratios and (min(ratios.values()) < 0 or abs(sum(ratios.values()) - 1) > 1e-6):
            raise ValueError(f"ratios {ratios} must be >= 0 and sum to 1 (they sum to {sum(ratios.values()):.6g})")
        for name, value in mix.items():
            if isinstance(value, int) and value < 1:
                raise ValueError(f"{name}: {value} is not a count of records >= 1 (or 'all', or a ratio)")
        return mix

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, sizes: list | None) -> list | None:
        if sizes is not None and not sizes:
            raise ValueError("expected at least one size (or leave `sizes` out to use the top-level sizes)")
        return sizes if sizes is None else check_sizes(sizes)


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

    @field_validator("sources", "variants")
    @classmethod
    def _at_least_one(cls, value: dict, info) -> dict:
        if not value:
            example = "lima: {path: lima.jsonl}" if info.field_name == "sources" else "lima: {mix: {lima: all}}"
            raise ValueError(f"expected at least one entry, e.g. {info.field_name}: {{{example}}}")
        return value

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, sizes: list) -> list:
        if not sizes:
            raise ValueError("expected at least one size, e.g. sizes: [all] or sizes: [250, 500]")
        return check_sizes(sizes)

    @model_validator(mode="after")
    def _variants_name_known_sources(self) -> "DataBuildConfig":
        for name, variant in self.variants.items():
            unknown = sorted(set(variant.mix) - set(self.sources))
            if unknown:
                raise ValueError(f"variants.{name}.mix: names unknown source(s) {unknown}; "
                                 f"defined sources: {sorted(self.sources)}")
            if any(isinstance(v, float) for v in variant.mix.values()) and \
                    not any(s != "all" for s in self.sizes_for(name)):
                raise ValueError(f"variants.{name}: a ratio mix needs a numeric size (the total the ratios "
                                 f"split); its sizes are {self.sizes_for(name)}")
        return self

    @model_validator(mode="after")
    def _input_files_exist(self) -> "DataBuildConfig":
        """Every local input is a file now, before any of them is read (hf: specs are checked when fetched)."""
        inputs = {f"sources.{name}.path": src.path for name, src in self.sources.items()}
        if self.decontamination:
            inputs.update({f"decontamination.eval_files.{name}": path
                           for name, path in self.decontamination.eval_files.items()})
        problems = [f"{key}: {why}" for key, path in inputs.items()
                    if is_local_path(path) and (why := missing_file(path))]
        if problems:
            raise ValueError("; ".join(problems))
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
    """Read YAML at `path` into `model`; any problem is a LimacotInputError naming the file and key."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except FileNotFoundError:
        raise LimacotInputError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise LimacotInputError(f"{path}: is a folder; expected a YAML config file") from None
    except UnicodeDecodeError as err:
        raise LimacotInputError(f"{path}: not a UTF-8 text file (byte 0x{err.object[err.start]:02x} at offset "
                                f"{err.start}); expected a YAML config file") from None
    except OSError as err:
        raise LimacotInputError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    except DuplicateKeyError as err:
        raise LimacotInputError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise LimacotInputError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise LimacotInputError(f"{path}: expected a mapping of settings at the top level")
    fields = getattr(model, "PATH_FIELDS", ())
    config = validate_config(_resolve_paths(raw, path.parent, fields), model, origin=str(path))
    if isinstance(config, StrictModel):
        config._origin = str(path)
    return config


def validate_config(raw: dict, model: type[Config], origin: str = "config") -> Config:
    """`model.model_validate(raw)`; a failure is a LimacotInputError that names `origin` and each
    bad key in config terms (`sources.lima.path: ...`), never a Python class name."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise LimacotInputError(f"{origin}: {describe_errors(err, model)}") from None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, as saved beside every output."""
    return yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
