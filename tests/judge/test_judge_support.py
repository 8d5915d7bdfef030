"""Helpers for the judge tests (tiny checkpoints, generation files, a scripted judge), and
tests of the helpers themselves and of the append-only journal they rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import build_tiny_llama, build_tiny_tokenizer
from limacot.errors import DataError
from limacot.judge.clients import JudgeReply
from limacot.io.journal import Journal, read_journal
from serving import free_port  # noqa: F401 -- re-exported: the judge tests start servers on a free port


def chat_tokenizer():
    """The tiny tokenizer with the ChatML template (saved with checkpoints, like training does)."""
    from limacot.data.templates import get_template, prepare_tokenizer

    tokenizer = build_tiny_tokenizer()
    prepare_tokenizer(tokenizer, "chatml")
    tokenizer.chat_template = get_template("chatml").jinja
    return tokenizer


def save_tiny_chat_model(path: Path, seed: int = 0) -> Path:
    """A random 2-layer LLaMA with a chat template, saved as a local checkpoint (a model spec)."""
    tokenizer = chat_tokenizer()
    model = build_tiny_llama(len(tokenizer), seed=seed)
    model.resize_token_embeddings(len(tokenizer))
    model.config.max_position_embeddings = 4096  # judge prompts are longer than 512 tokens (RoPE: no new weights)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_verdict_model(path: Path, reply: str = "Verdict: 1") -> Path:
    """A LLaMA checkpoint whose greedy reply to any chat prompt is exactly `reply`.

    Its layers add nothing to the residual stream (zero output projections), so the logits
    depend on the current token only: a bigram chain from the generation prompt's last token
    through the tokens of `reply` to EOS. `reply` must not repeat a token.
    """
    import torch

    tokenizer = chat_tokenizer()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                           tokenize=False)
    start = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]
    chain = [start] + tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert len(set(chain[:-1])) == len(chain) - 1, f"{reply!r} repeats a token; pick another reply"
    model = build_tiny_llama(len(tokenizer))
    assert model.config.hidden_size >= len(chain), "reply too long for the tiny model"
    model.config.max_position_embeddings = 4096
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                weight.zero_()
        embed, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
        embed.zero_()
        head.zero_()
        for k, (token, following) in enumerate(zip(chain, chain[1:])):
            embed[token, k] = 1.0
            head[following, k] = 5.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_generations(folder: Path, answers: dict[str, str], prompts: dict[str, str] | None = None) -> Path:
    """A generations folder like `limacot generate` writes: {id: answer} with prompts {id: text}."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": pid, "prompt": (prompts or {}).get(pid, f"Question {pid}?"), "answer": text, "tokens": 3,
             "finish_reason": "stop"} for pid, text in answers.items()]
    (folder / "generations.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                              encoding="utf-8")
    return folder


class ScriptedJudge:
    """A judge without a model: `decide(prompt, answer1, answer2) -> reply text`. Counts calls."""

    def __init__(self, decide, fail_after: int | None = None):
        self.decide, self.fail_after, self.calls = decide, fail_after, 0

    def identity(self) -> dict:
        return {"kind": "scripted"}

    def complete_all(self, requests, on_reply, concurrency=4):
        for index, messages in enumerate(requests):
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise RuntimeError("judge went away")
            self.calls += 1
            usage = {"prompt_tokens": 10, "completion_tokens": 2}
            on_reply(index, JudgeReply(self.decide(*split_request(messages)), usage))


def split_request(messages) -> tuple[str, str, str]:
    """(prompt, answer 1, answer 2) back out of a judge request (English or Korean wording)."""
    text = messages[-1]["content"]
    for request, first, second in (("[Request]\n", "\n\n[Answer 1]\n", "\n\n[Answer 2]\n"),
                                   ("[요청]\n", "\n\n[답변 1]\n", "\n\n[답변 2]\n")):
        if request in text:
            prompt = text.split(request, 1)[1].split(first, 1)[0]
            one = text.split(first, 1)[1].split(second, 1)[0]
            two = text.split(second, 1)[1].split("\n\n", 1)[0]
            return prompt, one, two
    raise AssertionError("not a judge request")


# --- tests of the helpers and the journal ---------------------------------------------------

def test_verdict_model_says_its_line(tmp_path):
    from limacot.generate.generation import GenerationSettings, answer
    from limacot.models.loading import load_model, load_tokenizer

    path = save_verdict_model(tmp_path / "judge", "Verdict: 2")
    model, tokenizer = load_model(str(path)), load_tokenizer(str(path))
    reply = answer(model, tokenizer, [{"role": "user", "content": "Which answer is better? 사과"}],
                   GenerationSettings(max_new_tokens=20, greedy=True))
    assert reply == {"answer": "Verdict: 2", "tokens": len(tokenizer("Verdict: 2")["input_ids"]) + 1,
                     "finish_reason": "stop"}


def test_journal_cuts_a_torn_tail_and_keeps_complete_lines(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        journal.append({"id": "1", "answer": "Paris"})
        journal.append({"id": "2", "answer": "서울"})
    with open(path, "ab") as handle:
        handle.write(b'{"id": "3", "ans')  # what kill -9 in the middle of a write leaves
    assert read_journal(path, repair=False) == [{"id": "1", "answer": "Paris"}, {"id": "2", "answer": "서울"}]
    assert path.read_bytes().endswith(b'"ans')  # repair=False reads only
    assert [r["id"] for r in read_journal(path)] == ["1", "2"]
    assert path.read_bytes().endswith("서울\"}\n".encode())
    with Journal(path) as journal:
        journal.append({"id": "3", "answer": "ok"})
    assert [r["id"] for r in read_journal(path)] == ["1", "2", "3"]


def test_journal_keeps_a_valid_last_line_without_newline_and_rejects_damage_inside(tmp_path):
    edited = tmp_path / "edited.jsonl"
    edited.write_text('{"id": "1"}\n{"id": "2"}', encoding="utf-8")
    assert [r["id"] for r in read_journal(edited)] == ["1", "2"]
    assert edited.read_text(encoding="utf-8") == '{"id": "1"}\n{"id": "2"}\n'
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text('{"id": "1"}\n{"id": \n{"id": "3"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"damaged.jsonl:line 2"):
        read_journal(damaged)
    assert read_journal(tmp_path / "absent.jsonl") == []
