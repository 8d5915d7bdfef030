"""Chain-of-Thought styles: (source, rationale, target) -> assistant text.

A style is a format string kept in data (`cot_styles.yaml`, or the user's config),
not a code branch. Built-ins:

    ko           "{rationale}\\n따라서 정답은 {target}입니다."
    en           "{rationale}\\nSo the answer is {target}."
    answer-only  "{target}"            (the no-CoT ablation)

    >>> CotStyle("ko", "{rationale}\\n따라서 정답은 {target}입니다.").render(
    ...     {"rationale": "3 + 2 = 5개입니다.", "target": "5"})
    '3 + 2 = 5개입니다.\\n따라서 정답은 5입니다.'
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Mapping

import yaml

from limacot.errors import LimacotInputError

COT_FIELDS = ("source", "rationale", "target")


@dataclass(frozen=True)
class CotStyle:
    name: str
    template: str

    @property
    def fields(self) -> tuple[str, ...]:
        """The record fields this style reads, in template order (validated by `make_style`)."""
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.template) if f)

    def render(self, values: Mapping[str, str]) -> str:
        """Fill the template; values are stripped of surrounding whitespace first."""
        return self.template.format_map({k: str(values[k]).strip() for k in self.fields})


def make_style(name: str, template: str) -> CotStyle:
    """Validate a user-written style: only {source}/{rationale}/{target}, and {target} used."""
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise LimacotInputError(f"CoT style '{name}': not a valid format string ({err}): {template!r}") from None
    unknown = sorted(set(fields) - set(COT_FIELDS))
    if unknown or "" in fields:
        raise LimacotInputError(f"CoT style '{name}': unknown field(s) {unknown or ['{}']} in {template!r}; "
                                f"expected only {{source}}, {{rationale}}, {{target}}")
    if "target" not in fields:
        raise LimacotInputError(f"CoT style '{name}': the template must contain {{target}}: {template!r}")
    return CotStyle(name, template)


@cache
def builtin_styles() -> dict[str, CotStyle]:
    text = resources.files("limacot.data").joinpath("cot_styles.yaml").read_text(encoding="utf-8")
    return {name: make_style(name, tpl) for name, tpl in yaml.safe_load(text).items()}


def available_styles(extra: Mapping[str, str] | None = None) -> dict[str, CotStyle]:
    """Built-in styles plus the user's; a user style may not shadow a built-in name."""
    styles = dict(builtin_styles())
    for name, template in (extra or {}).items():
        if name in styles:
            raise LimacotInputError(f"CoT style '{name}' is built in; give your style another name")
        styles[name] = make_style(name, template)
    return styles


def get_style(name: str, extra: Mapping[str, str] | None = None) -> CotStyle:
    styles = available_styles(extra)
    if name not in styles:
        raise LimacotInputError(f"unknown CoT style '{name}'; expected one of: {', '.join(styles)}")
    return styles[name]
