"""A model behind an OpenAI-compatible chat-completions server: the transport the API judge
(`limacot.judge.clients`) and API generation (`limacot.generate.api`) share.

    openai:MODEL[@BASE_URL]   POST BASE_URL/chat/completions (BASE_URL defaults to $OPENAI_BASE_URL,
                              else https://api.openai.com/v1; a bare http://host:port gets /v1), with
                              the key from the environment variable `api_key_env` (no key: no header,
                              which local servers such as vLLM or `transformers serve` accept)

`ChatClient.complete(messages, params)` sends one request (`params`: temperature, max_tokens, ...)
and retries 408/409/429/5xx, timeouts, dropped connections and unreadable bodies (a connection
closed before the whole body arrived included) with exponential backoff (Retry-After honoured,
both capped at `max_backoff`), at most `max_retries` times and never past `max_total_wait`
seconds for one request, then raises ApiCallError (exit 1). With json_mode "auto" or "on" it
asks for a JSON object (`response_format`); with "auto" a server that rejects that field with
HTTP 400 is asked once more without it, which is not a retry. 400/401/403/404 are
configuration errors (LimacotInputError, exit 2). The key is sent only in the Authorization
header and is removed from every reply, usage record and message this module produces.

`ReplyCache` keeps every reply, keyed by the exact request, in an append-only JSONL file, so a
rerun or a resume after `kill -9` asks nothing twice. `estimate_tokens` is the token estimate a
dry run prices API calls with when no tokenizer is at hand.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from pydantic import ConfigDict, Field

from limacot.errors import LimacotInputError, redact_secrets, register_secret
from limacot.io.journal import Journal, read_journal
from limacot.io.yaml_config import StrictModel

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
API_PREFIX = "openai:"


class ApiCallError(RuntimeError):
    """A request that still failed after every retry (or a server that cannot be used)."""


@dataclass(frozen=True)
class ChatReply:
    """One chat completion: its text, the server's usage record and why it stopped ("stop",
    "length", ... as the server says; None when it does not)."""

    text: str
    usage: dict | None = None
    finish_reason: str | None = None


OnReply = Callable[[int, ChatReply], None]


class ApiOptions(StrictModel):
    """How an API server is asked (defaults suit a hosted API)."""

    model_config = ConfigDict(frozen=True)

    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    timeout: float = Field(120.0, gt=0, description="seconds to wait for one API response")
    max_retries: int = Field(5, ge=0, description="retries per request on 429/5xx/timeouts/dropped connections")
    backoff: float = Field(1.0, ge=0, description="seconds before the first retry, doubled for each next one")
    max_backoff: float = Field(30.0, ge=0, description="longest wait between two attempts, in seconds")
    max_total_wait: float = Field(600.0, ge=0, description="seconds one API request may take in all, retries and "
                                  "backoff included; no retry starts past it")


@dataclass(frozen=True)
class _Failure:
    """A failed attempt worth retrying: what happened, and the server's Retry-After if any."""

    text: str
    retry_after: float | None = None
    json_refused: bool = False


def is_api_spec(spec: str) -> bool:
    """Whether `spec` names a model behind an OpenAI-compatible server (`openai:MODEL[@BASE_URL]`)."""
    return spec.strip().startswith(API_PREFIX)


def parse_api_spec(spec: str, what: str = "model") -> tuple[str, str, str | None]:
    """'openai:gpt-4o@http://host:8000/v1' -> ('openai', 'gpt-4o', 'http://host:8000/v1');
    'embedded' -> ('local', 'embedded', None). `what` names the spec in an error."""
    spec = spec.strip()
    if not is_api_spec(spec):
        return "local", spec, None
    rest = spec[len(API_PREFIX):]
    at = rest.find("@http")
    model, base = (rest, None) if at < 0 else (rest[:at], rest[at + 1:])
    if not model.strip():
        raise LimacotInputError(f"{what} '{spec}': expected openai:MODEL or openai:MODEL@BASE_URL")
    return "openai", model.strip(), base


def chat_endpoint(base_url: str | None, what: str = "API") -> str:
    """The /chat/completions URL of `base_url` (see the module docstring)."""
    base = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LimacotInputError(f"{what} base URL '{base}': expected http(s)://host[:port][/path]")
    if parts.username or parts.password or parts.query:
        raise LimacotInputError(f"{what} base URL: put no credentials or query in the URL; the key is read from "
                                "the environment variable named by --api-key-env")
    return base + ("/v1" if parts.path in ("", "/") else "") + "/chat/completions"


