"""Answer prompts with a causal LM: its chat template, LIMA sampling or greedy decoding.

A model whose tokenizer has no chat template (a base checkpoint) is prompted in the plain
Question/Answer format instead (`limacot.generate.prompt_format`); OUT/settings.json records
which one as `prompt_format` ("chat" | "plain").

`limacot generate` writes one line per prompt to OUT/generations.jsonl:
{"id", "prompt", "answer", "tokens", "finish_reason"} where finish_reason is "stop"
(the model ended its turn, or began the next question in the plain format) or "length"
(max_new_tokens reached). Lines are appended as
batches finish (fsynced), so a killed run keeps what it finished and `resume=True`
answers only the rest; a line torn by `kill -9` is cut off before the next run appends.

Sampling is per prompt: prompt i of the prompts file draws from its own generator seeded
with `seed + i`, so its answer does not depend on the batch size, on which prompts share
its batch, or on whether the run was interrupted and resumed.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from limacot.io.atomic import atomic_write_json, atomic_write_jsonl
from limacot.models.compute import ComputeOptions, process_group, resolve_compute
from limacot.data.sources import read_prompts
from limacot.errors import LimacotInputError
from limacot.generate.config import GenerationSettings
from limacot.generate.prompt_format import CHAT, PLAIN, STOP_STRING, chat_template_of, encode_prompt
from limacot.io.journal import Journal, read_journal
from limacot.models.loading import load_model, load_tokenizer, resolve_model_spec

GENERATIONS = "generations.jsonl"
SETTINGS = "settings.json"
PARTS = "parts"  # per-process journals of a multi-process run, merged by the main process

log = logging.getLogger(__name__)


def _stop_ids(model, tokenizer) -> list[int]:
    """EOS ids from the model's generation config and the tokenizer (the end-of-turn token)."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _row_sampler(settings: GenerationSettings, seeds: Sequence[int], device):
    """A logits processor that samples every row from its own seeded generator.

    It applies temperature and top-p to the (repetition-penalized) scores, draws one token
    per row, and returns scores that are -inf everywhere except the drawn token, so
    `generate`'s greedy step picks exactly that token. One generator per row is what makes
    a prompt's answer independent of its batch.
    """
    import torch
    from transformers import LogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

    warpers = [TemperatureLogitsWarper(settings.temperature)]
    if settings.top_p < 1.0:
        warpers.append(TopPLogitsWarper(settings.top_p))
    generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    class RowSampler(LogitsProcessor):
        def __call__(self, input_ids, scores):
            for warp in warpers:
                scores = warp(input_ids, scores)
            probs = torch.softmax(scores.float(), dim=-1)
            drawn = torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators)])
            chosen = torch.full_like(scores, float("-inf"))
            return chosen.scatter_(1, drawn.unsqueeze(1), 0.0)

    return RowSampler()


def _left_padded(ids: Sequence[list[int]], pad: int, device):
    """Token ids of each prompt, left-padded to one length, with the attention mask.

        [[17], [31, 5, 90]] -> input_ids [[pad, pad, 17], [31, 5, 90]], attention_mask [[0, 0, 1], [1, 1, 1]]
    """
    import torch

    width = max(len(row) for row in ids)
    input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in ids], device=device)
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids], device=device)
    return input_ids, mask


def answer_batch(model, tokenizer, conversations: Sequence[Sequence[Mapping[str, Any]]],
                 settings: GenerationSettings, *, chat_template: str | None = None,
                 seeds: Sequence[int] | None = None) -> list[dict]:
    """Generate the assistant's reply to each conversation in one padded batch.

    Each prompt is its conversation rendered with the tokenizer's chat template (or
    `chat_template`) plus the generation prompt; the template supplies the special tokens,
    so none are added. Without a template the prompt is the plain Question/Answer format
    (`limacot.generate.prompt_format`), and a row also stops where it begins the next
    `\\nQuestion:`, which is cut from its answer. Row i is sampled with `seeds[i]` (default:
    `settings.seed` for all). Returns per row {"answer": text without special tokens,
    "tokens": new tokens up to and including the stop token (or stop string),
    "finish_reason": "stop" | "length"}.
    """
    import torch
    from transformers import GenerationConfig

    if not conversations:
        return []
    template = chat_template or chat_template_of(tokenizer)
    stop_string = None if template else STOP_STRING
    seeds = [settings.seed] * len(conversations) if seeds is None else list(seeds)
    stop = _stop_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop[0] if stop else 0)
    input_ids, mask = _left_padded([encode_prompt(tokenizer, m, template) for m in conversations], pad, model.device)
    processors = [] if settings.greedy else [_row_sampler(settings, seeds, model.device)]
    config = GenerationConfig(max_new_tokens=settings.max_new_tokens, num_beams=1, do_sample=False,
                              repetition_penalty=None if settings.greedy else settings.repetition_penalty,
                              eos_token_id=stop or None, pad_token_id=pad,
                              stop_strings=[stop_string] if stop_string else None)
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                logits_processor=processors, **({"tokenizer": tokenizer} if stop_string else {}))
    return [_reply(row[input_ids.shape[1]:].tolist(), stop, tokenizer, stop_string) for row in output]


