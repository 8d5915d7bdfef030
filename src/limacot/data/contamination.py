"""Benchmark contamination: training records that share text with an evaluation set.

Two ways to compare (`mode`), both on Unicode NFKC + casefolded text:

    word   runs of `ngram` words (13, as in GPT-3's and LLaMA's reports); punctuation dropped.
           An eval text of min_words..ngram-1 words must appear whole.
    char   runs of `char_ngram` characters of the text with whitespace and punctuation removed
           (letters and digits only). Korean spacing varies between copies of one sentence and a
           short item (a KoBEST COPA premise is 3-5 words) never reaches 13 words; characters
           catch both. An eval text of min_chars..char_ngram-1 characters must appear whole.

Eval texts shorter than the minimum cannot be checked and are counted per eval set.

    >>> report = decontaminate(records, {"kobest_copa": copa_texts}, mode="char", remove=True)
    >>> train = report.kept
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Literal, Sequence

import numpy as np

from limacot.data.dedup import pair_units
from limacot.data.records import Conversation
from limacot.errors import LimacotInputError

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Punctuation-insensitive words: runs of Unicode word characters after NFKC + casefold.

    >>> words("민수는 사과 3개를 샀다. Don't!")
    ['민수는', '사과', '3개를', '샀다', 'don', 't']
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def letters(text: str) -> str:
    """The text as `char` mode compares it: its `words` joined with nothing in between.

    >>> letters("민수는 사과 3개를  샀다. Don't!")
    '민수는사과3개를샀다dont'
    """
    return "".join(words(text))


def eval_texts_from_rows(rows: Iterable[dict]) -> list[str]:
    """The texts of eval rows (e.g. from `limacot.data.files.iter_rows`), distinct, in order.

    Rule: every string value in a row, looking into nested lists and dicts, is a text when it
    has at least 2 whitespace-separated tokens and at least one letter. This keeps passages,
    questions and sentence-length answer options and drops ids, labels and one-word options
    ("1", "True", "원인", "B", a URL). Identical texts are kept once.
    """
    texts: dict[str, None] = {}

    def visit(value: object) -> None:
        if isinstance(value, str):
            text = value.strip()
            if len(text.split()) >= 2 and any(ch.isalpha() for ch in text):
                texts.setdefault(text)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    for row in rows:
        visit(row)
    return list(texts)


@dataclass
class EvalSetContamination:
    """Overlap of the training pool with one eval set.

    `n_texts` eval texts were checked; `too_short` were below the minimum length (words or
    characters, by mode) and could not be checked. `matched_ids` lists the overlapping
    training records in pool order; `examples[id]` is one n-gram they share.
    """

    name: str
    n_texts: int
    too_short: int
    matched_ids: list[str] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)


@dataclass
class ContaminationReport:
    """What `decontaminate` found. `kept` is the pool minus `removed` (empty unless remove=True);
    `removed_at` are the removed records' positions in the input, `with_twin_at` those of the
    removed records that overlap nothing themselves but go with a twin that does."""

    mode: str
    ngram: int
    min_words: int
    char_ngram: int
    min_chars: int
    eval_sets: dict[str, EvalSetContamination]
    contaminated_ids: list[str]
    kept: list[Conversation]
    removed: list[Conversation]
    removed_at: list[int] = field(default_factory=list)
    with_twin_at: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-ready summary (no records, only ids)."""
        return {"mode": self.mode, "ngram": self.ngram, "min_words": self.min_words,
                "char_ngram": self.char_ngram, "min_chars": self.min_chars,
                "contaminated": len(self.contaminated_ids), "removed": len(self.removed),
                "removed_with_twin": len(self.with_twin_at),
                "eval_sets": {n: {"texts": s.n_texts, "too_short": s.too_short,
                                  "matched": len(s.matched_ids), "examples": s.examples}
                              for n, s in self.eval_sets.items()}}


