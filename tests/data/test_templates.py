"""Chat templates and the assistant mask; raw tokenizer files.

On the real LLaMA tokenizers the rendered text and ids are checked against Meta's
official formats, computed here independently with sentencepiece and tiktoken.
"""

from __future__ import annotations

import base64
import copy

import pytest

from limacot.data.records import Conversation, Turn
from limacot.data.templates import (IGNORE_INDEX, TEMPLATE_NAMES, NoTrainedTokensError, get_template,
                                    highlight, prepare_tokenizer, render_conversation, render_many,
                                    resolve_template, token_counts)
from limacot.errors import LimacotInputError
from limacot.models.tokenizer_files import load_tokenizer_file

SYSTEM = "You are a careful math tutor."
DIALOG = [  # two turns; contents padded with spaces to check that templates strip them as Meta does
    {"role": "user", "content": " What is 2+3? "},
    {"role": "assistant", "content": "Let's think step by step. 2 + 3 = 5. So the answer is 5.\n"},
    {"role": "user", "content": "민수는 사과 3개를 가지고 있었고 2개를 더 샀습니다. 모두 몇 개입니까?"},
    {"role": "assistant", "content": "3 + 2 = 5. 따라서 정답은 5입니다."},
]
WITH_SYSTEM = [{"role": "system", "content": SYSTEM}] + DIALOG
ANSWERS = [DIALOG[1]["content"].strip(), DIALOG[3]["content"]]

LLAMA2_TEXT = {
    False: "<s>[INST] What is 2+3? [/INST] Let's think step by step. 2 + 3 = 5. So the answer is 5. </s>"
           "<s>[INST] 민수는 사과 3개를 가지고 있었고 2개를 더 샀습니다. 모두 몇 개입니까? [/INST] "
           "3 + 2 = 5. 따라서 정답은 5입니다. </s>",
    True: "<s>[INST] <<SYS>>\nYou are a careful math tutor.\n<</SYS>>\n\n What is 2+3? [/INST] "
          "Let's think step by step. 2 + 3 = 5. So the answer is 5. </s>"
          "<s>[INST] 민수는 사과 3개를 가지고 있었고 2개를 더 샀습니다. 모두 몇 개입니까? [/INST] "
          "3 + 2 = 5. 따라서 정답은 5입니다. </s>",
}
LLAMA3_TEXT = {
    False: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+3?<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nLet's think step by step. 2 + 3 = 5. "
           "So the answer is 5.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\n민수는 사과 3개를 가지고 있었고 2개를 더 샀습니다. "
           "모두 몇 개입니까?<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n3 + 2 = 5. 따라서 정답은 5입니다.<|eot_id|>",
}
LLAMA3_TEXT[True] = LLAMA3_TEXT[False].replace(
    "<|begin_of_text|>", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                         "You are a careful math tutor.<|eot_id|>")