def _reply(new_tokens: list[int], stop: list[int], tokenizer, stop_string: str | None = None) -> dict:
    """Cut a generated row after its first stop token, or after the tokens that complete
    `stop_string` if that comes first (the rest is batch padding); the answer is the text
    before `stop_string`.

        new tokens "Paris.", "\\nQuestion:", " Next", <pad> (stop_string "\\nQuestion:")
        -> {"answer": "Paris.", "tokens": 2, "finish_reason": "stop"}
    """
    end = next((i + 1 for i, token in enumerate(new_tokens) if token in stop), None)
    kept = new_tokens if end is None else new_tokens[:end]
    cut = _stop_string_end(kept, tokenizer, stop_string) if stop_string else None
    if cut is not None:
        kept, end = kept[:cut], cut
    text = tokenizer.decode(kept, skip_special_tokens=True)
    if stop_string:
        text = text.partition(stop_string)[0]
    return {"answer": text.strip(), "tokens": len(kept), "finish_reason": "length" if end is None else "stop"}


def _stop_string_end(tokens: list[int], tokenizer, stop_string: str) -> int | None:
    """The fewest leading `tokens` whose text contains `stop_string` (None: it never appears);
    a binary search, since a longer prefix's text only grows."""
    if stop_string not in tokenizer.decode(tokens, skip_special_tokens=True):
        return None
    low, high = 1, len(tokens)
    while low < high:
        middle = (low + high) // 2
        if stop_string in tokenizer.decode(tokens[:middle], skip_special_tokens=True):
            high = middle
        else:
            low = middle + 1
    return low


def answer(model, tokenizer, messages: Sequence[Mapping[str, Any]], settings: GenerationSettings, *,
           chat_template: str | None = None, seed: int | None = None) -> dict:
    """Generate the assistant's reply to `messages` (one conversation; see `answer_batch`).

    Returns {"answer", "tokens", "finish_reason"}; sampled with `seed` (default `settings.seed`).
    """
    seeds = [settings.seed if seed is None else seed]
    return answer_batch(model, tokenizer, [messages], settings, chat_template=chat_template, seeds=seeds)[0]


def greedy_answer(model, tokenizer, messages: Sequence[Mapping[str, Any]], max_new_tokens: int = 64, *,
                  chat_template: str | None = None) -> str:
    """Greedy-decode the assistant's reply to `messages` and return it as plain text.

        >>> greedy_answer(model, tok, [{"role": "user", "content": "What is the capital of France?"}])
        # prompt (SmolLM2's template):
        #   <|im_start|>system\\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\\n
        #   <|im_start|>user\\nWhat is the capital of France?<|im_end|>\\n<|im_start|>assistant\\n
        'The capital of France is Paris.'
    """
    settings = GenerationSettings(max_new_tokens=max_new_tokens, greedy=True)
    return answer(model, tokenizer, messages, settings, chat_template=chat_template)["answer"]


def generate_file(model_spec: str, prompts_path: str | Path, out_dir: str | Path, settings: GenerationSettings,
                  on_answer: Callable[[dict], None] | None = None, *, batch_size: int = 1, resume: bool = False,
                  limit: int | None = None, compute: ComputeOptions | None = None) -> list[dict]:
    """Answer the prompts of `prompts_path` (the first `limit`) into OUT/generations.jsonl.

    Writes OUT/settings.json first: the model, the prompts, the decoding settings and the
    `prompt_format` ("chat", or "plain" for a tokenizer without a chat template, logged once).
    With `resume`, prompts whose id is already answered are
    skipped, after checking that settings.json names the same model, prompt format and decoding
    settings (else LimacotInputError); without it the file starts over. `compute` places the model
    (`limacot.models.compute`). `on_answer` sees each new row (this process's). Returns every row in
    prompt order, finished ones included (on the main process; [] on the others).

    Under a multi-process launch (`accelerate launch --num_processes N`), process r answers
    pending prompts r, r+N, ... into its own journal `OUT/parts/rank-<r>.jsonl`; the main
    process then writes generations.jsonl in prompt order, the same bytes as one process.
    Batches are formed from prompts of similar length (longest first).
    """
    if batch_size < 1:
        raise LimacotInputError(f"batch size must be at least 1, got {batch_size}")
    prompts = read_prompts(prompts_path)[:limit]
    check_unique_ids(prompts, prompts_path)
    out_dir, resolved = Path(out_dir), resolve_compute(compute)
    group = process_group(resolved.device)
    tokenizer = load_tokenizer(model_spec)
    prompt_format = CHAT if chat_template_of(tokenizer) else PLAIN
    if prompt_format == PLAIN and group.is_main:
        log.warning("limacot generate: the tokenizer of %s has no chat template, so the prompts are given in "
                    "the plain Question/Answer format (limacot.generate.prompt_format)", model_spec)
    record = {"model": resolve_model_spec(model_spec).as_dict(), "prompts": str(prompts_path),
              "prompt_format": prompt_format, **settings.part(GenerationSettings).model_dump()}
    done = resumable_rows(out_dir, record) if resume else []
    group.barrier()  # every process has read what is done before the main process rewrites anything
    if group.is_main:
        start_output(out_dir, record, done)
    group.barrier()
    finished = {row["id"] for row in done}
    pending = [(i, pid, messages) for i, (pid, messages) in enumerate(prompts) if pid not in finished]
    mine = pending[group.rank::group.world]
    journal_path = out_dir / PARTS / f"rank-{group.rank}.jsonl" if group.world > 1 else out_dir / GENERATIONS
    with Journal(journal_path) as journal:
        if mine:
            model = load_model(model_spec, resolved)
            mine = _by_length(mine, tokenizer)
        for start in range(0, len(mine), batch_size):
            batch = mine[start:start + batch_size]
            replies = answer_batch(model, tokenizer, [m for _, _, m in batch], settings,
                                   seeds=[settings.seed + i for i, _, _ in batch])
            for (_, prompt_id, messages), reply in zip(batch, replies):
                row = {"id": prompt_id, "prompt": messages[-1]["content"], **reply}
                journal.append(row)
                if on_answer:
                    on_answer(row)
    group.barrier()
    return merge_output(out_dir, [pid for pid, _ in prompts]) if group.is_main else []


