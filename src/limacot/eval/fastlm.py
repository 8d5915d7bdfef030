"""`limacot-fast`: lm-eval's HF backend with prefix-shared loglikelihood scoring.

A multiple-choice doc sends lm-eval one loglikelihood request per choice, all with the same
context. lm-eval's `hf` backend runs the model on context+choice once per choice; this backend
runs each distinct context once, keeps its key/value cache, and scores all continuations of
that context in one batch on top of the cache. Where consecutive contexts (sorted by tokens)
share a long token prefix (MMLU's fixed 5-shot header, any `first_n` few-shot sampler), that
prefix is run once too and its cache reused. The context pass computes logits for the last
position only (`logits_to_keep`), not for the whole context.

What it returns is what `HFLM._loglikelihood_tokens` returns for the same requests: the token
sequence scored is `context_enc + continuation_enc` exactly as lm-eval tokenized it, so results
agree within floating-point noise (1e-4 in fp32). Requests the fast path cannot serve
identically go to `HFLM` unchanged: seq2seq models, models with sliding-window attention,
`loglikelihood_rolling` windows, and context+continuation longer than `max_length` (left
truncation). Generation (`generate_until`) is HFLM's own.

    before (hf):   [ctx + " A"], [ctx + " B"], [ctx + " C"], [ctx + " D"]   4 passes over ctx
    after (fast):  [ctx] -> cache;  [" A"|" B"|" C"|" D"] on the cache      1 pass over ctx

Before its first fast request the backend checks that the model really reads the cache it is
given (`limacot.eval.cachecheck`: a wrapper such as PEFT hides the forward signature, and a
model drops an argument name it does not know without a word, which would score continuations
without their context): a probe scores a few short requests on the cache and on the `hf` path.
A model that fails it, or that the fast path does not support, gets one warning and every
request goes through HFLM. Each `loglikelihood` / `loglikelihood_rolling` call ends with one
log line (INFO) counting the requests per path and why (`stats` keeps the totals):

    limacot-fast loglikelihood: 40 requests, 34 scored on shared KV caches, 6 on the hf path (longer than max_length: 6)

Usable from plain lm-eval as `--model limacot-fast` (see `limacot.eval.lm_eval_cli`); the
`pretrained` model argument also accepts limacot model specs (`embedded`, `hf:org/name`,
`model.gguf`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from limacot.eval.cachecheck import check_cache_scoring, has_sliding_window
from limacot.models.forward_args import accepts, cache_keyword
from limacot.models.loading import checkpoint_path, resolve_model_spec

log = logging.getLogger(__name__)

Request = tuple  # ((context, continuation) | None, context_enc, continuation_enc)


@dataclass
class Group:
    """One distinct context and the continuations scored after it (request indices kept)."""

    ctx: tuple[int, ...]
    conts: list[tuple[int, ...]] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)


@dataclass
class FastStats:
    """Counters a caller (or a test) can read to see what the fast path did."""

    contexts: int = 0
    continuations: int = 0
    fallback_requests: int = 0
    prefix_blocks: int = 0
    prefix_tokens_saved: int = 0
    context_tokens_run: int = 0
    fallback_reasons: Counter = field(default_factory=Counter)  # reason -> requests sent to HFLM
    refused: str | None = None  # why this model is never scored on a cache (None: it is)


@register_model("limacot-fast", "limacot_fast")
class FastHFLM(HFLM):
    """HFLM whose `_loglikelihood_tokens` shares each context (and long common prefixes).

    Extra arguments: `prefix_min_tokens` (shortest shared prefix worth its own pass, default 32;
    0 disables prefix sharing), `max_rows` (continuation rows per forward pass, default 64),
    `max_cache_tokens` (rows x cached tokens copied for one continuation pass, default 16384:
    bounds memory for long contexts on large models), `on_progress` (callable(n) told how many
    requests finished). `batch_size` is the number of contexts run together.
    """

    def __init__(self, pretrained, *, prefix_min_tokens: int = 32, max_rows: int = 64,
                 max_cache_tokens: int = 16384, on_progress: Callable[[int], None] | None = None,
                 **kwargs) -> None:
        pretrained, revision = _resolve_pretrained(pretrained)
        if revision:
            kwargs["revision"] = revision
        super().__init__(pretrained=pretrained, **kwargs)
        self.prefix_min_tokens = int(prefix_min_tokens)
        self.max_rows = int(max_rows)
        self.max_cache_tokens = int(max_cache_tokens)
        self.on_progress = on_progress
        self.stats = FastStats()
        self._cache_kw = cache_keyword(self.model)
        self._keeps_logits = accepts(self.model, "logits_to_keep")
        self._checked, self._refused = False, None  # the fast path's support for this model is decided once
        self._routes: Counter = Counter()  # this call's requests: "fast" or why they went to HFLM

    # --- lm-eval extension point ---------------------------------------------------------

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        self._routes.clear()
        results = super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        self._log_routes("loglikelihood", len(requests))
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        self._routes.clear()
        results = super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)
        self._log_routes("loglikelihood_rolling", len(requests))
        return results

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        refused = "rolling windows" if override_bs is not None else self._refusal()
        if refused:
            self._fall_back(refused, len(requests))
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        reasons = {i: why for i, (_, ctx, cont) in enumerate(requests)
                   if (why := _fallback_reason(ctx, cont, self.max_length + 1))}
        fast = [i for i in range(len(requests)) if i not in reasons]
        results: list = [None] * len(requests)
        pbar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0,
                    desc="Running loglikelihood requests (limacot-fast)")
        if reasons:
            for reason, n in Counter(reasons.values()).items():
                self._fall_back(reason, n)
            slow = sorted(reasons)
            slow_res = super()._loglikelihood_tokens([requests[i] for i in slow], disable_tqdm=True)
            for i, answer in zip(slow, slow_res):
                results[i] = answer
            self._advance(pbar, len(slow))
        self._routes["fast"] += len(fast)
        scored = self._score_fast([requests[i] for i in fast], fast, lambda n: self._advance(pbar, n),
                                  self.prefix_min_tokens)
        for request_id, answer in scored:
            results[request_id] = answer
            request_str = requests[request_id][0]
            if request_str is not None:
                self.cache_hook.add_partial("loglikelihood", request_str, answer)
        pbar.close()
        return results

    # --- the fast path ------------------------------------------------------------------

    def _refusal(self) -> str | None:
        """Why no request of this model is scored on a cache (None: they can be); decided and warned
        once. The reason is short (the summary line's); `stats.refused` gets the details."""
        if not self._checked:
            self._checked = True
            if self.backend != "causal":
                self._refused = self.stats.refused = "not a decoder-only model"
            elif has_sliding_window(getattr(self.model, "config", None)):
                self._refused = self.stats.refused = "sliding-window attention"
            else:
                counts, self.stats = self.stats, FastStats()  # the probe is not part of the eval's counts
                try:
                    details = check_cache_scoring(self)
                finally:
                    self.stats = counts
                if details:
                    self._refused, self.stats.refused = "failed the cache probe", f"failed the cache probe: {details}"
            if self._refused:
                log.warning("limacot-fast: not scoring on KV caches for this model (%s); every request goes "
                            "through lm-eval's hf path", self.stats.refused)
        return self._refused

    def _fall_back(self, reason: str, n: int) -> None:
        self.stats.fallback_requests += n
        self.stats.fallback_reasons[reason] += n
        self._routes[reason] += n

    def _log_routes(self, kind: str, n_requests: int) -> None:
        """One line per call: how many requests were scored on caches, how many went to HFLM and why
        (for loglikelihood_rolling the counts are its windows)."""
        slow = {reason: n for reason, n in self._routes.items() if reason != "fast"}
        head = f"{n_requests} requests" + (f" in {sum(self._routes.values())} windows" if "rolling" in kind else "")
        why = ", ".join(f"{reason}: {n}" for reason, n in sorted(slow.items()))
        log.info("limacot-fast %s: %s, %d scored on shared KV caches, %d on the hf path%s", kind, head,
                 self._routes["fast"], sum(slow.values()), f" ({why})" if why else "")

    def _advance(self, pbar, n: int) -> None:
        pbar.update(n)
        if self.on_progress is not None:
            self.on_progress(n)

    def _score_fast(self, requests: Sequence[Request], ids: list[int], advance: Callable[[int], None],
                    prefix_min: int):
        """Yield (request id, (logprob, is_greedy)) for requests that fit in max_length;
        `advance(n)` is told after each batch how many requests it finished."""
        groups = _group_by_context(requests, ids)
        self.stats.contexts += len(groups)
        self.stats.continuations += len(requests)
        ordered = sorted(groups, key=lambda g: g.ctx)
        for prefix_len, members in prefix_blocks([g.ctx for g in ordered], prefix_min):
            block = [ordered[i] for i in members]
            prefix = self._run_prefix(block[0].ctx[:prefix_len]) if prefix_len else None
            if prefix_len:
                self.stats.prefix_blocks += 1
                self.stats.prefix_tokens_saved += prefix_len * (len(block) - 1)
            block.sort(key=lambda g: -len(g.ctx))
            step = _groups_per_batch(self.batch_size)
            for start in range(0, len(block), step):
                batch = block[start:start + step]
                yield from self._score_batch(batch, prefix, prefix_len)
                advance(sum(len(g.conts) for g in batch))

    def _run_prefix(self, tokens: tuple[int, ...]) -> "CacheState":
        state, _ = self._forward(None, [list(tokens)], keep="none")
        self.stats.context_tokens_run += len(tokens)
        return state

    def _score_batch(self, batch: list[Group], prefix, prefix_len: int):
        """Run the contexts of `batch` (on the shared prefix), then all their continuations."""
        start = prefix.repeat(len(batch)) if prefix is not None else None
        suffixes = [list(g.ctx[prefix_len:]) for g in batch]
        self.stats.context_tokens_run += sum(len(s) for s in suffixes)
        state, last = self._forward(start, suffixes, keep="last")  # [B, V] logprobs
        rows = [(b, c) for b, g in enumerate(batch) for c in range(len(g.conts)) if len(g.conts[c]) > 1]
        tails: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        step = max(1, min(self.max_rows, self.max_cache_tokens // max(int(state.mask.shape[1]), 1)))
        for chunk_start in range(0, len(rows), step):
            chunk = rows[chunk_start:chunk_start + step]
            sub = state.select([b for b, _ in chunk])
            _, logprobs = self._forward(sub, [list(batch[b].conts[c][:-1]) for b, c in chunk], keep="all")
            for r, (b, c) in enumerate(chunk):  # keep only the picked values, not [T, vocab]
                cont = batch[b].conts[c]
                tails[(b, c)] = _pick(logprobs[r, : len(cont) - 1], cont[1:])
        for b, group in enumerate(batch):
            for c, cont in enumerate(group.conts):
                values, greedy = _pick(last[b : b + 1], cont[:1])
                if (b, c) in tails:
                    values = torch.cat([values, tails[(b, c)][0]])
                    greedy = torch.cat([greedy, tails[(b, c)][1]])
                yield group.request_ids[c], (float(values.sum()), bool(greedy.all()))

    def _forward(self, state: "CacheState | None", token_lists: list[list[int]], keep: str):
        """Append one right-padded segment to `state` (or start one) and return
        (new state, log-probs): keep="last" -> [rows, V] at each row's last real token,
        keep="all" -> [rows, T, V], keep="none" -> None."""
        device = self.device
        lengths = torch.tensor([len(t) for t in token_lists], device=device)
        width = int(lengths.max())
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(token_lists), width), pad, dtype=torch.long, device=device)
        for r, toks in enumerate(token_lists):
            ids[r, : len(toks)] = torch.tensor(toks, dtype=torch.long, device=device)
        seg_mask = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
        state = state if state is not None else CacheState.empty(len(token_lists), device)
        positions = state.lengths[:, None] + torch.arange(width, device=device)[None, :]
        mask = torch.cat([state.mask, seg_mask], dim=1)
        kwargs = {self._cache_kw: state.cache, "use_cache": True}
        last_idx = lengths - 1
        if keep != "all" and self._keeps_logits:
            keep_positions = torch.unique(last_idx) if keep == "last" else torch.tensor([width - 1], device=device)
            kwargs["logits_to_keep"] = keep_positions
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs).logits
        new_state = CacheState(state.cache, mask, state.lengths + lengths)
        if keep == "none":
            return new_state, None
        if keep == "last":
            if "logits_to_keep" in kwargs and logits.shape[1] == len(kwargs["logits_to_keep"]):
                column = torch.searchsorted(kwargs["logits_to_keep"], last_idx)
            else:
                column = last_idx
            logits = logits[torch.arange(len(token_lists), device=device), column]
        return new_state, F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)


