"""Progress reporting around any lm-eval model: `ProgressLM(inner, report)`.

lm-eval hands a backend all requests of one type in one call, so a caller sees nothing until
the call returns. `ProgressLM` forwards the call in chunks and reports after each one:
`report(kind, done, total)`, e.g. ("loglikelihood", 120, 480). Requests sharing a context stay
in one chunk (a multiple-choice doc is scored together); a chunk of generations holds whole
batches of the inner backend (`batch_size` each), so chunking adds no `generate` call. A backend with its own `on_progress`
hook (`FastHFLM`) gets the whole call, so its cross-doc prefix sharing is not cut by chunks.
Results are the inner backend's, in the original order; everything else (rank, tokenizer,
model info) is read from the inner backend.
"""

from __future__ import annotations

from typing import Callable

from lm_eval.api.model import LM

Report = Callable[[str, int, int], None]


class WrappedLM(LM):
    """An lm-eval model around another one: what the wrapper lacks is read from `inner`."""

    def __init__(self, inner: LM):
        super().__init__()
        self.inner = inner

    def __getattr__(self, name):  # only called for attributes the wrapper itself lacks
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def tokenizer_name(self) -> str:
        return getattr(self.inner, "tokenizer_name", "")


class ProgressLM(WrappedLM):
    """Delegates to `inner`; reports progress through `report(kind, done, total)`."""

    def __init__(self, inner: LM, report: Report, contexts_per_chunk: int = 8, generations_per_chunk: int = 4):
        super().__init__(inner)
        self.report = report
        self.contexts_per_chunk = contexts_per_chunk
        self.generations_per_chunk = generations_per_chunk

    def loglikelihood(self, requests, disable_tqdm: bool = True):
        total = len(requests)
        if hasattr(self.inner, "on_progress"):
            done = [0]

            def advance(n: int) -> None:
                done[0] += n
                self.report("loglikelihood", done[0], total)

            self.inner.on_progress = advance
            try:
                return self.inner.loglikelihood(requests, disable_tqdm=True)
            finally:
                self.inner.on_progress = None
        return self._chunked("loglikelihood", requests, _context_chunks(requests, self.contexts_per_chunk))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = True):
        chunks = [list(range(i, min(i + 8, len(requests)))) for i in range(0, len(requests), 8)]
        return self._chunked("loglikelihood_rolling", requests, chunks)

    def generate_until(self, requests, disable_tqdm: bool = True):
        size = generation_chunk(self.generations_per_chunk, getattr(self.inner, "batch_size", 1))
        chunks = [list(range(i, min(i + size, len(requests)))) for i in range(0, len(requests), size)]
        return self._chunked("generate_until", requests, chunks)

    def _chunked(self, kind: str, requests, chunks: list[list[int]]):
        results: list = [None] * len(requests)
        done = 0
        self.report(kind, 0, len(requests))
        for chunk in chunks:
            answers = getattr(self.inner, kind)([requests[i] for i in chunk], disable_tqdm=True)
            for i, answer in zip(chunk, answers):
                results[i] = answer
            done += len(chunk)
            self.report(kind, done, len(requests))
        return results


def generation_chunk(per_chunk: int, batch_size) -> int:
    """Generations per chunk: at least `per_chunk`, in whole batches of the backend.

        (4, 1) -> 4      (4, 8) -> 8      (4, 3) -> 6      (4, "auto") -> 4
    """
    batch = int(batch_size) if str(batch_size).isdigit() and int(batch_size) > 0 else 1
    return -(-max(per_chunk, batch) // batch) * batch


def _context_chunks(requests, contexts_per_chunk: int) -> list[list[int]]:
    """Request indices grouped so that equal contexts share a chunk (contexts in first-seen order)."""
    by_context: dict[str, list[int]] = {}
    for i, request in enumerate(requests):
        by_context.setdefault(str(request.args[0]), []).append(i)
    groups = list(by_context.values())
    return [sum(groups[i:i + contexts_per_chunk], []) for i in range(0, len(groups), contexts_per_chunk)]
