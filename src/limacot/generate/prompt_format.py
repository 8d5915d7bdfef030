"""How a prompt reaches the model: its chat template, or the plain Question/Answer format.

A fine-tuned cell is prompted with the chat template its training saved with the tokenizer
(`limacot.data.templates`, e.g. `lima`). A base checkpoint (meta-llama/Llama-2-7b-hf,
Meta-Llama-3-8B) ships no chat template, so it is prompted in plain text instead, LIMA-style:
a system turn (if any) as the first line, two fixed example questions with their answers, then
the conversation as alternating Question/Answer lines ending in an open `Answer:`.

    [system "Be brief.", user "Hi", assistant "Hello!", user "Name a colour."]
    ->
    Be brief.

    Question: How many days are there in a leap year?
    Answer: A leap year has 366 days: February has 29 days instead of 28.

    Question: 무지개는 왜 생기나요?
    Answer: 햇빛이 공기 중의 물방울을 지나면서 굴절하고 반사되어 여러 색의 빛으로 나뉘기 때문입니다.

    Question: Hi
    Answer: Hello!

    Question: Name a colour.
    Answer:

The text is tokenized the way the tokenizer encodes any document (LLaMA: BOS first), as in
pretraining. Generation stops at the next `\\nQuestion:` (transformers' `stop_strings`), which
is cut from the answer; EOS still stops too. The two examples, one English and one Korean, show
a complete answer in the question's language; they are fixed, so every base cell sees the same
prompt.

Why not prompt a base model with the `lima` template, the format its fine-tuned cells were
trained on? That template renders `{bos}Hi<EOT>` with no cue that an answer follows, and its
`<EOT>` is a token that fine-tuning adds: in the base vocabulary it is the ordinary pieces
`<`, `E`, `OT`, `>`, a string the base model never saw as a turn boundary, so it would neither
know to answer nor when to stop. The fine-tuned cells do not share one template either (a study
may train with llama-2, chatml or lima). Question/Answer lines after a few examples are the
ordinary way to get answers from a pretrained model, so [base, X] compares X with the base model
prompted in a way it understands.

Whether a model gets the plain format depends only on the model (its tokenizer), so
`prompt_format_of` answers it from the tokenizer's config files, without loading weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from limacot.errors import LimacotInputError
from limacot.io.hub_files import hub_unavailable
from limacot.models.loading import MARKER, ResolvedModel, converted_dir, resolve_model_spec

PromptFormat = Literal["chat", "plain"]
CHAT: PromptFormat = "chat"
PLAIN: PromptFormat = "plain"

STOP_STRING = "\nQuestion:"  # a plain-format answer ends where the model starts the next question
PREAMBLE = (
    ("How many days are there in a leap year?",
     "A leap year has 366 days: February has 29 days instead of 28."),
    ("무지개는 왜 생기나요?",
     "햇빛이 공기 중의 물방울을 지나면서 굴절하고 반사되어 여러 색의 빛으로 나뉘기 때문입니다."),
)
TEMPLATE_FILE = "chat_template.jinja"  # where transformers saves a tokenizer's (default) chat template
TOKENIZER_CONFIG = "tokenizer_config.json"


def chat_template_of(tokenizer) -> str | None:
    """The tokenizer's default chat template, or None when it has none."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):  # several named templates: the default one
        template = template.get("default")
    return template if isinstance(template, str) and template.strip() else None


def has_chat_template(tokenizer) -> bool:
    """Whether `tokenizer` has a (default) chat template; without one, generation uses the plain format."""
    return chat_template_of(tokenizer) is not None


def render_plain(messages: Sequence[Mapping[str, Any]]) -> str:
    """The plain Question/Answer prompt of a conversation (see the module docstring).

        [user "What is 2+3?"] -> "Question: How many days ...\\n\\nQuestion: What is 2+3?\\nAnswer:"

    A system turn must come first; the conversation must end with a user turn.
    """
    messages = list(messages)
    head = ""
    if messages and messages[0]["role"] == "system":
        head, messages = messages[0]["content"].strip() + "\n\n", messages[1:]
    if not messages or messages[-1]["role"] != "user":
        raise LimacotInputError("the plain Question/Answer format answers a conversation that ends with a user "
                                f"turn; got roles {[m['role'] for m in messages]}")
    turns = [(role, text) for q, a in PREAMBLE for role, text in (("user", q), ("assistant", a))]
    turns += [(m["role"], m["content"]) for m in messages]
    parts = []
    for role, content in turns:
        if role == "user":
            parts.append(f"Question: {content.strip()}\nAnswer:")
        elif role == "assistant":
            parts.append(f" {content.strip()}\n\n")
        else:
            raise LimacotInputError(f"the plain Question/Answer format has user and assistant turns (and a first "
                                    f"system turn), not {role!r}")
    return head + "".join(parts)