HF_LLAMA3 = ("{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
             "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
             "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
             "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
# Meta's llama3 tokenizer.py split pattern, written out independently of limacot's copy
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def runs(example) -> list[list[int]]:
    """The labelled token ids, one list per contiguous run (one per assistant turn)."""
    out, prev = [], IGNORE_INDEX
    for label in example.labels:
        if label != IGNORE_INDEX:
            (out[-1].append(label) if prev != IGNORE_INDEX else out.append([label]))
        prev = label
    return out


# ---------------------------------------------------------------- real LLaMA tokenizers

@pytest.fixture(scope="module")
def llama2(shared_data):
    return load_tokenizer_file(shared_data / "tokenizers" / "llama2" / "tokenizer.model")


@pytest.fixture(scope="module")
def llama3(shared_data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    with pytest.MonkeyPatch.context() as mp:  # tiktoken's loader would keep a copy of the file here
        mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        tokenizer = load_tokenizer_file(shared_data / "tokenizers" / "llama3")  # a folder holding tokenizer.model
    assert not any(cache.iterdir()), "loading the tokenizer left files behind"
    return tokenizer


@pytest.fixture(scope="module")
def sentencepiece(shared_data):
    import sentencepiece
    return sentencepiece.SentencePieceProcessor(model_file=str(shared_data / "tokenizers/llama2/tokenizer.model"))


@pytest.fixture(scope="module")
def tiktoken_llama3(shared_data):
    """Meta's llama3 tokenizer.py encoder, built straight from the file (no tiktoken file cache)."""
    import tiktoken
    lines = (shared_data / "tokenizers/llama3/tokenizer.model").read_bytes().splitlines()
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in lines if line)}
    named = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(4)] + [
        "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    specials = named + [f"<|reserved_special_token_{i}|>" for i in range(5, 251)]
    return tiktoken.Encoding("llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks,
                             special_tokens={t: 128000 + i for i, t in enumerate(specials)})


@pytest.mark.shared_data
def test_raw_tokenizer_files_encode_like_meta(llama2, llama3, sentencepiece, tiktoken_llama3):
    assert llama2("Hello")["input_ids"] == [1, 15043]
    assert (llama2.bos_token, llama2.eos_token, len(llama2)) == ("<s>", "</s>", 32000)
    assert llama3("Hello")["input_ids"] == [128000, 9906]
    assert (llama3.bos_token, llama3.eos_token, len(llama3)) == ("<|begin_of_text|>", "<|end_of_text|>", 128256)
    ids = {t: llama3.convert_tokens_to_ids(t) for t in ["<|begin_of_text|>", "<|end_of_text|>",
           "<|reserved_special_token_0|>", "<|start_header_id|>", "<|end_header_id|>",
           "<|reserved_special_token_4|>", "<|eot_id|>", "<|reserved_special_token_5|>",
           "<|reserved_special_token_250|>"]}
    assert list(ids.values()) == [128000, 128001, 128002, 128006, 128007, 128008, 128009, 128010, 128255]
    # spaces: SentencePiece ranks merges by piece score and always adds the dummy prefix
    texts = ["a  b", " two", "  two", "x   \n\n  y\t z ", "def f(x):\n    return x  # 😀", DIALOG[2]["content"],
             "Ünïcödé, 'll I'M 12345 ...!!", ""]
    for text in texts:
        assert llama2(text, add_special_tokens=False)["input_ids"] == sentencepiece.encode(text), text
        assert llama3(text, add_special_tokens=False)["input_ids"] == tiktoken_llama3.encode(text), text
    for text in ["Hello  world 안녕 😀", "  x "]:
        assert llama2.decode(llama2(text)["input_ids"], skip_special_tokens=True) == text
        assert llama3.decode(llama3(text)["input_ids"], skip_special_tokens=True) == text


@pytest.mark.shared_data
@pytest.mark.parametrize("system", [False, True])
def test_llama2_matches_meta_official_format(llama2, sentencepiece, system):
    assert prepare_tokenizer(llama2, "llama-2") == []  # <s>, </s> are already special tokens
    messages = WITH_SYSTEM if system else DIALOG
    example = render_conversation(messages, llama2, "llama-2")
    assert example.text == LLAMA2_TEXT[system]
    user1 = f"<<SYS>>\n{SYSTEM}\n<</SYS>>\n\n{DIALOG[0]['content']}".strip() if system else "What is 2+3?"
    official = []  # Meta's llama/generation.py chat_completion, per (prompt, answer) pair
    for user, answer in [(user1, ANSWERS[0]), (DIALOG[2]["content"], ANSWERS[1])]:
        official += [1] + sentencepiece.encode(f"[INST] {user} [/INST] {answer} ") + [2]
    assert example.input_ids == official
    assert [llama2.decode(run) for run in runs(example)] == [f"{a} </s>" for a in ANSWERS]
    assert [example.text[a:b] for a, b in example.assistant_spans] == [f" {a} </s>" for a in ANSWERS]
    assert example.dropped_turns == 0 and not example.truncated


@pytest.mark.shared_data
@pytest.mark.parametrize("system", [False, True])
def test_llama3_matches_meta_official_format(llama3, tiktoken_llama3, system):
    assert prepare_tokenizer(llama3, "llama-3") == []
    messages = WITH_SYSTEM if system else DIALOG
    example = render_conversation(messages, llama3, "llama-3")
    assert example.text == LLAMA3_TEXT[system]
    enc = tiktoken_llama3  # Meta's llama3 ChatFormat.encode_message, one message at a time
    official = [128000]
    for m in messages:
        official += [128006] + enc.encode(m["role"]) + [128007] + enc.encode("\n\n")
        official += enc.encode(m["content"].strip()) + [128009]
    assert example.input_ids == official
    assert [llama3.decode(run) for run in runs(example)] == [f"{a}<|eot_id|>" for a in ANSWERS]
    prompt = llama3.apply_chat_template(messages[:1], chat_template=get_template("llama-3").jinja, tokenize=False,
                                        add_generation_prompt=True)
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    # the same format written the way Meta's Hugging Face repo writes it, used as the tokenizer's own template
    tok = copy.copy(llama3)
    tok.chat_template = HF_LLAMA3
    assert resolve_template("tokenizer", tok).eot == "<|eot_id|>"
    assert render_conversation(messages, tok, "tokenizer").labels == example.labels


@pytest.mark.shared_data
def test_chatml_on_llama2_adds_tokens_once_and_checks_them(llama2):
    tok = copy.deepcopy(llama2)
    with pytest.raises(LimacotInputError, match="prepare_tokenizer"):
        render_conversation(DIALOG, tok, "chatml")
    assert prepare_tokenizer(tok, "chatml") == ["<|im_start|>", "<|im_end|>"]
    assert prepare_tokenizer(tok, "chatml") == []
    assert tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == [32000, 32001]
    example = render_conversation(DIALOG, tok, "chatml")
    assert [tok.decode(run) for run in runs(example)] == [f"{a}<|im_end|>" for a in ANSWERS]


# ---------------------------------------------------------------- tiny tokenizer

@pytest.fixture()
def tiny(tiny_tokenizer):
    return copy.deepcopy(tiny_tokenizer)  # templates add tokens; keep the session fixture clean


def test_chatml(tiny):
    assert prepare_tokenizer(tiny, "chatml") == ["<|im_start|>", "<|im_end|>"]
    example = render_conversation(WITH_SYSTEM, tiny, "chatml")
    assert example.text == (
        "<|im_start|>system\nYou are a careful math tutor.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
        f"<|im_start|>assistant\n{ANSWERS[0]}<|im_end|>\n"
        f"<|im_start|>user\n{DIALOG[2]['content']}<|im_end|>\n"
        f"<|im_start|>assistant\n{ANSWERS[1]}<|im_end|>\n")
    assert [tiny.decode(run) for run in runs(example)] == [f"{a}<|im_end|>" for a in ANSWERS]
    assert example.labels[-2] == tiny.convert_tokens_to_ids("<|im_end|>")
    assert example.labels[-1] == IGNORE_INDEX  # the newline after <|im_end|> is not trained
    prompt = tiny.apply_chat_template(DIALOG[:1], chat_template=get_template("chatml").jinja, tokenize=False,
                                      add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_lima_eot_is_one_new_labelled_token(tiny):
    n = len(tiny)
    assert prepare_tokenizer(tiny, "lima") == ["<EOT>"]
    eot = tiny.convert_tokens_to_ids("<EOT>")
    assert eot == n and prepare_tokenizer(tiny, "lima") == []
    example = render_conversation(WITH_SYSTEM, tiny, "lima")
    assert example.text == (f"{SYSTEM}<EOT>What is 2+3?<EOT>{ANSWERS[0]}<EOT>"
                            f"{DIALOG[2]['content']}<EOT>{ANSWERS[1]}<EOT>")
    assert example.input_ids.count(eot) == 5
    assert [run[-1] for run in runs(example)] == [eot, eot]
    assert [tiny.decode(run) for run in runs(example)] == [f"{a}<EOT>" for a in ANSWERS]
    assert tiny.decode(example.input_ids, skip_special_tokens=True).startswith(SYSTEM)


def test_korean_labels_cover_exactly_the_answer(tiny):
    prepare_tokenizer(tiny, "llama-3")
    example = render_conversation(DIALOG[2:], tiny, "llama-3")
    labelled = [i for i in example.labels if i != IGNORE_INDEX]
    assert tiny.decode(labelled) == "3 + 2 = 5. 따라서 정답은 5입니다.<|eot_id|>"
    assert tiny.decode(example.input_ids) == example.text
    assert token_counts(example) == {"tokens": len(example.input_ids), "trained_tokens": len(labelled)}


ZEPHYR = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")


def test_tokenizer_template_finds_its_end_of_turn(tiny):
    with pytest.raises(LimacotInputError, match="has none"):
        render_conversation(DIALOG, tiny, "tokenizer")
    tiny.chat_template = ZEPHYR
    template = resolve_template("tokenizer", tiny)
    assert (template.jinja, template.eot) == (ZEPHYR, "</s>")
    example = render_conversation(Conversation.from_turns([Turn("user", "Hi"), Turn("assistant", "Hello!")], "t"),
                                  tiny, "tokenizer")
    assert example.text == "<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
    assert [tiny.decode(run) for run in runs(example)] == ["Hello!</s>"]
    assert example.id is not None


def test_template_that_rewrites_earlier_turns_is_refused(tiny):
    tiny.chat_template = "{{ messages | length }}{% for m in messages %}{{ m['content'] + '</s>' }}{% endfor %}"
    with pytest.raises(LimacotInputError, match="prefix-stable"):
        render_conversation(DIALOG, tiny, "tokenizer")


def test_bad_inputs_are_input_errors(tiny, tmp_path):
    with pytest.raises(LimacotInputError, match="llama-2, llama-3, chatml, lima, tokenizer"):
        get_template("vicuna")
    assert TEMPLATE_NAMES == ("llama-2", "llama-3", "chatml", "lima", "tokenizer")
    with pytest.raises(LimacotInputError, match="alternate"):
        render_conversation([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], tiny, "lima")
    for name, data in [("junk.model", b"\x00\x01not a tokenizer at all\xff" * 10), ("text.model", b"hello world\n"),
                       ("gap.model", b"IQ== 0\nIg== 2\n")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LimacotInputError, match=name.replace(".", r"\.")):
            load_tokenizer_file(tmp_path / name)
    with pytest.raises(LimacotInputError, match="not found"):
        load_tokenizer_file(tmp_path)  # a folder without tokenizer.model


# ---------------------------------------------------------------- truncation

def test_truncation_drops_trailing_pairs_then_cuts_tokens(tiny):
    prepare_tokenizer(tiny, "chatml")
    full = render_conversation(DIALOG, tiny, "chatml")
    first = render_conversation(DIALOG[:2], tiny, "chatml")
    assert len(first.input_ids) < len(full.input_ids)
    cut = render_conversation(DIALOG, tiny, "chatml", max_length=len(full.input_ids) - 1)
    assert (cut.text, cut.input_ids, cut.labels) == (first.text, first.input_ids, first.labels)
    assert cut.dropped_turns == 2 and cut.truncated
    short = render_conversation(DIALOG, tiny, "chatml", max_length=len(first.input_ids) - 3)
    assert len(short.input_ids) == len(first.input_ids) - 3 and short.dropped_turns == 2
    assert short.input_ids == first.input_ids[:-3] and short.labels[-1] != IGNORE_INDEX
    assert tiny.convert_tokens_to_ids("<|im_end|>") not in [x for x in short.labels if x != IGNORE_INDEX]
    prompt_len = first.labels.index(next(x for x in first.labels if x != IGNORE_INDEX))
    with pytest.raises(NoTrainedTokensError):
        render_conversation(DIALOG, tiny, "chatml", max_length=prompt_len)
    assert issubclass(NoTrainedTokensError, ValueError)


def test_render_many_counts_drops_and_truncated_turns(tiny):
    prepare_tokenizer(tiny, "lima")
    convs = [Conversation.from_turns([Turn(m["role"], m["content"]) for m in d], source="t")
             for d in (DIALOG, DIALOG[:2], [{"role": "user", "content": "x " * 300}, DIALOG[1]])]
    first_len = len(render_conversation(DIALOG[:2], tiny, "lima").input_ids)
    examples, counts = render_many(convs, tiny, "lima", max_length=first_len)
    assert [e.id for e in examples] == [convs[0].id, convs[1].id]
    assert counts == {"no_trained_tokens": 1, "truncated_examples": 1, "truncated_turns": 2}


def test_highlight_marks_trained_spans_and_dims_special_tokens(tiny):
    prepare_tokenizer(tiny, "chatml")
    example = render_conversation(DIALOG[:2], tiny, "chatml")
    text = highlight(example, tiny)
    assert text.plain == example.text
    green = [(s.start, s.end) for s in text.spans if s.style == "bold green"]
    assert green == list(example.assistant_spans)
    dim = {example.text[s.start:s.end] for s in text.spans if s.style == "dim"}
    assert dim == {"<|im_start|>", "<|im_end|>"}


@pytest.mark.shared_data
def test_bos_only_for_tokenizers_that_start_with_it(llama2, tiny):
    """chatml and lima start with BOS on LLaMA-2 (its tokenizer adds <s>), not on a tokenizer
    that never adds BOS (SmolLM2's bos_token is <|im_start|>, which must not be doubled)."""
    llama2 = copy.deepcopy(llama2)
    prepare_tokenizer(llama2, "chatml")
    assert render_conversation(DIALOG[:2], llama2, "chatml").text.startswith("<s><|im_start|>user\n")
    prepare_tokenizer(tiny, "lima")
    assert render_conversation(DIALOG[:2], tiny, "lima").text.startswith("What is 2+3?")
