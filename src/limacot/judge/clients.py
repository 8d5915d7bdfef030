"""Judges: an OpenAI-compatible chat server, or a local model. Both answer many requests.

    openai:MODEL[@BASE_URL]   POST BASE_URL/chat/completions (BASE_URL defaults to $OPENAI_BASE_URL,
                              else https://api.openai.com/v1; a bare http://host:port gets /v1), with
                              the key from the environment variable `api_key_env` (no key: no header,
                              which local servers such as vLLM or `transformers serve` accept)
    embedded | DIR | hf:ID    a local model (limacot.models specs; see limacot.judge.local)

The HTTP judge asks for temperature 0 and, unless json_mode="off", a JSON object
(`response_format`); a server that rejects that field with HTTP 400 is asked again without it
(json_mode="auto"). It retries 408/409/429/5xx, timeouts, dropped connections and unreadable
bodies with exponential backoff (Retry-After honoured, both capped), at most `max_retries`
times, then raises JudgeCallError (exit 1). 400/401/403/404 are configuration errors
(LimacotInputError, exit 2). The key is sent only in the Authorization header and is
removed from every message this module produces.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Sequence

from limacot.errors import LimacotInputError, redact_secrets, register_secret

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
OnReply = Callable[[int, "JudgeReply"], None]


class JudgeCallError(RuntimeError):
    """A judge request that still failed after every retry (or a server that cannot be used)."""


@dataclass(frozen=True)
class JudgeReply:
    text: str
    usage: dict | None = None


@dataclass(frozen=True)
class _Failure:
    """A failed attempt worth retrying: what happened, and the server's Retry-After if any."""

    text: str
    retry_after: float | None = None
    json_refused: bool = False


@dataclass(frozen=True)
class HttpOptions:
    """How a judge is asked: mostly the HTTP judge's transport (defaults suit a hosted API);
    `max_tokens` and `json_mode` apply to local judges too (see limacot.judge.local)."""

    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    json_mode: str = "auto"
    max_tokens: int = 256


def parse_judge_spec(spec: str) -> tuple[str, str, str | None]:
    """'openai:gpt-4o@http://host:8000/v1' -> ('openai', 'gpt-4o', 'http://host:8000/v1');
    'embedded' -> ('local', 'embedded', None)."""
    spec = spec.strip()
    if not spec.startswith("openai:"):
        return "local", spec, None
    rest = spec[len("openai:"):]
    at = rest.find("@http")
    model, base = (rest, None) if at < 0 else (rest[:at], rest[at + 1:])
    if not model.strip():
        raise LimacotInputError(f"judge '{spec}': expected openai:MODEL or openai:MODEL@BASE_URL")
    return "openai", model.strip(), base


def chat_endpoint(base_url: str | None) -> str:
    """The /chat/completions URL of `base_url` (see the module docstring)."""
    base = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LimacotInputError(f"judge base URL '{base}': expected http(s)://host[:port][/path]")
    if parts.username or parts.password or parts.query:
        raise LimacotInputError("judge base URL: put no credentials or query in the URL; the key is read from "
                                "the environment variable named by --api-key-env")
    return base + ("/v1" if parts.path in ("", "/") else "") + "/chat/completions"