def encode_prompt(tokenizer, messages: Sequence[Mapping[str, Any]], chat_template: str | None = None) -> list[int]:
    """The token ids a model is prompted with: the conversation rendered with `chat_template`
    (default: the tokenizer's own) plus the generation prompt, the template supplying the special
    tokens; without a template, `render_plain` encoded as the tokenizer encodes any text."""
    template = chat_template or chat_template_of(tokenizer)
    if template is None:
        return list(tokenizer(render_plain(messages))["input_ids"])
    text = tokenizer.apply_chat_template(list(messages), chat_template=template, add_generation_prompt=True,
                                         tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_format_of(model_spec: str | ResolvedModel) -> PromptFormat:
    """"chat" or "plain": how `limacot generate` will prompt `model_spec`, read from its tokenizer
    config alone (no weights, no tokenizer built), e.g. for a plan's dry run.

        embedded                 chat (SmolLM2-135M-Instruct ships one)
        local dir, adapter dir   chat_template.jinja, or a `chat_template` in tokenizer_config.json
        .gguf                    its converted checkpoint's files, else the GGUF's tokenizer.chat_template
        hf:org/name[@rev]        the same files from the Hugging Face cache, or downloaded (two small files)

    Raises LimacotInputError when it cannot be told (a hub model neither cached nor reachable).
    """
    resolved = model_spec if isinstance(model_spec, ResolvedModel) else resolve_model_spec(model_spec)
    if resolved.kind == "embedded":
        return CHAT
    if resolved.kind == "gguf":
        converted = converted_dir(resolved)
        if (converted / MARKER).is_file():
            return _folder_format(converted)
        return _gguf_format(Path(resolved.source) / str(resolved.gguf_file))
    if resolved.kind == "hf":
        return _hub_format(resolved)
    return _folder_format(Path(resolved.source))


def _usable(template: Any) -> bool:
    """Whether a tokenizer config's `chat_template` value gives a default template: a string, or a
    list of {"name", "template"} holding one named "default"."""
    if isinstance(template, list):
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"),
                        None)
    return isinstance(template, str) and bool(template.strip())


def _files_format(template_file: Path | None, config_file: Path | None) -> PromptFormat:
    """The format given a tokenizer's chat_template.jinja and tokenizer_config.json (None: absent)."""
    if template_file is not None and template_file.read_text(encoding="utf-8").strip():
        return CHAT
    if config_file is not None:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        if _usable(config.get("chat_template")):
            return CHAT
    return PLAIN


def _folder_format(folder: Path) -> PromptFormat:
    template, config = folder / TEMPLATE_FILE, folder / TOKENIZER_CONFIG
    return _files_format(template if template.is_file() else None, config if config.is_file() else None)


def _gguf_format(path: Path) -> PromptFormat:
    from gguf import GGUFReader  # deferred: only GGUF specs not yet converted need it

    field = GGUFReader(path).fields.get("tokenizer.chat_template")
    return CHAT if field is not None and _usable(field.contents()) else PLAIN


def _hub_format(resolved: ResolvedModel) -> PromptFormat:
    """From the Hugging Face cache when the hub cannot be asked, else downloaded (cached) from the hub."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache  # deferred: imports the HTTP stack
    from huggingface_hub.errors import EntryNotFoundError

    name = resolved.source + (f"@{resolved.revision}" if resolved.revision else "")
    why = hub_unavailable()
    if why is not None:
        found = {f: try_to_load_from_cache(resolved.source, f, revision=resolved.revision)
                 for f in (TEMPLATE_FILE, TOKENIZER_CONFIG)}
        if not isinstance(found[TOKENIZER_CONFIG], str):
            mode = "offline mode (HF_HUB_OFFLINE=1)" if why == "offline" else "the hub could not be reached"
            raise LimacotInputError(f"cannot tell whether hub model '{name}' has a chat template: its "
                                    f"{TOKENIZER_CONFIG} is not in the Hugging Face cache, and {mode}. Download "
                                    f"the model first (`hf download {resolved.source}`) where there is network")
        return _files_format(*(Path(p) if isinstance(p, str) else None for p in found.values()))
    paths: list[Path | None] = []
    for filename in (TEMPLATE_FILE, TOKENIZER_CONFIG):
        try:
            paths.append(Path(hf_hub_download(resolved.source, filename, revision=resolved.revision)))
        except EntryNotFoundError:
            paths.append(None)
        except Exception as err:  # gated, unknown repo or revision, network: one message that names the model
            detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise LimacotInputError(f"cannot tell whether hub model '{name}' has a chat template: reading its "
                                    f"{filename} failed ({type(err).__name__}: {detail}). Check the id and "
                                    f"revision; for a gated model set HF_TOKEN to a token with access") from None
    return _files_format(*paths)
