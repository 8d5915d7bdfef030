"""A local model as judge (`--judge embedded | DIR | hf:ID`), in one of two modes.

choice (default; --json-mode auto/on): the reply is constrained to the JSON the instruction asks
    for. The assistant turn is started with `{"verdict": "` and the model's log-probability of
    each way to finish it (`1"`, `2"`, `tie"`) is computed; the most likely one is the reply:

        prompt + '{"verdict": "'  ->  log P: "1" -0.41, "2" -1.32, "tie" -3.05  ->  '{"verdict": "1"}'

    The prompt runs once into a KV cache and each option's few tokens on top of it, with no
    decoding, so it is cheap, always readable, and the model's own preference decides (the
    log-probabilities are kept with the reply).
generate (--json-mode off): greedy decoding of up to `max_tokens` tokens, read afterwards by the
    tolerant parser like any other judge's text.

Requests are processed `concurrency` at a time (one padded batch).
"""

from __future__ import annotations

from typing import Sequence

from limacot.models.compute import ComputeOptions, resolve_compute
from limacot.errors import LimacotInputError
from limacot.generate.generation import GenerationSettings, answer_batch
from limacot.generate.prompt_format import has_chat_template
from limacot.judge.clients import JudgeReply, OnReply
from limacot.models.forward_args import cache_keyword
from limacot.models.loading import load_model, load_tokenizer, resolve_model_spec

PREFIX = '{"verdict": "'
OPTIONS = ("1", "2", "tie")


class LocalJudge:
    """A local causal LM judging pairs, by constrained choice or by free generation."""

    def __init__(self, spec: str, max_tokens: int = 256, choice: bool = True, compute: ComputeOptions | None = None):
        self.spec, self.max_tokens, self.choice = spec, max_tokens, choice
        self.resolved = resolve_model_spec(spec)
        self.compute = resolve_compute(compute)
        self._loaded = None

    def identity(self) -> dict:
        """What the cache keys replies by: the model, its dtype and attention kernel, the mode."""
        mode = {"mode": "choice"} if self.choice else {"mode": "generate", "max_tokens": self.max_tokens}
        numerics = {"dtype": str(self.compute.dtype).removeprefix("torch."),
                    "attn_implementation": self.compute.attn_implementation}
        return {"kind": "local", "model": self.resolved.as_dict(), **numerics, **mode}

    def complete_all(self, requests: Sequence[list[dict]], on_reply: OnReply, concurrency: int = 4) -> None:
        if not requests:
            return
        if self._loaded is None:
            tokenizer = load_tokenizer(self.resolved)
            if not has_chat_template(tokenizer):
                raise LimacotInputError(f"judge {self.resolved.source}: its tokenizer has no chat template, so it "
                                        "is a base model, not one that follows the judge's instructions; use an "
                                        "instruction-tuned model (e.g. embedded) or an API judge")
            self._loaded = load_model(self.resolved, self.compute), tokenizer
        step = max(1, concurrency)
        for start in range(0, len(requests), step):
            batch = list(requests[start:start + step])
            replies = self._choose(batch) if self.choice else self._generate(batch)
            for offset, reply in enumerate(replies):
                on_reply(start + offset, reply)

    def _generate(self, batch: list[list[dict]]) -> list[JudgeReply]:
        model, tokenizer = self._loaded
        settings = GenerationSettings(max_new_tokens=self.max_tokens, greedy=True)
        return [JudgeReply(r["answer"], {"completion_tokens": r["tokens"]})
                for r in answer_batch(model, tokenizer, batch, settings)]

    def _choose(self, batch: list[list[dict]]) -> list[JudgeReply]:
        """The most likely verdict for each request (see the module docstring)."""
        model, tokenizer = self._loaded
        prefixes, suffixes = [], []
        for messages in batch:
            prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + PREFIX
            ids = [tokenizer(prompt + option + '"', add_special_tokens=False)["input_ids"] for option in OPTIONS]
            shared = min(_common_prefix(ids), min(len(row) for row in ids) - 1)  # every option keeps a token
            prefixes.append(ids[0][:shared])
            suffixes.append([row[shared:] for row in ids])
        scores = _option_logprobs(model, prefixes, suffixes, tokenizer)
        replies = []
        for prefix, logprobs in zip(prefixes, scores):
            mine = dict(zip(OPTIONS, logprobs))
            best = max(OPTIONS, key=lambda option: mine[option])
            usage = {"prompt_tokens": len(prefix),
                     "choice_logprobs": {option: round(value, 4) for option, value in mine.items()}}
            replies.append(JudgeReply(f'{PREFIX}{best}"}}', usage))
        return replies


def _common_prefix(rows: list[list[int]]) -> int:
    """Length of the token prefix all rows share (where the options start to differ)."""
    length = min(len(row) for row in rows)
    for i in range(length):
        if len({row[i] for row in rows}) > 1:
            return i
    return length


def _option_logprobs(model, prefixes: list[list[int]], suffixes: list[list[list[int]]], tokenizer) -> list[list[float]]:
    """log P(suffix | prefix) of each request's options: scores[i][k] is the sum over the tokens
    of suffixes[i][k] (non-empty) after prefixes[i] (non-empty).

    The prefixes (the judge prompt, most of the tokens) run once, as one left-padded batch with
    explicit position ids, into a KV cache; each option's suffixes then run on that cache as one
    right-padded batch, and the cache is cropped back before the next option. A prompt of P
    tokens with 3 options costs P + a few tokens, not 3P.
    """
    import torch
    from transformers import DynamicCache

    device = model.device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(row) for row in prefixes)
    ids = torch.tensor([[pad] * (width - len(row)) + row for row in prefixes], device=device)
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in prefixes], device=device)
    lengths = mask.sum(-1, keepdim=True)
    scores: list[list[float]] = [[] for _ in prefixes]
    cache = DynamicCache()
    cached = {cache_keyword(model): cache, "use_cache": True}
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                    logits_to_keep=1, **cached)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # the first suffix token's distribution
        for option in range(len(suffixes[0])):
            rows = [options[option] for options in suffixes]
            span = max(len(row) for row in rows)
            step_ids = torch.tensor([row + [pad] * (span - len(row)) for row in rows], device=device)
            step_mask = torch.tensor([[1] * len(row) + [0] * (span - len(row)) for row in rows], device=device)
            logits = model(input_ids=step_ids, attention_mask=torch.cat([mask, step_mask], dim=1),
                           position_ids=lengths + torch.arange(span, device=device), **cached).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for i, row in enumerate(rows):
                total = first[i, row[0]] + sum(logprobs[i, j - 1, row[j]] for j in range(1, len(row)))
                scores[i].append(float(total))
            cache.crop(-span)  # back to the prompt alone
    return scores