def _by_length(items: list[tuple[int, str, list]], tokenizer) -> list[tuple[int, str, list]]:
    """The prompts longest first, so that a batch holds prompts of similar length (little
    padding); answers do not depend on their batch, and the output is written in prompt order."""
    def length(item) -> int:
        return len(encode_prompt(tokenizer, item[2]))

    return sorted(items, key=lambda item: (-length(item), item[0]))


def start_output(out_dir: Path, record: dict, done: list[dict]) -> None:
    """Main process: settings.json, and generations.jsonl holding exactly the finished rows
    (a fresh run starts empty; a resumed one folds in rows from a killed multi-process run)."""
    atomic_write_json(out_dir / SETTINGS, record)
    parts = out_dir / PARTS
    if parts.exists() or not done:
        atomic_write_jsonl(out_dir / GENERATIONS, done)
        shutil.rmtree(parts, ignore_errors=True)


def merge_output(out_dir: Path, order: list[str]) -> list[dict]:
    """Main process: every row (generations.jsonl and the per-process journals) in prompt
    order, written back as generations.jsonl when that changes it; the journals are removed."""
    rows = _all_rows(out_dir)
    position = {pid: i for i, pid in enumerate(order)}
    ordered = sorted(rows, key=lambda row: position.get(row["id"], len(order)))
    parts = out_dir / PARTS
    if parts.exists() or ordered != rows:
        atomic_write_jsonl(out_dir / GENERATIONS, ordered)
        shutil.rmtree(parts, ignore_errors=True)
    return ordered


def _all_rows(out_dir: Path) -> list[dict]:
    """Rows of generations.jsonl, then of each per-process journal (torn tails repaired)."""
    rows = read_journal(out_dir / GENERATIONS)
    for part in sorted((out_dir / PARTS).glob("rank-*.jsonl")):
        rows += read_journal(part)
    return rows


def check_unique_ids(prompts: list[tuple[str, list[dict]]], path: str | Path) -> None:
    seen: dict[str, int] = {}
    for number, (prompt_id, _) in enumerate(prompts, start=1):
        if prompt_id in seen:
            raise LimacotInputError(f"{path}: prompts {seen[prompt_id]} and {number} have the same id '{prompt_id}' "
                                    f"(an explicit 'id' field or identical text); generations and judging pair "
                                    f"answers by id, so ids must be unique")
        seen[prompt_id] = number


def resumable_rows(out_dir: Path, record: dict) -> list[dict]:
    """Rows already answered in OUT, if OUT/settings.json matches `record` ([] when OUT
    holds no earlier run)."""
    settings_path = out_dir / SETTINGS
    if not settings_path.exists():
        return []
    saved = json.loads(settings_path.read_text(encoding="utf-8"))
    saved.setdefault("prompt_format", CHAT)  # written before the plain format existed: every model had a template
    changed = sorted(k for k in record if k != "prompts" and saved.get(k) != record[k])
    if changed:
        raise LimacotInputError(f"--resume: {out_dir} was generated with different {', '.join(changed)} "
                                f"({', '.join(f'{k}={saved.get(k)!r}' for k in changed)}); mixing them would make "
                                f"one answer set from two setups. Use the same settings, or a new --out")
    return _all_rows(out_dir)
