"""Typed configs from YAML: unknown keys and repeated keys are errors. Every command's config
is a `StrictModel` loaded by `load_config` (YAML first, then the flags that were given).

Paths inside a config file are relative to that file's folder: a model lists its path
fields in `PATH_FIELDS` (dotted, "*" for every key of a mapping) and `load_config`
resolves them, so the resolved config saved beside an output is self-contained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
)

from limacot.errors import LimacotInputError
from limacot.io.config_errors import describe_errors


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _origin: str | None = PrivateAttr(None)  # the config file it was loaded from (`load_config`)

    @property
    def origin(self) -> str:
        """Where this config came from, for error messages: its file, or 'config'."""
        return self._origin or "config"


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