class ChatClient:
    """One model behind an OpenAI-compatible /v1/chat/completions endpoint. `what` names its
    requests in messages ("judge request to ...", "generation request to ...")."""

    def __init__(self, model: str, base_url: str | None = None, options: ApiOptions = ApiOptions(), *,
                 json_mode: str = "off", what: str = "API", sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.model, self.endpoint, self.options, self.what = model, chat_endpoint(base_url, what), options, what
        self._key = os.environ.get(options.api_key_env) or None
        register_secret(self._key)
        if self._key and not self._key.isprintable():
            raise LimacotInputError(f"the API key in ${options.api_key_env} contains a line break or another control "
                                    f"character (often a newline kept from the file it was read from); an HTTP "
                                    f"header cannot carry it. Set the variable to the key alone")
        self.json_mode = json_mode
        self._json = json_mode != "off"
        self._json_lock = threading.Lock()
        self._sleep, self._clock = sleep, clock

    def identity(self) -> dict:
        """The server and model (never the key): what a cache key records about this client."""
        return {"kind": "openai", "model": self.model, "endpoint": self.endpoint}

    def complete(self, messages: list[dict], params: dict) -> ChatReply:
        """One chat completion with `params` (temperature, max_tokens, ...) in the body, with
        retries; raises ApiCallError or LimacotInputError.

        At most `max_retries + 1` attempts (plus one resend without response_format when the
        server refuses it), each wait at most `max_backoff`, and no retry whose wait would end
        more than `max_total_wait` seconds after the first attempt started."""
        start, attempts, resent = self._clock(), 0, False
        while True:
            outcome = self._attempt(messages, params)
            if isinstance(outcome, ChatReply):
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
        raise ApiCallError(self._redact(f"{self.what} request to {self.endpoint} {why}; last error: {outcome.text}"))

    def _attempt(self, messages: list[dict], params: dict) -> ChatReply | _Failure:
        """One HTTP request: the reply, or what went wrong in a way worth retrying."""
        body = {"model": self.model, "messages": messages, **params}
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

    def _read(self, raw: bytes) -> ChatReply | _Failure:
        try:
            data = json.loads(raw.decode("utf-8"))
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError):
            return _Failure(f"unreadable response body: {self._clip(raw)}")
        usage = redact_value(data["usage"], self._key) if isinstance(data.get("usage"), dict) else None
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        return ChatReply(self._redact(text) if isinstance(text, str) else "", usage,  # a reply echoing the key
                         finish if isinstance(finish, str) else None)

    def _http_error(self, err: urllib.error.HTTPError, used_json: bool) -> _Failure:
        try:
            detail = self._clip(err.read() if err.fp else b"")
        except (OSError, TimeoutError, http.client.HTTPException):
            detail = "(body unreadable)"
        if err.code == 400 and used_json and self.json_mode == "auto" and "response_format" in detail:
            with self._json_lock:
                self._json = False
            return _Failure("response_format refused", json_refused=True)
        if err.code in RETRY_STATUS or err.code >= 500:
            return _Failure(f"HTTP {err.code}: {detail}", _retry_after(err.headers))
        hint = {401: f"the server rejected the credentials; set the API key in ${self.options.api_key_env} "
                     f"(or name another variable with --api-key-env)",
                403: f"access denied for model '{self.model}'",
                404: f"no such endpoint or model; check the base URL ({self.endpoint}) and the model name"}
        raise LimacotInputError(self._redact(f"{self.what} request to {self.endpoint}: HTTP {err.code}: "
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


def run_all(calls: Sequence[Callable[[], ChatReply]], on_reply: OnReply, concurrency: int = 4) -> None:
    """Run every call, `concurrency` at a time; `on_reply(i, reply)` runs in this thread as each
    one finishes. On a failure, calls not yet started are cancelled, the ones in flight are
    finished and reported, then the first error is raised."""
    failure: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        futures = {pool.submit(call): i for i, call in enumerate(calls)}
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


class ReplyCache:
    """Replies by request key, backed by an append-only JSONL file (`limacot.io.journal`), one line
    per reply: {"key", "text", "usage"} (and "finish_reason" when the caller keeps it). Every
    registered secret is removed from a reply and its usage before it is stored, and from an
    older file's lines as they are read."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries = {row["key"]: _entry(row["key"], row["text"], row.get("usage"), row.get("finish_reason"))
                         for row in read_journal(self.path) if "key" in row and "text" in row}
        self._journal: Journal | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def put(self, key: str, text: str, usage: dict | None, finish_reason: str | None = None) -> None:
        entry = _entry(key, text, usage, finish_reason)
        if self._journal is None:
            self._journal = Journal(self.path)
        self._journal.append(entry)
        self._entries[key] = entry

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def _entry(key: str, text, usage, finish_reason=None) -> dict:
    """A cache line, with every registered secret removed from the reply and its usage."""
    entry = {"key": key, "text": redact_value(text), "usage": redact_value(usage)}
    return entry if finish_reason is None else {**entry, "finish_reason": finish_reason}


# --- token estimates --------------------------------------------------------------------------

CHARS_PER_TOKEN = 4.0        # English-like text: characters per token
HANGUL_TOKENS_PER_CHAR = 0.8  # Korean: tokens per Hangul character
MESSAGE_TOKENS, REQUEST_TOKENS = 4, 3  # the chat format's tokens per message and per request
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


def estimate_tokens(text: str) -> int:
    """An estimate of `text`'s tokens for a GPT-4-class tokenizer, without one: characters other
    than Hangul / 4, plus 0.8 per Hangul character, rounded up.

        estimate_tokens("What is the capital of France?")  -> 8      (30 characters / 4)
        estimate_tokens("한국의 수도는?")                    -> 6      (6 Hangul x 0.8 + 2 others / 4)

    Measured with the LLaMA-3 tokenizer (tiktoken's 100k GPT-4 vocabulary plus 28k more) on the
    shared data: LIMA's English training and test text is 4.5 characters a token (so / 4 errs
    high by about 12%); Korean math and instruction text (KoCoT-style, Ko-GSM8K) is 0.78 tokens
    per Hangul character once the other characters are counted at / 4."""
    hangul = len(_HANGUL.findall(text))
    return math.ceil((len(text) - hangul) / CHARS_PER_TOKEN + hangul * HANGUL_TOKENS_PER_CHAR)


def estimate_request_tokens(messages: Sequence[dict]) -> int:
    """`estimate_tokens` over a request's messages, plus the chat format's tokens (4 per message,
    3 per request, as the judge's dry run counts them)."""
    return REQUEST_TOKENS + sum(MESSAGE_TOKENS + estimate_tokens(m["content"]) for m in messages)


# --- helpers ----------------------------------------------------------------------------------


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
