"""Judges: an OpenAI-compatible chat server (here), or a local model (limacot.judge.local).
Both answer many requests; `limacot.judge.judges.make_judge(spec)` picks one:

    openai:MODEL[@BASE_URL]   POST BASE_URL/chat/completions (BASE_URL defaults to $OPENAI_BASE_URL,
                              else https://api.openai.com/v1; a bare http://host:port gets /v1), with
                              the key from the environment variable `api_key_env` (no key: no header,
                              which local servers such as vLLM or `transformers serve` accept)
    embedded | DIR | hf:ID    a local model (limacot.models.loading specs; see limacot.judge.local)

The HTTP judge asks for temperature 0 and, unless json_mode="off", a JSON object
(`response_format`); a server that rejects that field with HTTP 400 is asked again without it
(json_mode="auto"). It retries 408/409/429/5xx, timeouts, dropped connections and unreadable
bodies (a connection closed before the whole body arrived included) with exponential backoff
(Retry-After honoured, both capped at `max_backoff`), at most `max_retries` times and never
past `max_total_wait` seconds for one request, then raises JudgeCallError (exit 1). A server
that refuses JSON mode is asked once more without it; that resend is not a retry.
400/401/403/404 are configuration errors (LimacotInputError, exit 2). The key is sent only
in the Authorization header and is removed from every reply, usage record and message this
module produces.
"""

from __future__ import annotations

import http.client
import json
import math
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
from limacot.judge.config import HttpOptions

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
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.model, self.endpoint, self.options = model, chat_endpoint(base_url), options
        self._key = os.environ.get(options.api_key_env) or None
        register_secret(self._key)
        if self._key and not self._key.isprintable():
            raise LimacotInputError(f"the API key in ${options.api_key_env} contains a line break or another control "
                                    f"character (often a newline kept from the file it was read from); an HTTP "
                                    f"header cannot carry it. Set the variable to the key alone")
        self._json = options.json_mode != "off"
        self._json_lock = threading.Lock()
        self._sleep, self._clock = sleep, clock

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
        """One chat completion, with retries; raises JudgeCallError or LimacotInputError.

        At most `max_retries + 1` attempts (plus one resend without response_format when the
        server refuses it), each wait at most `max_backoff`, and no retry whose wait would end
        more than `max_total_wait` seconds after the first attempt started."""
        start, attempts, resent = self._clock(), 0, False
        while True:
            outcome = self._attempt(messages)
            if isinstance(outcome, JudgeReply):
                return outcome
            if outcome.json_refused and not resent:  # asked again without response_format, free, once
                resent = True
                continue
            attempts += 1
            if attempts > self.options.max_retries:
                why = f"failed after {_count(attempts, 'attempt')}"
                break
            delay = self._delay(attempts, outcome.retry_after)
            elapsed = self._clock() - start
            if elapsed + delay > self.options.max_total_wait:
                why = (f"gave up after {_count(attempts, 'attempt')} in {elapsed:.3g} s (another would pass "
                       f"--max-total-wait {self.options.max_total_wait:g} s)")
                break
            self._sleep(delay)
        raise JudgeCallError(self._redact(f"judge request to {self.endpoint} {why}; last error: {outcome.text}"))

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
        except http.client.IncompleteRead as err:  # the connection closed before the whole body arrived
            return _Failure(f"connection dropped mid-response ({len(err.partial)} bytes received, "
                            f"{err.expected if err.expected is not None else 'more'} more expected)")
        except http.client.HTTPException as err:  # a malformed status line or header: not OSError
            return _Failure(f"broken response ({type(err).__name__}: {_clip(self._redact(str(err)))})")
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
        usage = redact_value(data["usage"], self._key) if isinstance(data.get("usage"), dict) else None
        return JudgeReply(self._redact(text) if isinstance(text, str) else "", usage)  # a reply echoing the key

    def _http_error(self, err: urllib.error.HTTPError, used_json: bool) -> _Failure:
        try:
            detail = self._clip(err.read() if err.fp else b"")
        except (OSError, TimeoutError, http.client.HTTPException):
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
        growth = self.options.backoff * 2 ** min(attempt - 1, 60)  # the power capped: no float overflow
        delay = min(self.options.max_backoff, growth) * random.uniform(0.75, 1.0)
        return max(delay, min(retry_after, self.options.max_backoff)) if retry_after else delay

    def _redact(self, text: str) -> str:
        return redact_secrets(text, self._key)

    def _clip(self, raw: bytes) -> str:
        """A server's body for a message: the key removed first, then shortened (a key cut in
        half by the shortening would no longer be found)."""
        return _clip(self._redact(raw.decode("utf-8", "replace")))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _retry_after(headers) -> float | None:
    """The Retry-After header in seconds; None when absent or not a finite number >= 0 (an HTTP
    date is not read: the backoff applies)."""
    try:
        seconds = float(headers.get("Retry-After")) if headers and headers.get("Retry-After") else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def redact_value(value, *extra: str | None):
    """`value` (JSON-like: dicts, lists, strings, numbers) with every string passed through
    `redact_secrets`: {"note": "key sk-abc123456789"} -> {"note": "key sk-***"}."""
    if isinstance(value, str):
        return redact_secrets(value, *extra)
    if isinstance(value, dict):
        return {redact_secrets(str(k), *extra): redact_value(v, *extra) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item, *extra) for item in value]
    return value


def _clip(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "") if text else "(empty body)"

