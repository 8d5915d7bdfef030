"""Chat templates as data, and the assistant-only label mask.

Each built-in template is a Jinja chat template, the same kind a Hugging Face tokenizer
stores in `chat_template`: training saves it with the tokenizer, so transformers, vLLM
and lm-eval prompt the model exactly as it was trained. Contents are stripped.

    messages: [system "Be brief."] user "Hi", assistant "Hello!"
    llama-2:  <s>[INST] <<SYS>>\\nBe brief.\\n<</SYS>>\\n\\nHi [/INST] Hello! </s>
    llama-3:  <|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\nBe brief.<|eot_id|>
              <|start_header_id|>user<|end_header_id|>\\n\\nHi<|eot_id|>
              <|start_header_id|>assistant<|end_header_id|>\\n\\nHello!<|eot_id|>   (one line)
    chatml:   {bos}<|im_start|>system\\nBe brief.<|im_end|>\\n<|im_start|>user\\nHi<|im_end|>\\n
              <|im_start|>assistant\\nHello!<|im_end|>\\n                          (one line)
    lima:     {bos}Be brief.<EOT>Hi<EOT>Hello!<EOT>
    tokenizer: whatever the tokenizer's own `chat_template` renders.

`render_conversation` turns a conversation into (input_ids, labels): labels are -100
except on assistant contents and their end-of-turn token (the model must learn to
stop). The same mechanism serves every template: assistant spans come from rendering
prefixes of the conversation, and the full text is tokenized once, as the serving
stack will tokenize it, so training and inference see the same tokens.

Why not tokenize each segment between special tokens (as Meta's reference code encodes
each turn separately)? For LLaMA-2, SentencePiece adds a dummy-prefix space to every
separately encoded piece, so `<s>[INST]` must become `<s>`, `▁[`. A Hugging Face Llama
tokenizer with `legacy=False` prefixes only the start of the string and gives `[`
there; tokenizing per segment would hide that at training time but not at serving time,
where vLLM/transformers tokenize the whole prompt. So the fix lives in the tokenizer:
`limacot.models.tokenizer_files.load_tokenizer_file` prefixes every chunk, and the tests check
that the whole-string ids equal Meta's `[bos] + sp.encode(...) + [eos]` per turn.
Every template special token in the text is checked to be one token with its own id.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from limacot.data.records import Conversation, Turn, TurnError
from limacot.errors import LimacotInputError

IGNORE_INDEX = -100


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template plus what training needs to know about it.

    `eot` is the end-of-turn string that closes every assistant turn (labelled, so the
    model learns to stop); `special_tokens` are the strings that must be single special
    tokens in the tokenizer (`prepare_tokenizer` adds the missing ones). `jinja` and
    `eot` are None for the `tokenizer` template until `resolve_template` fills them in.
    """

    name: str
    jinja: str | None
    eot: str | None
    special_tokens: tuple[str, ...] = ()
    resolved: bool = False  # set by `resolve_template`: already fitted to a tokenizer


