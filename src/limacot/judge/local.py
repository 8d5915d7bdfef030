"""A local model as judge (`--judge embedded | DIR | hf:ID`), in one of two modes.

choice (default; --json-mode auto/on): the reply is constrained to the JSON the instruction asks
    for. The assistant turn is started with `{"verdict": "` and the model's log-probability of
    each way to finish it (`1"`, `2"`, `tie"`) is computed; the most likely one is the reply:

        prompt + '{"verdict": "'  ->  log P: "1" -0.41, "2" -1.32, "tie" -3.05  ->  '{"verdict": "1"}'

    One forward pass per option and no decoding, so it is cheap, always readable, and the
    model's own preference decides (the log-probabilities are kept with the reply).
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
        sequences, spans = [], []
        for messages in batch:
            prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + PREFIX
            ids = [tokenizer(prompt + option + '"', add_special_tokens=False)["input_ids"] for option in OPTIONS]
            shared = _common_prefix(ids)
            sequences += ids
            spans += [(shared, len(row)) for row in ids]
        scores = _sequence_logprobs(model, sequences, spans, tokenizer)
        replies = []
        for index in range(len(batch)):
            mine = dict(zip(OPTIONS, scores[index * len(OPTIONS):(index + 1) * len(OPTIONS)]))
            best = max(OPTIONS, key=lambda option: mine[option])
            usage = {"prompt_tokens": spans[index * len(OPTIONS)][0],
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


def _sequence_logprobs(model, sequences: list[list[int]], spans: list[tuple[int, int]], tokenizer) -> list[float]:
    """Sum of log P(token | earlier tokens) over positions [start, end) of each sequence.

    The batch is left-padded (explicit position ids, so padding changes nothing), which puts
    every scored span at the end: only the last few positions' logits are computed.
    """
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(row) for row in sequences)
    ids = torch.tensor([[pad] * (width - len(row)) + row for row in sequences], device=model.device)
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in sequences], device=model.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    keep = max(len(row) - max(start, 1) for row, (start, _) in zip(sequences, spans)) + 1
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # column c holds position width - keep + c
    totals = []
    for row, (sequence, (start, end)) in enumerate(zip(sequences, spans)):
        offset = width - len(sequence)  # scored token j of the sequence sits at column offset + j
        columns = torch.arange(offset + max(start, 1), offset + end, device=model.device)
        totals.append(float(logprobs[row, columns - 1 - (width - keep), ids[row, columns]].sum()))
    return totals
