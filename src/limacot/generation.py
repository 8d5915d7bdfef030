"""Answer prompts with a causal LM: its chat template, LIMA sampling or greedy decoding.

`limacot generate` writes one line per prompt to OUT/generations.jsonl:
{"id", "prompt", "answer", "tokens", "finish_reason"} where finish_reason is "stop"
(the model ended its turn) or "length" (max_new_tokens reached).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from limacot.atomic import atomic_write_json, atomic_write_jsonl
from limacot.errors import LimacotInputError


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; the defaults are LIMA's sampling (top-p 0.9, temperature 0.7,
    repetition penalty 1.2). Prompt i is sampled with seed `seed + i`, so a rerun of one
    prompt gives the same answer."""

    max_new_tokens: int = 256
    greedy: bool = False
    top_p: float = 0.9
    temperature: float = 0.7
    repetition_penalty: float = 1.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise LimacotInputError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")


def _stop_ids(model, tokenizer) -> list[int]:
    """EOS ids from the model's generation config and the tokenizer (the end-of-turn token)."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def answer(model, tokenizer, messages: Sequence[Mapping[str, Any]], settings: GenerationSettings, *,
           chat_template: str | None = None, seed: int | None = None) -> dict:
    """Generate the assistant's reply to `messages`.

    The prompt is `messages` rendered with the tokenizer's chat template (or `chat_template`)
    plus the generation prompt; the template supplies the special tokens, so none are added.
    Returns {"answer": text without special tokens, "tokens": new token count,
    "finish_reason": "stop" | "length"}.
    """
    import torch
    from transformers import GenerationConfig

    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        raise LimacotInputError("the tokenizer has no chat template: pass chat_template= (a Jinja template) "
                                "or use a tokenizer that ships one")
    prompt = tokenizer.apply_chat_template(list(messages), chat_template=template, add_generation_prompt=True,
                                           tokenize=False)
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(model.device)
    stop = _stop_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop[0] if stop else None)
    sampling = ({"do_sample": False} if settings.greedy else
                {"do_sample": True, "top_p": settings.top_p, "temperature": settings.temperature, "top_k": 0,
                 "repetition_penalty": settings.repetition_penalty})
    config = GenerationConfig(max_new_tokens=settings.max_new_tokens, num_beams=1, eos_token_id=stop or None,
                              pad_token_id=pad, **sampling)
    torch.manual_seed(settings.seed if seed is None else seed)
    with torch.inference_mode():
        output = model.generate(**inputs, generation_config=config)
    new_tokens = output[0, inputs["input_ids"].shape[1]:].tolist()
    finished = bool(new_tokens) and new_tokens[-1] in stop
    return {"answer": tokenizer.decode(new_tokens, skip_special_tokens=True).strip(),
            "tokens": len(new_tokens), "finish_reason": "stop" if finished else "length"}


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
                  on_answer: Callable[[dict], None] | None = None) -> list[dict]:
    """Answer every prompt of `prompts_path`; write OUT/generations.jsonl and OUT/settings.json."""
    from limacot.data.sources import read_prompts
    from limacot.models import load_model, load_tokenizer, resolve_model_spec

    prompts = read_prompts(prompts_path)
    model, tokenizer = load_model(model_spec), load_tokenizer(model_spec)
    rows = []
    for index, (prompt_id, messages) in enumerate(prompts):
        reply = answer(model, tokenizer, messages, settings, seed=settings.seed + index)
        row = {"id": prompt_id, "prompt": messages[-1]["content"], **reply}
        rows.append(row)
        if on_answer:
            on_answer(row)
    out_dir = Path(out_dir)
    atomic_write_jsonl(out_dir / "generations.jsonl", rows)
    atomic_write_json(out_dir / "settings.json", {"model": resolve_model_spec(model_spec).as_dict(),
                                                  "prompts": str(prompts_path), **asdict(settings)})
    return rows
