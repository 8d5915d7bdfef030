"""Pydantic's validation errors in config terms, for people editing a YAML file.

    sources.lima.colums: unknown key; valid keys: path, format, columns, cot_style
    sizes[0]: expected a valid integer or 'all' (got 'ten')
    variants: expected at least one entry, e.g. variants: {lima: {mix: {lima: all}}}

Keys are dotted paths with list indexes in brackets; the alternatives of a union are merged into
one phrase; Python class names (`SourceConfig`, `_Partial`) never appear.
"""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError


def describe_errors(err: ValidationError | list[dict], model: type[BaseModel]) -> str:
    """Pydantic's errors (a ValidationError, or some of its `errors()`) as `key: what was expected
    (got ...)` phrases joined by '; '.

    The alternatives of a union are merged into one phrase (`sizes[0]: expected a valid integer or
    'all' (got 'ten')`), an unknown key lists the valid keys beside it, and model class names
    (internal, e.g. `SourceConfig`) become "settings"."""
    names = _model_names(model)
    grouped: dict[str, list[dict]] = {}
    for error in (err.errors() if isinstance(err, ValidationError) else err):
        loc = _union_tags_removed(error["loc"], names)
        grouped.setdefault(_key_text(loc), []).append({**error, "loc": loc})
    problems = []
    for key, errors in grouped.items():
        texts = list(dict.fromkeys(_error_text(e, model, several=len(errors) > 1) for e in errors))
        text = " or ".join([texts[0]] + [t.removeprefix("expected ") for t in texts[1:]])
        got = errors[0].get("input")
        if (errors[0]["type"] not in ("missing", "extra_forbidden", "value_error", "assertion_error") \
                and isinstance(got, (str, int, float, bool))) or (got is None and errors[0]["type"] != "missing"):
            text += f" (got {_short(got)})"
        for name in names:
            text = re.sub(rf"\b{re.escape(name)}\b", "settings", text)
        problems.append(f"{key}: {text}" if key else text)
    return "; ".join(problems)


_TYPED_TAG = re.compile(r"[\w-]+\[.*\]")  # literal['all'], function-after[...], list[str], is-instance[...]
_SCALAR_TAGS = {"int", "float", "str", "bool", "bytes", "none", "list", "dict", "tuple", "set"}


def _union_tags_removed(loc: tuple, model_names: set[str]) -> list:
    """A pydantic error location without the parts that name a union member (not config keys):
    typed tags, model class names, and scalar type names where a key cannot be (at the end or
    before a list index), so a variant named `none` keeps its name in `variants.none.mix`."""
    kept = []
    for i, part in enumerate(loc):
        last_or_index = i == len(loc) - 1 or isinstance(loc[i + 1], int)
        if isinstance(part, str) and (_TYPED_TAG.fullmatch(part) or part in model_names
                                      or (part in _SCALAR_TAGS and last_or_index)):
            continue
        kept.append(part)
    return kept


def _key_text(loc: list) -> str:
    """('sources', 'lima', 'path') -> 'sources.lima.path'; ('sizes', 0) -> 'sizes[0]'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _error_text(error: dict, model: type[BaseModel], several: bool) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return "required key missing"
    if kind == "extra_forbidden":
        valid = _valid_keys(model, error["loc"][:-1])
        return "unknown key" + (f"; valid keys: {', '.join(valid)}" if valid else "")
    if kind in ("value_error", "assertion_error") and error.get("ctx", {}).get("error") is not None:
        return str(error["ctx"]["error"])
    if kind in ("model_type", "model_attributes_type", "dataclass_type"):
        return "expected a mapping of settings (key: value)"
    if kind == "dict_type":
        return "expected a mapping (key: value)"
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = error["ctx"]["min_length" if kind == "too_short" else "max_length"]
        return f"expected {bound} {limit} item{'s' * (limit != 1)}, got {error['ctx'].get('actual_length')}"
    text = message.removeprefix("Input should be ")
    if several:
        text = text.split(",")[0]  # union alternatives: keep what each expected, not why
    return "expected " + text if text != message else text


def _model_names(model: type[BaseModel]) -> set[str]:
    """The class names of `model` and every model nested in its fields."""
    names, todo = set(), [model]
    while todo:
        current = todo.pop()
        if current.__name__ in names:
            continue
        names.add(current.__name__)
        for field in current.model_fields.values():
            todo += nested_models(field.annotation)
    return names


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in nested_models(arg)]


def _valid_keys(model: type[BaseModel], loc: list) -> list[str]:
    """The keys of the settings at `loc` (the keys of `model` itself for an empty loc)."""
    current: Any = model
    for part in loc:
        nested = nested_models(current) if not (isinstance(current, type) and issubclass(current, BaseModel)) \
            else [current]
        if nested and isinstance(part, str) and part in nested[0].model_fields:
            current = nested[0].model_fields[part].annotation
            continue
        containers = [a for a in (current, *get_args(current)) if get_origin(a) in (dict, list, tuple)]
        if not containers:
            return []
        current = get_args(containers[0])[-1 if get_origin(containers[0]) is dict else 0]
    found = nested_models(current)
    return list(found[0].model_fields) if found else []