_BOS = "{{- bos_token if bos_token else '' -}}"
_LLAMA2 = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '<s>[INST] ' + ((system if loop.first else '') + message['content']).strip() + ' [/INST]' -}}"
    "{%- else -%}{{- ' ' + message['content'].strip() + ' </s>' -}}{%- endif -%}"
    "{%- endfor -%}"
)
_LLAMA3 = (
    "{{- '<|begin_of_text|>' -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'].strip() + '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)
_CHATML = (
    _BOS + "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'].strip() + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
_LIMA = _BOS + "{%- for message in messages -%}{{- message['content'].strip() + '<EOT>' -}}{%- endfor -%}"

_BUILTIN = {
    "llama-2": ChatTemplate("llama-2", _LLAMA2, "</s>", ("<s>", "</s>")),
    "llama-3": ChatTemplate("llama-3", _LLAMA3, "<|eot_id|>",
                            ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    "chatml": ChatTemplate("chatml", _CHATML, "<|im_end|>", ("<|im_start|>", "<|im_end|>")),
    "lima": ChatTemplate("lima", _LIMA, "<EOT>", ("<EOT>",)),
    "tokenizer": ChatTemplate("tokenizer", None, None),
}
TEMPLATE_NAMES: tuple[str, ...] = tuple(_BUILTIN)


class NoTrainedTokensError(ValueError):
    """After truncation no assistant token is left to train on; callers drop and count it."""


@dataclass(frozen=True)
class RenderedExample:
    """One training example. `labels[i]` is `input_ids[i]` on assistant tokens, else -100."""

    text: str
    input_ids: list[int]
    labels: list[int]
    assistant_spans: tuple[tuple[int, int], ...]  # char spans in `text`: content + end of turn
    dropped_turns: int = 0  # trailing turns (user and assistant) cut by truncation
    truncated: bool = False  # shortened to max_length (turns dropped or tokens cut)
    id: str | None = None  # the conversation's id, when rendered from a Conversation


def get_template(name: str | ChatTemplate) -> ChatTemplate:
    """The built-in template called `name` (a ChatTemplate passes through)."""
    if isinstance(name, ChatTemplate):
        return name
    if name not in _BUILTIN:
        raise LimacotInputError(f"unknown chat template {name!r}; expected one of: {', '.join(TEMPLATE_NAMES)}")
    return _BUILTIN[name]


def prepare_tokenizer(tokenizer, template: str | ChatTemplate) -> list[str]:
    """Add the template's special tokens that the tokenizer lacks; return those given new ids.

    Idempotent. The caller resizes the model's embeddings for the returned tokens, e.g.
    chatml on LLaMA-2 returns ['<|im_start|>', '<|im_end|>'] (ids 32000, 32001), and a
    second call returns []. A string already in the vocabulary as an ordinary piece is
    made special (matched whole) but keeps its id, so it is not returned.
    """
    from tokenizers import AddedToken

    template = get_template(template)
    have = tokenizer.get_added_vocab()
    missing = [t for t in template.special_tokens if t not in have]
    if not missing:
        return []
    before = len(tokenizer)
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
    return [t for t in missing if tokenizer.convert_tokens_to_ids(t) >= before]


def _special_strings(tokenizer) -> list[str]:
    """Every special or added token string of the tokenizer, longest first."""
    found = {str(t) for t in tokenizer.all_special_tokens}
    found |= {str(t) for t in tokenizer.added_tokens_decoder.values()}
    return sorted((t for t in found if t), key=len, reverse=True)


def _apply(tokenizer, template: ChatTemplate, messages: list[dict], add_generation_prompt: bool = False) -> str:
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(messages, chat_template=template.jinja, tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except TemplateError as e:
        raise LimacotInputError(f"chat template {template.name!r} failed to render: {e}") from None


def _adds_bos(tokenizer) -> bool:
    """Whether the tokenizer itself starts sequences with its BOS (LLaMA: yes; SmolLM2, Qwen: no)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def resolve_template(template: str | ChatTemplate, tokenizer) -> ChatTemplate:
    """Fill in the `tokenizer` template from the tokenizer; drop the leading BOS of chatml
    and lima for tokenizers that do not start sequences with BOS themselves (SmolLM2's
    `bos_token` is `<|im_start|>`, which must not be doubled); others pass through.

    Its end of turn is the first special token rendered after the assistant content:
    for a Qwen-style template that renders `...<|im_start|>assistant\\nPROBE<|im_end|>\\n`
    it is `<|im_end|>`.
    """
    template = get_template(template)
    if template.resolved:
        return template
    if template.jinja is not None:
        if template.jinja.startswith(_BOS) and not _adds_bos(tokenizer):
            return replace(template, jinja=template.jinja[len(_BOS):], resolved=True)
        return replace(template, resolved=True)
    jinja = tokenizer.chat_template
    if isinstance(jinja, dict):  # several named templates: the default one
        jinja = jinja.get("default")
    if not jinja:
        raise LimacotInputError("chat template 'tokenizer' needs a tokenizer with a chat_template, and this one "
                                f"has none; pick one of: {', '.join(n for n in TEMPLATE_NAMES if n != 'tokenizer')}")
    probe = "limacot probe answer"
    text = _apply(tokenizer, replace(template, jinja=jinja),
                  [{"role": "user", "content": "limacot probe question"}, {"role": "assistant", "content": probe}])
    after = text.find(probe) + len(probe) if probe in text else len(text)
    hits = [(at, -len(s), s) for s in _special_strings(tokenizer) if (at := text.find(s, after)) >= 0]
    if not hits:
        raise LimacotInputError("the tokenizer's chat_template does not end assistant turns with a special token, "
                                "so a model could not learn to stop; use one of the built-in templates instead")
    return replace(template, jinja=jinja, eot=min(hits)[2], resolved=True)


def _messages(conversation: Conversation | Sequence[dict]) -> tuple[list[dict], str | None]:
    if isinstance(conversation, Conversation):
        return conversation.messages, conversation.id
    try:
        turns = [Turn(m["role"], m["content"]) for m in conversation]
        return Conversation.from_turns(turns, source="messages").messages, None
    except (KeyError, TypeError) as e:
        raise LimacotInputError(f"messages: expected a list of {{'role', 'content'}} dicts ({e!r})") from None
    except TurnError as e:
        raise LimacotInputError(f"messages{e}") from None


def _render_spans(messages: list[dict], tokenizer, template: ChatTemplate):
    """The rendered text, each assistant span and the end of each (user, assistant) pair.

    Before/after, chatml with bos `<s>`:
        [user "Hi", assistant "Hello!"]
        -> text  "<s><|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello!<|im_end|>\\n"
           spans [(55, 71)]  i.e. "Hello!<|im_end|>" (the newline after it is not trained)
           ends  [72]
    The prefix with the generation prompt must be a prefix of the text up to that
    assistant turn, which must be a prefix of the whole text; templates that rewrite
    earlier turns (e.g. drop past reasoning) cannot be masked this way and are refused.
    """
    text = _apply(tokenizer, template, messages)
    spans, ends = [], []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _apply(tokenizer, template, messages[:k], add_generation_prompt=True)
        upto = _apply(tokenizer, template, messages[:k + 1])
        if not (upto.startswith(prompt) and text.startswith(upto)):
            raise LimacotInputError(f"chat template {template.name!r} is not prefix-stable at message {k}: rendering "
                                    "the first turns does not give a prefix of the whole conversation, so the "
                                    "assistant turns cannot be located; use a built-in template")
        eot = upto.rfind(template.eot, len(prompt))
        if eot < 0:
            raise LimacotInputError(f"chat template {template.name!r} does not end assistant message {k} "
                                    f"with its end-of-turn {template.eot!r}")
        spans.append((len(prompt), eot + len(template.eot)))
        ends.append(len(upto))
    return text, spans, ends


def _tokenize(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _check_special_tokens(text: str, ids: list[int], offsets: list[tuple[int, int]], tokenizer,
                          template: ChatTemplate) -> None:
    """Each template special token in the text must be exactly one token with its own id."""
    strings = sorted(set(template.special_tokens) | {template.eot}, key=len, reverse=True)
    by_start = {start: (end, i) for i, (start, end) in zip(ids, offsets)}
    for m in re.finditer("|".join(map(re.escape, strings)), text):
        end, token_id = by_start.get(m.start(), (None, None))
        if end != m.end() or token_id != tokenizer.convert_tokens_to_ids(m.group()):
            raise LimacotInputError(f"{m.group()!r} (needed by chat template {template.name!r}) is not a single "
                                    "special token in this tokenizer; call prepare_tokenizer(tokenizer, template) "
                                    "first and resize the model's embeddings")


def _labels(ids: list[int], offsets: list[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """`ids` where the token's characters overlap an assistant span, else -100.

    Before/after: ids [5, 6, 7, 8], offsets [(0, 2), (2, 4), (4, 6), (6, 7)], spans [(3, 6)]
    -> [-100, 6, 7, -100]  (a token straddling the span's start counts as assistant)
    """
    labels, s = [IGNORE_INDEX] * len(ids), 0
    for i, (start, end) in enumerate(offsets):
        while s < len(spans) and start >= spans[s][1]:
            s += 1
        if s == len(spans):
            break
        if end > spans[s][0]:
            labels[i] = ids[i]
    return labels


def render_conversation(conversation: Conversation | Sequence[dict], tokenizer, template: str | ChatTemplate,
                        max_length: int = 2048) -> RenderedExample:
    """Render, tokenize and mask one conversation, truncated to `max_length` tokens.

    Before/after, llama-2 (real LLaMA-2 tokenizer), max_length 2048:
        [user "Hi", assistant "Hello!"]
        -> text  "<s>[INST] Hi [/INST] Hello! </s>"
           input_ids [1, 518, 25580, 29962, 6324, 518, 29914, 25580, 29962, 15043, 29991, 29871, 2]
           labels    [-100 x 9, 15043, 29991, 29871, 2]   ("Hello! </s>")
    Too long: whole trailing (user, assistant) pairs are dropped; if the first pair alone
    is too long, tokens are cut at `max_length`. NoTrainedTokensError if no assistant
    token survives.
    """
    if max_length < 1:
        raise LimacotInputError(f"max_length must be at least 1, got {max_length}")
    template = resolve_template(template, tokenizer)
    messages, conv_id = _messages(conversation)
    text, spans, ends = _render_spans(messages, tokenizer, template)
    ids, offsets = _tokenize(tokenizer, text)
    _check_special_tokens(text, ids, offsets, tokenizer, template)
    keep, truncated = len(spans), len(ids) > max_length
    if truncated and keep > 1:
        token_ends = [end for _, end in offsets]
        keep = max(1, sum(bisect.bisect_right(token_ends, e) <= max_length for e in ends))
        while True:  # re-tokenize the shorter text: a token may straddle a pair boundary
            text, spans = text[:ends[keep - 1]], spans[:keep]
            ids, offsets = _tokenize(tokenizer, text)
            if len(ids) <= max_length or keep == 1:
                break
            keep -= 1
    if len(ids) > max_length:
        ids, offsets = ids[:max_length], offsets[:max_length]
        text = text[:offsets[-1][1]]
        spans = [(a, min(b, len(text))) for a, b in spans if a < len(text)]
    labels = _labels(ids, offsets, spans)
    if all(label == IGNORE_INDEX for label in labels):
        raise NoTrainedTokensError(f"no assistant token left within max_length={max_length} "
                                   f"(conversation {conv_id or '(messages)'})")
    return RenderedExample(text=text, input_ids=ids, labels=labels, assistant_spans=tuple(spans),
                           dropped_turns=2 * (len(ends) - keep), truncated=truncated, id=conv_id)


def render_many(conversations: Iterable[Conversation | Sequence[dict]], tokenizer, template: str | ChatTemplate,
                max_length: int = 2048) -> tuple[list[RenderedExample], Counter]:
    """Render every conversation; drop those with nothing to train on.

    The counter holds `no_trained_tokens` (dropped), `truncated_examples` (kept but
    shortened) and `truncated_turns` (trailing turns dropped in all).
    """
    template = resolve_template(template, tokenizer)
    examples, counts = [], Counter()
    for conversation in conversations:
        try:
            example = render_conversation(conversation, tokenizer, template, max_length)
        except NoTrainedTokensError:
            counts["no_trained_tokens"] += 1
            continue
        examples.append(example)
        counts["truncated_examples"] += example.truncated
        counts["truncated_turns"] += example.dropped_turns
    return examples, counts


def token_counts(example: RenderedExample) -> dict[str, int]:
    """{'tokens': total, 'trained_tokens': tokens with a label}."""
    return {"tokens": len(example.input_ids),
            "trained_tokens": sum(label != IGNORE_INDEX for label in example.labels)}


def highlight(example: RenderedExample, tokenizer):
    """The rendered text as rich Text: trained spans bold green, special tokens dimmed."""
    from rich.text import Text

    out = Text(example.text)
    for start, end in example.assistant_spans:
        out.stylize("bold green", start, end)
    specials = _special_strings(tokenizer)
    if specials:
        for m in re.finditer("|".join(map(re.escape, specials)), example.text):
            out.stylize("dim", m.start(), m.end())
    return out
