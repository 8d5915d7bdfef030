"""Answers from a model behind an OpenAI-compatible chat server (`openai:MODEL[@BASE_URL]`):
a reference system such as GPT-4o, written exactly like a local model's answers, so
`limacot judge --a OUT` takes it unchanged.

OUT/generations.jsonl gets one line per prompt, {"id", "prompt", "answer", "tokens",
"finish_reason"} (tokens: the completion tokens the server reported; finish_reason as the
server said it, "stop" or "length" for OpenAI), appended as replies arrive and rewritten in
prompt order at the end. OUT/settings.json records the server and model (never the key), the
prompts, the decoding settings and the exact fields sent (`request`).

Decoding, as far as the chat API allows:

    max_new_tokens      -> max_tokens
    greedy              -> temperature 0
    LIMA sampling       -> temperature 0.7, top_p 0.9 (the API has no repetition penalty: LIMA's 1.2 is
                           not applied, and a warning says so)
    seed + i            -> seed (prompt i, as local generation seeds prompt i)

Every reply is also kept in OUT/api-cache.jsonl, keyed by the server, the model and the exact
request (messages and fields), so rerunning, with or without `resume`, or resuming after
`kill -9`, asks the server nothing it has answered. Transport, retries, the key and concurrency
are `limacot.models.api`'s, the same as the API judge's.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Callable

from limacot.data.sources import read_prompts
from limacot.generate.config import GenerationSettings
from limacot.generate.generation import GENERATIONS, check_unique_ids, merge_output, resumable_rows, start_output
from limacot.io.fingerprint import sha256_json
from limacot.io.journal import Journal
from limacot.models.api import ApiOptions, ChatClient, ReplyCache, parse_api_spec, run_all

API_CACHE = "api-cache.jsonl"
SERVER_FORMAT = "server"  # settings.json prompt_format: the server applies its own chat template

log = logging.getLogger(__name__)


def api_params(settings: GenerationSettings) -> dict:
    """The decoding fields a request carries (besides its seed), from the generation settings:

        greedy, max_new_tokens 512  -> {"max_tokens": 512, "temperature": 0}
        LIMA sampling               -> {"max_tokens": 512, "temperature": 0.7, "top_p": 0.9}
    """
    if settings.greedy:
        return {"max_tokens": settings.max_new_tokens, "temperature": 0}
    return {"max_tokens": settings.max_new_tokens, "temperature": settings.temperature, "top_p": settings.top_p}


def generate_api(spec: str, prompts_path: str | Path, out_dir: str | Path, settings: GenerationSettings,
                 options: ApiOptions = ApiOptions(), *, concurrency: int = 4, resume: bool = False,
                 limit: int | None = None, on_answer: Callable[[dict], None] | None = None,
                 client: ChatClient | None = None) -> list[dict]:
    """Answer the prompts of `prompts_path` (the first `limit`) with the API model `spec`, into
    OUT (see the module docstring); `concurrency` requests in flight. With `resume`, prompts
    already in OUT/generations.jsonl are kept (after checking that settings.json names the same
    server, model and decoding, else LimacotInputError); without it the file starts over, and the
    cache answers what was asked before. Returns every row in prompt order. A request that still
    fails after its retries raises ApiCallError once the replies in flight are written.
    `client` replaces the one `spec` and `options` make."""
    _, model, base = parse_api_spec(spec, "model")
    client = client or ChatClient(model, base, options, what="generation")
    out_dir = Path(out_dir)
    prompts = read_prompts(prompts_path)[:limit]
    check_unique_ids(prompts, prompts_path)
    params = api_params(settings)
    if not settings.greedy and settings.repetition_penalty != 1.0:
        log.warning("limacot generate: the chat API has no repetition penalty, so %s answers without LIMA's %g "
                    "(temperature %g and top_p %g are sent)", spec, settings.repetition_penalty,
                    settings.temperature, settings.top_p)
    record = {"model": client.identity(), "prompts": str(prompts_path), "prompt_format": SERVER_FORMAT,
              **settings.part(GenerationSettings).model_dump(), "request": params}
    out_dir.mkdir(parents=True, exist_ok=True)
    done = resumable_rows(out_dir, record) if resume else []
    start_output(out_dir, record, done)
    finished = {row["id"] for row in done}
    pending = [(pid, messages, {**params, "seed": settings.seed + i})
               for i, (pid, messages) in enumerate(prompts) if pid not in finished]
    cache = ReplyCache(out_dir / API_CACHE)
    try:
        with Journal(out_dir / GENERATIONS) as journal:
            made = _answer(client, pending, cache, journal, concurrency, on_answer)
    finally:
        cache.close()
    log.info("limacot generate: %d requests to %s, %d answered from the cache", made, client.endpoint,
             len(pending) - made)
    return merge_output(out_dir, [pid for pid, _ in prompts])


def _answer(client: ChatClient, pending: list[tuple[str, list, dict]], cache: ReplyCache, journal: Journal,
            concurrency: int, on_answer) -> int:
    """Write a row per pending prompt: from the cache, else asked of the server (each reply cached
    as it arrives). Returns the number of calls made."""
    keys = [sha256_json({"server": client.identity(), "messages": messages, "params": params})
            for _, messages, params in pending]

    def write(index: int, entry: dict) -> None:
        pid, messages, _ = pending[index]
        row = {"id": pid, "prompt": messages[-1]["content"], **_answer_fields(entry)}
        journal.append(row)
        if on_answer:
            on_answer(row)

    todo = []
    for index, key in enumerate(keys):
        if key in cache:
            write(index, cache.get(key))
        else:
            todo.append(index)

    def on_reply(n: int, reply) -> None:
        cache.put(keys[todo[n]], reply.text, reply.usage, reply.finish_reason)
        write(todo[n], cache.get(keys[todo[n]]))

    run_all([partial(client.complete, pending[i][1], pending[i][2]) for i in todo], on_reply, concurrency)
    return len(todo)


def _answer_fields(entry: dict) -> dict:
    """answer, tokens and finish_reason of a cached reply (tokens: the completion tokens the server
    reported, None when it did not)."""
    tokens = (entry.get("usage") or {}).get("completion_tokens")
    valid = isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0
    return {"answer": str(entry.get("text") or "").strip(), "tokens": tokens if valid else None,
            "finish_reason": entry.get("finish_reason")}