@dataclass
class CacheState:
    """A key/value cache plus, per row, its attention mask over cached slots and its number
    of real tokens (= the position the next token of that row gets)."""

    cache: object
    mask: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def empty(cls, rows: int, device) -> "CacheState":
        from transformers import DynamicCache

        return cls(DynamicCache(), torch.zeros((rows, 0), dtype=torch.long, device=device),
                   torch.zeros(rows, dtype=torch.long, device=device))

    def select(self, rows: list[int]) -> "CacheState":
        """A new state holding copies of `rows` (this one is left untouched)."""
        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        return CacheState(_cache_rows(self.cache, index), self.mask.index_select(0, index),
                          self.lengths.index_select(0, index))

    def repeat(self, n: int) -> "CacheState":
        return self.select([0] * n)


# --- helpers (pure functions; tested directly) ---------------------------------------------

def prefix_blocks(ctxs: Sequence[tuple[int, ...]], min_tokens: int) -> list[tuple[int, list[int]]]:
    """Split token-sorted contexts into runs sharing a prefix worth computing once.

    Returns [(prefix_len, [indices])] covering every index in order. A run starts at a context
    and grows while the next context shares at least `min_tokens` tokens with the run's prefix
    and does not cut it by more than half; the prefix is always shorter than each member (each
    keeps at least one token of its own). Runs of one context get prefix 0.

        ctxs = [(1,2,3,4,9), (1,2,3,4,8), (7,7)], min_tokens=2  ->  [(4, [0, 1]), (0, [2])]
    """
    blocks: list[tuple[int, list[int]]] = []
    i, n = 0, len(ctxs)
    while i < n:
        prefix = len(ctxs[i]) - 1
        members = [i]
        j = i + 1
        while min_tokens > 0 and j < n:
            shared = min(common_prefix_len(ctxs[i], ctxs[j], prefix), len(ctxs[j]) - 1)
            if shared < min_tokens or (len(members) > 1 and shared < prefix / 2):
                break
            prefix = shared
            members.append(j)
            j += 1
        blocks.append((prefix if len(members) > 1 else 0, members))
        i = j
    return blocks


