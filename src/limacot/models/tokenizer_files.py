"""Build a fast (offset-producing) tokenizer from Meta's raw `tokenizer.model` files.

Meta ships LLaMA-2 as a SentencePiece BPE model and LLaMA-3 as a tiktoken BPE file
(lines of ``base64 rank``), both named ``tokenizer.model``; the format is detected
from the content, not the name.

    >>> tok = load_tokenizer_file("tokenizers/llama2/tokenizer.model")
    >>> tok("Hello")["input_ids"]                 # [bos] + sp.encode("Hello")
    [1, 15043]
    >>> tok = load_tokenizer_file("tokenizers/llama3")   # a folder holding tokenizer.model
    >>> tok("Hello")["input_ids"], tok.convert_tokens_to_ids("<|eot_id|>")
    ([128000, 9906], 128009)

SentencePiece fidelity (checked against `SentencePieceProcessor.encode` in the tests):
BPE merges are ranked by the score of the merged piece, as SentencePiece does (ranking
by piece id, as transformers' generic extractor does, splits "a  b" differently), and
the dummy-prefix space is a `Prepend` normalizer, so every chunk between special
tokens gets it ("legacy" behaviour) even when it already starts with a space. That
makes the whole-string encoding of ``<s>[INST] ... </s><s>[INST] ...`` equal Meta's
per-turn ``[bos] + sp.encode(...) + [eos]``, and a model served from the saved
tokenizer.json sees exactly the tokens it was trained on.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from limacot.errors import LimacotInputError

# Meta's llama3 tokenizer.py: 10 named specials, then reserved 5..250 (256 in all), ids 128000.. .
LLAMA3_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|begin_of_text|>", "<|end_of_text|>",
    "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>",
) + tuple(f"<|reserved_special_token_{i}|>" for i in range(5, 251))
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_TIKTOKEN_LINE = re.compile(rb"^[A-Za-z0-9+/]+={0,2} \d+\r?$")
_EXPECTED = "a SentencePiece BPE model (LLaMA-2) or a tiktoken BPE file of 'base64 rank' lines (LLaMA-3)"


def is_raw_tokenizer(spec: str) -> bool:
    """True for a `*.model` file, or a folder with a `tokenizer.model` but no HF tokenizer files."""
    path = Path(spec)
    if path.is_file():
        return path.suffix == ".model"
    return (path.is_dir() and (path / "tokenizer.model").is_file()
            and not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists())


def load_tokenizer_file(path: str | Path):
    """A `PreTrainedTokenizerFast` from a raw `tokenizer.model` (or a folder holding one).

    Raises LimacotInputError naming the file when it is neither format.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.model"
    if not path.is_file():
        raise LimacotInputError(f"{path}: tokenizer file not found; expected {_EXPECTED}")
    data = path.read_bytes()
    if _is_tiktoken(data):
        return _from_tiktoken(path, data)
    return _from_sentencepiece(path, data)


def _is_tiktoken(data: bytes) -> bool:
    lines = data.split(b"\n", 20)[:20]
    return all(_TIKTOKEN_LINE.match(line) for line in lines if line) and bool(lines[0])


def _from_sentencepiece(path: Path, data: bytes):
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError (or RuntimeWarning-ish errors) on junk
        raise LimacotInputError(f"{path}: not a tokenizer file ({e}); expected {_EXPECTED}") from None
    if not proto.pieces:
        raise LimacotInputError(f"{path}: not a tokenizer file (no pieces); expected {_EXPECTED}")
    if proto.trainer_spec.model_type != 2:  # 1 unigram, 2 bpe, 3 word, 4 char
        raise LimacotInputError(f"{path}: SentencePiece model type {proto.trainer_spec.model_type} "
                                f"is not BPE; expected {_EXPECTED}")
    pieces = proto.pieces
    vocab = {p.piece: i for i, p in enumerate(pieces)}
    normal = {p.piece: (-p.score, i) for i, p in enumerate(pieces) if p.type == 1}
    ranked = sorted((normal[t], t[:k], t[k:]) for t in normal for k in range(1, len(t))
                    if t[:k] in normal and t[k:] in normal)
    spec, trainer = proto.normalizer_spec, proto.trainer_spec
    core = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for _, a, b in ranked], unk_token=trainer.unk_piece,
                                fuse_unk=True, byte_fallback=trainer.byte_fallback))
    steps = [normalizers.Precompiled(spec.precompiled_charsmap)] if spec.precompiled_charsmap else []
    if spec.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if spec.add_dummy_prefix:
        steps.append(normalizers.Prepend("▁"))
    core.normalizer = normalizers.Sequence(steps + [normalizers.Replace(" ", "▁")])
    core.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
                                     + ([decoders.Strip(" ", 1, 0)] if spec.add_dummy_prefix else []))
    specials = [p.piece for p in pieces if p.type in (2, 3)]  # unknown and control pieces
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    bos = pieces[trainer.bos_id].piece if trainer.bos_id >= 0 else None
    eos = pieces[trainer.eos_id].piece if trainer.eos_id >= 0 else None
    if bos:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, trainer.bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=eos,
                                   unk_token=trainer.unk_piece, clean_up_tokenization_spaces=False)


def _from_tiktoken(path: Path, data: bytes):
    """A byte-level BPE with tiktoken's ranks as merge priorities, plus the 256 specials.

    Built here rather than with `convert_tiktoken_to_fast`: that dumps the ranks to a
    file and reloads them through tiktoken, whose loader keeps a 2 MB copy per file path
    in the system temp dir (`data-gym-cache`), so every call would leave a file behind.
    A merge (left, right) ranks as the token it makes; `ignore_merges` emits a whole
    pre-token that is itself in the vocabulary, as tiktoken does.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    try:
        ranks = {base64.b64decode(token, validate=True): int(rank)
                 for token, rank in (line.split() for line in data.splitlines() if line.strip())}
    except ValueError as e:
        raise LimacotInputError(f"{path}: broken tiktoken file ({e}); expected {_EXPECTED}") from None
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise LimacotInputError(f"{path}: tiktoken ranks are not 0..{len(ranks) - 1} without gaps; "
                                f"expected {_EXPECTED}")
    chars = bytes_to_unicode()  # GPT-2's printable stand-in for each byte

    def text(token: bytes) -> str:
        return "".join(chars[b] for b in token)

    merges = sorted((rank, ranks[t[:k]], ranks[t[k:]], t[:k], t[k:]) for t, rank in ranks.items()
                    for k in range(1, len(t)) if t[:k] in ranks and t[k:] in ranks)
    core = Tokenizer(models.BPE({text(t): r for t, r in ranks.items()},
                                [(text(a), text(b)) for *_, a, b in merges], ignore_merges=True))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), "isolated"),
                                                  pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIAL_TOKENS])
    first = len(ranks)  # the specials follow the ranks, in Meta's order
    if [core.token_to_id(t) for t in LLAMA3_SPECIAL_TOKENS] != list(range(first, first + 256)):
        raise LimacotInputError(f"{path}: special token ids clash with the BPE ranks; expected {_EXPECTED}")
    core.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", first)]),
    ])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|begin_of_text|>",
                                   eos_token="<|end_of_text|>", clean_up_tokenization_spaces=False)