def decontaminate(records: Sequence[Conversation], eval_sets: dict[str, list[str]], ngram: int = 13,
                  min_words: int = 8, remove: bool = False, *, mode: Literal["word", "char"] = "word",
                  char_ngram: int = 40, min_chars: int = 20,
                  pair_keys: Sequence[Hashable | None] | None = None) -> ContaminationReport:
    """Find training records sharing a word or character n-gram with an eval text (see the module
    docstring for the two modes).

    With remove=True the overlapping records go to `removed` and the rest to `kept`, and a
    record goes with its twins (the records of the same `pair_keys` key, see
    `limacot.data.dedup.pair_units`); otherwise `kept` is every record.
    """
    if mode == "word":
        if ngram < 1 or not 1 <= min_words <= ngram:
            raise LimacotInputError(f"need ngram >= 1 and 1 <= min_words <= ngram, got ngram={ngram}, "
                                    f"min_words={min_words}")
        found, stats = _word_matches(records, eval_sets, ngram, min_words)
    elif mode == "char":
        if char_ngram < 1 or not 1 <= min_chars <= char_ngram:
            raise LimacotInputError(f"need char_ngram >= 1 and 1 <= min_chars <= char_ngram, got "
                                    f"char_ngram={char_ngram}, min_chars={min_chars}")
        index = CharIndex(eval_sets, char_ngram, min_chars)
        found, stats = [index.matches(letters(r.text())) for r in records], index.stats
    else:
        raise LimacotInputError(f"unknown decontamination mode {mode!r}; expected 'word' or 'char'")
    contaminated: list[str] = []
    for record, matches in zip(records, found):
        for name, example in matches.items():
            stats[name].matched_ids.append(record.id)
            stats[name].examples.setdefault(record.id, example)
        if matches:
            contaminated.append(record.id)
    gone: dict[int, bool] = {}  # position -> overlaps itself
    for unit in pair_units(len(records), pair_keys) if remove else []:
        if any(found[i] for i in unit):
            gone.update({i: bool(found[i]) for i in unit})
    return ContaminationReport(mode, ngram, min_words, char_ngram, min_chars, stats, contaminated,
                               kept=[r for i, r in enumerate(records) if i not in gone],
                               removed=[records[i] for i in sorted(gone)], removed_at=sorted(gone),
                               with_twin_at=[i for i in sorted(gone) if not gone[i]])


# ---------------------------------------------------------------- word mode

GramIndex = dict[int, dict[tuple[int, ...], set[str]]]  # {length: {word-id tuple: eval set names}}


def _eval_index(eval_sets: dict[str, list[str]], ngram: int, min_words: int,
                vocab: dict[str, int]) -> tuple[GramIndex, dict[str, EvalSetContamination]]:
    """Index the eval texts' n-grams by length; fill `vocab` (word -> id) on the way."""
    grams: GramIndex = {}
    stats: dict[str, EvalSetContamination] = {}
    for name, texts in eval_sets.items():
        stats[name] = EvalSetContamination(name, n_texts=len(texts), too_short=0)
        for text in texts:
            text_words = words(text)
            if len(text_words) < min_words:
                stats[name].too_short += 1
                continue
            ids = tuple(vocab.setdefault(w, len(vocab)) for w in text_words)
            size = min(len(ids), ngram)
            table = grams.setdefault(size, {})
            for i in range(len(ids) - size + 1):
                table.setdefault(ids[i:i + size], set()).add(name)
    return grams, stats


def _known_runs(ids: list[int], min_len: int) -> Iterable[list[int]]:
    """Maximal runs of in-vocabulary ids (>= 0) at least `min_len` long: only they can match."""
    start = 0
    for i, value in enumerate(ids + [-1]):
        if value < 0:
            if i - start >= min_len:
                yield ids[start:i]
            start = i + 1


def _word_matches(records: Sequence[Conversation], eval_sets: dict[str, list[str]], ngram: int,
                  min_words: int) -> tuple[list[dict[str, str]], dict[str, EvalSetContamination]]:
    """{eval set: one shared n-gram} per record. Words are mapped to ints and n-grams looked up in
    hash sets, skipping windows that hold a word no eval text has."""
    vocab: dict[str, int] = {}
    grams, stats = _eval_index(eval_sets, ngram, min_words, vocab)
    sizes = sorted(grams)
    vocab_words = list(vocab)  # ids were handed out in insertion order
    out = []
    for record in records:
        ids = [vocab.get(w, -1) for w in words(record.text())]
        found: dict[str, str] = {}
        for run in _known_runs(ids, sizes[0] if sizes else len(ids) + 1):
            for size in sizes:
                table = grams[size]
                for i in range(len(run) - size + 1):
                    for name in table.get(tuple(run[i:i + size]), ()):
                        if name not in found:
                            found[name] = " ".join(vocab_words[j] for j in run[i:i + size])
        out.append(found)
    return out, stats


