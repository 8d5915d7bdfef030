"""Which judge answers: `make_judge(spec)` -> an OpenAIJudge (`openai:MODEL[@BASE_URL]`,
limacot.judge.clients) or a LocalJudge (a model spec: `embedded | DIR | hf:ID`, limacot.judge.local).

    make_judge("openai:gpt-4o@http://host:8000/v1")   -> OpenAIJudge("gpt-4o", "http://host:8000/v1")
    make_judge("embedded", HttpOptions(json_mode="off")) -> LocalJudge("embedded", 256, choice=False)
"""

from __future__ import annotations

from limacot.judge.clients import HttpOptions, OpenAIJudge, parse_judge_spec
from limacot.judge.local import LocalJudge
from limacot.models.compute import ComputeOptions


def make_judge(spec: str, options: HttpOptions = HttpOptions(), compute: ComputeOptions | None = None):
    """An OpenAIJudge or a LocalJudge for `spec` (see the module docstring); `compute`
    places a local judge's model."""
    kind, model, base = parse_judge_spec(spec)
    if kind == "openai":
        return OpenAIJudge(model, base, options)
    return LocalJudge(model, options.max_tokens, choice=options.json_mode != "off", compute=compute)
