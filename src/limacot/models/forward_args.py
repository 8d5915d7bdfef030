"""What a model's forward takes: its named parameters (through a PEFT wrapper too), and the
name under which it takes a key/value cache.

    accepts(model, "logits_to_keep")  -> True
    cache_keyword(model)              -> "cache" (transformers >= 5), "past_key_values" (earlier)

A model drops an argument name it does not know without a word, so a caller that must not lose
the cache checks the result (`limacot.eval.cachecheck.check_cache_scoring`) or compares it with
a plain forward pass in its tests.
"""

from __future__ import annotations

import inspect


def forward_params(model) -> dict:
    """The forward's named parameters; a wrapper that passes **kwargs on to a model it wraps
    (PEFT: `get_base_model()`) adds that model's."""
    try:
        params = dict(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return {}
    passes_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    base = model.get_base_model() if passes_on and hasattr(model, "get_base_model") else None
    if base is not None and base is not model:
        params = {**forward_params(base), **params}
    return params


def accepts(model, name: str) -> bool:
    """Whether `model`'s forward (or the base model a wrapper passes **kwargs to) names `name`."""
    return name in forward_params(model)


def cache_keyword(model) -> str:
    """The forward's name for the cache argument, else this transformers' (>= 5: `cache`, earlier
    `past_key_values`)."""
    params = forward_params(model)
    if "cache" in params:
        return "cache"
    if "past_key_values" in params:
        return "past_key_values"
    import transformers  # deferred: importing limacot.models must not import transformers

    return "cache" if int(transformers.__version__.split(".")[0]) >= 5 else "past_key_values"