# ---------------------------------------------------------------- char mode

_BASE = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64


def _powers(base: int, length: int) -> np.ndarray:
    """base**k modulo 2**64 for k < length (uint64 arithmetic wraps around)."""
    return np.concatenate([np.ones(1, np.uint64), np.cumprod(np.full(length - 1, base, np.uint64))])


def window_hashes(text: str, size: int) -> np.ndarray:
    """Polynomial hash (mod 2**64) of every `size`-character window of `text`, one per start
    position, from prefix sums: O(len) numpy work for any window size. Equal windows have equal
    hashes; callers confirm a hit by comparing the strings."""
    n = len(text)
    if n < size or size < 1:
        return np.empty(0, np.uint64)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    power, inverse = _powers(_BASE, n), _powers(pow(_BASE, -1, 1 << 64), n)
    prefix = np.zeros(n + 1, np.uint64)
    np.cumsum(codes * inverse[:n], out=prefix[1:])
    return (prefix[size:] - prefix[:-size]) * power[size - 1:n]


class CharIndex:
    """The eval texts of `char` mode: every `ngram`-character window of a long text, and the
    first `min_chars` characters of each shorter one (which must then appear whole), as sorted
    hash arrays pointing back to (text, offset)."""

    def __init__(self, eval_sets: dict[str, list[str]], ngram: int, min_chars: int):
        self.ngram, self.min_chars = ngram, min_chars
        self.texts: list[tuple[str, str]] = []  # (eval set, letters)
        self.stats = {name: EvalSetContamination(name, n_texts=len(texts), too_short=0)
                      for name, texts in eval_sets.items()}
        long: list[tuple[np.ndarray, int]] = []
        short: list[tuple[np.ndarray, int]] = []
        for name, texts in eval_sets.items():
            for text in texts:
                chars = letters(text)
                if len(chars) < min_chars:
                    self.stats[name].too_short += 1
                    continue
                self.texts.append((name, chars))
                if len(chars) >= ngram:
                    long.append((window_hashes(chars, ngram), len(self.texts) - 1))
                else:
                    short.append((window_hashes(chars[:min_chars], min_chars), len(self.texts) - 1))
        self.long, self.short = _table(long), _table(short)

    def matches(self, chars: str) -> dict[str, str]:
        """{eval set: the shared text} for the training text `chars` (as `letters` gives it)."""
        found: dict[str, str] = {}
        for (hashes, owners, offsets), size, whole in ((self.long, self.ngram, False),
                                                       (self.short, self.min_chars, True)):
            if not len(hashes):
                continue
            windows = window_hashes(chars, size)
            at = np.searchsorted(hashes, windows)
            hit = np.flatnonzero(hashes[np.minimum(at, len(hashes) - 1)] == windows)
            for start in hit.tolist():
                k = int(at[start])
                while k < len(hashes) and hashes[k] == windows[start]:
                    name, text = self.texts[owners[k]]
                    if name not in found:
                        if whole and chars.startswith(text, start):
                            found[name] = text
                        elif not whole and chars[start:start + size] == text[offsets[k]:offsets[k] + size]:
                            found[name] = chars[start:start + size]
                    k += 1
        return found


def _table(parts: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes sorted, the text each came from, its offset in that text)."""
    if not parts:
        return np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.int64)
    hashes = np.concatenate([h for h, _ in parts])
    owners = np.concatenate([np.full(len(h), t, np.int64) for h, t in parts])
    offsets = np.concatenate([np.arange(len(h), dtype=np.int64) for h, _ in parts])
    order = np.argsort(hashes, kind="stable")
    return hashes[order], owners[order], offsets[order]