class OpenAIJudge:
    """A model behind an OpenAI-compatible /v1/chat/completions endpoint."""

    def __init__(self, model: str, base_url: str | None = None, options: HttpOptions = HttpOptions(),
                 sleep: Callable[[float], None] = time.sleep):
        self.model, self.endpoint, self.options = model, chat_endpoint(base_url), options
        self._key = os.environ.get(options.api_key_env) or None
        register_secret(self._key)
        if self._key and not self._key.isprintable():
            raise LimacotInputError(f"the API key in ${options.api_key_env} contains a line break or another control "
                                    f"character (often a newline kept from the file it was read from); an HTTP "
                                    f"header cannot carry it. Set the variable to the key alone")
        self._json = options.json_mode != "off"
        self._json_lock = threading.Lock()
        self._sleep = sleep

    def identity(self) -> dict:
        """What the cache key and the report record about this judge (never the key)."""
        return {"kind": "openai", "model": self.model, "endpoint": self.endpoint,
                "max_tokens": self.options.max_tokens, "temperature": 0}

    def complete_all(self, requests: Sequence[list[dict]], on_reply: OnReply, concurrency: int = 4) -> None:
        """Send every request, `concurrency` at a time; `on_reply(i, reply)` runs in this thread as
        each one finishes. On a failure, requests not yet started are cancelled, the ones in flight
        are finished and reported, then the first error is raised."""
        failure: BaseException | None = None
        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        try:
            futures = {pool.submit(self.complete, messages): i for i, messages in enumerate(requests)}
            for future in as_completed(futures):
                try:
                    reply = future.result()
                except Exception as err:  # noqa: BLE001 -- the first one is re-raised below
                    if failure is None:
                        failure = err
                        for other in futures:
                            other.cancel()
                    continue
                on_reply(futures[future], reply)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if failure is not None:
            raise failure

    def complete(self, messages: list[dict]) -> JudgeReply:
        """One chat completion, with retries; raises JudgeCallError or LimacotInputError."""
        failure = _Failure("no attempt")
        for attempt in range(self.options.max_retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, failure.retry_after))
            outcome = self._attempt(messages)
            if isinstance(outcome, JudgeReply):
                return outcome
            if outcome.json_refused:  # the server refused response_format: ask again without it, free
                return self.complete(messages)
            failure = outcome
        raise JudgeCallError(self._redact(f"judge request to {self.endpoint} failed after "
                                          f"{self.options.max_retries + 1} attempts; last error: {failure.text}"))

    def _attempt(self, messages: list[dict]) -> JudgeReply | _Failure:
        """One HTTP request: the reply, or what went wrong in a way worth retrying."""
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.options.max_tokens}
        with self._json_lock:
            use_json = self._json
        if use_json:
            body["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(self.endpoint, data=json.dumps(body).encode("utf-8"), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout) as response:
                return self._read(response.read())
        except urllib.error.HTTPError as err:
            return self._http_error(err, use_json)
        except (TimeoutError, socket.timeout):
            return _Failure(f"no response within {self.options.timeout:g} s")
        except (urllib.error.URLError, ConnectionError, OSError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                return _Failure(f"no response within {self.options.timeout:g} s")
            return _Failure(f"connection failed ({type(reason).__name__}: {reason})")

    def _read(self, raw: bytes) -> JudgeReply | _Failure:
        try:
            data = json.loads(raw.decode("utf-8"))
            text = data["choices"][0]["message"]["content"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError):
            return _Failure(f"unreadable response body: {self._clip(raw)}")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        return JudgeReply(self._redact(text) if isinstance(text, str) else "", usage)  # a reply echoing the key

    def _http_error(self, err: urllib.error.HTTPError, used_json: bool) -> _Failure:
        try:
            detail = self._clip(err.read() if err.fp else b"")
        except (OSError, TimeoutError):
            detail = "(body unreadable)"
        if err.code == 400 and used_json and self.options.json_mode == "auto" and "response_format" in detail:
            with self._json_lock:
                self._json = False
            return _Failure("response_format refused", json_refused=True)
        if err.code in RETRY_STATUS or err.code >= 500:
            return _Failure(f"HTTP {err.code}: {detail}", _retry_after(err.headers))
        hint = {401: f"the server rejected the credentials; set the API key in ${self.options.api_key_env} "
                     f"(or name another variable with --api-key-env)",
                403: f"access denied for model '{self.model}'",
                404: f"no such endpoint or model; check the base URL ({self.endpoint}) and the model name"}
        raise LimacotInputError(self._redact(f"judge request to {self.endpoint}: HTTP {err.code}: "
                                             f"{hint.get(err.code, 'the server refused the request')} ({detail})"))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins when longer (both capped)."""
        delay = min(self.options.max_backoff, self.options.backoff * 2 ** (attempt - 1)) * random.uniform(0.75, 1.0)
        return max(delay, min(retry_after, self.options.max_backoff)) if retry_after else delay

    def _redact(self, text: str) -> str:
        return redact_secrets(text, self._key)

    def _clip(self, raw: bytes) -> str:
        """A server's body for a message: the key removed first, then shortened (a key cut in
        half by the shortening would no longer be found)."""
        return _clip(self._redact(raw.decode("utf-8", "replace")))


def _retry_after(headers) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers and headers.get("Retry-After") else None
    except ValueError:
        return None


def _clip(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "") if text else "(empty body)"


def make_judge(spec: str, options: HttpOptions = HttpOptions(), compute=None):
    """An OpenAIJudge or a LocalJudge for `spec` (see the module docstring); `compute`
    (ComputeOptions) places a local judge's model."""
    if options.json_mode not in ("auto", "on", "off"):
        raise LimacotInputError(f"--json-mode must be auto, on or off, got '{options.json_mode}'")
    kind, model, base = parse_judge_spec(spec)
    if kind == "openai":
        return OpenAIJudge(model, base, options)
    from limacot.judge.local import LocalJudge

    return LocalJudge(model, options.max_tokens, choice=options.json_mode != "off", compute=compute)
