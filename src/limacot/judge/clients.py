"""Judges: an OpenAI-compatible chat server (here), or a local model (limacot.judge.local).
Both answer many requests; `limacot.judge.judges.make_judge(spec)` picks one:

    openai:MODEL[@BASE_URL]   an OpenAI-compatible /v1/chat/completions server (`limacot.models.api`:
                              the endpoint, the key from `api_key_env`, retries and backoff)
    embedded | DIR | hf:ID    a local model (limacot.models.loading specs; see limacot.judge.local)

The HTTP judge asks for temperature 0 and, unless json_mode="off", a JSON object
(`response_format`); a server that rejects that field with HTTP 400 is asked again without it
(json_mode="auto"; that resend is not a retry). Requests that still fail after the retries raise
JudgeCallError (exit 1); 400/401/403/404 are configuration errors (LimacotInputError, exit 2).
The key is never in a reply, usage record or message (see limacot.models.api).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Callable, Sequence

from limacot.judge.config import HttpOptions
from limacot.models.api import (DEFAULT_BASE_URL, RETRY_STATUS, ApiCallError, ChatClient, ChatReply, OnReply,
                                chat_endpoint, parse_api_spec, redact_value, run_all)

__all__ = ["DEFAULT_BASE_URL", "RETRY_STATUS", "HttpOptions", "JudgeCallError", "JudgeReply", "OnReply",
           "OpenAIJudge", "chat_endpoint", "parse_judge_spec", "redact_value"]

JudgeCallError = ApiCallError  # a judge request that still failed after every retry
JudgeReply = ChatReply          # a judge's reply: text and usage


def parse_judge_spec(spec: str) -> tuple[str, str, str | None]:
    """'openai:gpt-4o@http://host:8000/v1' -> ('openai', 'gpt-4o', 'http://host:8000/v1');
    'embedded' -> ('local', 'embedded', None)."""
    return parse_api_spec(spec, "judge")


class OpenAIJudge:
    """A model behind an OpenAI-compatible /v1/chat/completions endpoint, asked at `options.temperature`
    (0 unless grading samples several replies)."""

    def __init__(self, model: str, base_url: str | None = None, options: HttpOptions = HttpOptions(),
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.client = ChatClient(model, base_url, options, json_mode=options.json_mode, what="judge", sleep=sleep,
                                 clock=clock)
        self.model, self.endpoint, self.options = model, self.client.endpoint, options

    def identity(self) -> dict:
        """What the cache key and the report record about this judge (never the key)."""
        return {**self.client.identity(), "max_tokens": self.options.max_tokens,
                "temperature": self.options.temperature}

    def complete(self, messages: list[dict]) -> JudgeReply:
        """One judgment, with retries (`limacot.models.api.ChatClient.complete`)."""
        return self.client.complete(messages, {"temperature": self.options.temperature,
                                               "max_tokens": self.options.max_tokens})

    def complete_all(self, requests: Sequence[list[dict]], on_reply: OnReply, concurrency: int = 4) -> None:
        """Send every request, `concurrency` at a time; `on_reply(i, reply)` runs in this thread as
        each one finishes. On a failure, requests not yet started are cancelled, the ones in flight
        are finished and reported, then the first error is raised."""
        run_all([partial(self.complete, messages) for messages in requests], on_reply, concurrency)