def common_prefix_len(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """Length of the common prefix of a and b, at most `limit` (binary search on slices)."""
    hi = min(limit, len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    lo = 0  # invariant: a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _group_by_context(requests: Sequence[Request], ids: list[int]) -> list[Group]:
    groups: dict[tuple[int, ...], Group] = {}
    for request_id, (_, ctx, cont) in zip(ids, requests):
        key = tuple(ctx)
        group = groups.setdefault(key, Group(key))
        group.conts.append(tuple(cont))
        group.request_ids.append(request_id)
    return list(groups.values())


def _pick(logprobs: torch.Tensor, tokens: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """From [T, V] log-probs: log p(tokens[t]) and whether tokens[t] is the argmax, per step."""
    target = torch.tensor(tokens, dtype=torch.long, device=logprobs.device)
    return logprobs.gather(1, target[:, None]).squeeze(1), logprobs.argmax(dim=-1) == target


def _cache_rows(cache, index: torch.Tensor):
    from transformers import DynamicCache

    if hasattr(cache, "layers"):
        pairs = [(layer.keys, layer.values) for layer in cache.layers]
    else:  # transformers < 4.54
        pairs = list(zip(cache.key_cache, cache.value_cache))
    new = DynamicCache()
    for layer_idx, (keys, values) in enumerate(pairs):
        new.update(keys.index_select(0, index), values.index_select(0, index), layer_idx)
    return new


def _fallback_reason(ctx: Sequence[int], cont: Sequence[int], limit: int) -> str | None:
    """Why one request goes to HFLM (None: the fast path scores it)."""
    if len(ctx) + len(cont) > limit:
        return "longer than max_length"  # HFLM truncates the context on the left
    return None if ctx and cont else "empty context or continuation"


def _groups_per_batch(batch_size) -> int:
    text = str(batch_size)
    return int(text) if text.isdigit() and int(text) > 0 else 1


def _resolve_pretrained(pretrained) -> tuple[object, str | None]:
    """A limacot model spec -> (what HFLM loads, hub revision or None); other values unchanged.

        "embedded" -> ("~/.cache/limacot/models/SmolLM2-135M-Instruct.Q4_1-<hash>", None)
        "hf:org/name@v2" -> ("org/name", "v2");  "org/name" -> ("org/name", None)
    """
    if not isinstance(pretrained, str):
        return pretrained, None
    if pretrained == "embedded" or pretrained.startswith("hf:") or pretrained.lower().endswith(".gguf"):
        resolved = resolve_model_spec(pretrained)
        return checkpoint_path(resolved), resolved.revision
    return pretrained, None
