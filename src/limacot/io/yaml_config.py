"""Typed configs from YAML: unknown keys and repeated keys are errors. Every command's config
is a `StrictModel` loaded by `load_config` (YAML first, then the flags that were given).

Paths inside a config file are relative to that file's folder: a model lists its path
fields in `PATH_FIELDS` (dotted, "*" for every key of a mapping) and `load_config`
resolves them, so the resolved config saved beside an output is self-contained.
"""

from __future__ import annotations

import re
from copy import copy
from pathlib import Path
from typing import Iterable, Mapping, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    create_model,
)

from limacot.errors import LimacotInputError
from limacot.io.config_errors import describe_errors, nested_models


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _origin: str | None = PrivateAttr(None)  # the config file it was loaded from (`load_config`)

    @property
    def origin(self) -> str:
        """Where this config came from, for error messages: its file, or 'config'."""
        return self._origin or "config"

    def part(self, model: type[Config]) -> Config:
        """The settings of `model` (a model whose fields this one has, e.g. a base class) taken
        from this config: GenerateConfig(...).part(GenerationSettings)."""
        return model.model_validate({key: getattr(self, key) for key in model.model_fields})


def model_part(name: str, model: type[BaseModel], fields: Iterable[str], *, base: type[BaseModel] | None = None,
               defaults: Mapping[str, object] | None = None, doc: str | None = None) -> type[StrictModel]:
    """A model holding `fields` of `model` as they are declared there (type, default, limits,
    description, the validators in their `Annotated` type), for a schema that embeds part of
    another: a study's `eval:` is EvalConfig's settings without `model`. `defaults` replaces a
    field's default for this use; `base` adds the fields (and validators) of another model."""
    definitions = {}
    for field in fields:
        info = copy(model.model_fields[field])
        if defaults and field in defaults:
            info.default, info.default_factory = defaults[field], None
        definitions[field] = (info.annotation, info)
    return create_model(name, __base__=base or StrictModel, __doc__=doc, **definitions)


def flag_name(model: type[BaseModel], key: str) -> str:
    """The command-line flag that sets `key` (dotted for a nested setting) of `model`: the
    field's `json_schema_extra={"flag": ...}` if it names one, else `--key-with-dashes`."""
    info = None
    for part in key.split("."):
        nested = nested_models(model if info is None else info.annotation)
        info = nested[0].model_fields.get(part) if nested else None
        if info is None:
            break
    extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("flag") or "--" + key.rpartition(".")[2].replace("_", "-"))


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


def load_config(path: str | Path | None, model: type[Config], flags: Mapping[str, object] | None = None, *,
                required: Iterable[str] = ()) -> Config:
    """The one way every command reads its settings: the YAML at `path` (optional; paths in it are
    relative to it), then the `flags` that were given on top, validated once against `model`.

    `flags` maps config keys to flag values, None for a flag that was not given; a dotted key
    sets a nested one ({"launcher.kind": "slurm"}). Messages name each flag as `flag_name` does.
    `required` lists keys the command needs given (by the file or a flag) although the model
    has a default.

    Any problem is a LimacotInputError naming where the bad value came from, the file and its key
    or the flag:  `gen.yaml: top_p: unknown key; valid keys: ...; --max-new-tokens: expected
    greater than or equal to 1 (got 0)`."""
    flags = flags or {}
    given = {key: value for key, value in flags.items() if value is not None}
    names = {key: flag_name(model, key) for key in flags}
    raw = {} if path is None else _read_yaml(Path(path), getattr(model, "PATH_FIELDS", ()))
    for key, value in given.items():
        _set_dotted(raw, key, value)
    try:
        config = model.model_validate(raw)
    except ValidationError as err:
        raise LimacotInputError(_describe_by_origin(err, model, path, given, names)) from None
    missing = [key for key in required if key not in config.model_fields_set]
    if missing:
        raise LimacotInputError("; ".join(_missing_text(key, path, names) for key in missing))
    if isinstance(config, StrictModel) and path is not None:
        config._origin = str(path)
    return config


def _read_yaml(path: Path, fields: tuple[str, ...]) -> dict:
    """The mapping in the YAML file at `path`, its path `fields` resolved relative to the file."""
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
    return _resolve_paths(raw, path.parent, fields)


def _set_dotted(raw: dict, key: str, value: object) -> None:
    """raw["launcher"]["kind"] = value for key "launcher.kind"; a file value that is no mapping
    where a mapping is needed is left for validation to report."""
    *parents, last = key.split(".")
    for part in parents:
        raw = raw.setdefault(part, {})
        if not isinstance(raw, dict):
            return
    raw[last] = value


def _describe_by_origin(err: ValidationError, model: type[BaseModel], path: str | Path | None, given: Mapping,
                        names: Mapping[str, str]) -> str:
    """The errors grouped by where the value came from: each flag, else the file (else the flags
    together, for a problem of several settings at once)."""
    by_flag: dict[str, list[dict]] = {}
    from_file, missing, overall = [], [], []
    for error in err.errors():
        loc = tuple(error["loc"])
        flag = next((k for k in given if loc[:len(k.split("."))] == tuple(k.split("."))), None)
        if flag is not None:
            by_flag.setdefault(flag, []).append({**error, "loc": loc[len(flag.split(".")):]})
        elif error["type"] == "missing" and ".".join(map(str, loc)) in names:
            missing.append(".".join(map(str, loc)))
        else:
            (from_file if loc else overall).append(error)
    flags_given = ", ".join(names[key] for key in given)
    problems = [f"{path if path is not None else 'flags'}: {describe_errors(from_file, model)}"] if from_file else []
    problems += [_missing_text(key, path, names) for key in missing]
    problems += [f"{_flag_text(key, names)}: {describe_errors(errors, model)}" for key, errors in by_flag.items()]
    if overall:
        origin = " with ".join(str(o) for o in (path, flags_given) if o) or "config"
        problems.append(f"{origin}: {describe_errors(overall, model)}")
    return "; ".join(problems)


def _flag_text(key: str, names: Mapping[str, str]) -> str:
    """'--max-new-tokens'; a flag not named after its key says which key it sets: '--processes
    (launcher.processes)'."""
    return names[key] if names[key] == "--" + key.replace("_", "-") else f"{names[key]} ({key})"


def _missing_text(key: str, path: str | Path | None, names: Mapping[str, str]) -> str:
    flag = names.get(key)
    if path is not None:
        return f"{path}: {key}: required key missing" + (f" (or give {flag})" if flag else "")
    return f"{flag} is required (or `{key}:` in a --config YAML)" if flag else f"{key}: required key missing"


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, as saved beside every output."""
    return yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
