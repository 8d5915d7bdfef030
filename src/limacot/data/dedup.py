"""Cleaning a training pool: exact duplicates, near duplicates, benchmark contamination.

Pure functions over lists of `Conversation` (compared through `Conversation.text()`);
no file I/O. Every function keeps the FIRST occurrence, so the input order decides which
copy survives, and names the kept record in what it removes. Text is compared after
`normalize_text` (Unicode NFKC, casefold, whitespace collapsed), which treats Korean and
English alike.

    >>> kept, removed = exact_dedup(records)
    >>> kept, near = near_dedup(kept, threshold=0.8)
    >>> report = decontaminate(kept, {"kobest_copa": copa_texts}, remove=True)
    >>> train = report.kept
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Sequence

from limacot.data.records import Conversation
from limacot.errors import LimacotInputError


def normalize_text(text: str) -> str:
    """NFKC, casefold, every whitespace run -> one space, stripped.

    >>> normalize_text("  Hello\\n\\tWORLD ")
    'hello world'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class Duplicate(NamedTuple):
    """A removed exact duplicate and the id of the earlier record it repeats."""

    record: Conversation
    kept_id: str


class NearDuplicate(NamedTuple):
    """A removed near duplicate, the kept record it resembles, and their estimated Jaccard."""

    record: Conversation
    kept_id: str
    jaccard: float


def exact_dedup(records: Sequence[Conversation]) -> tuple[list[Conversation], list[Duplicate]]:
    """Drop records whose normalised text equals an earlier record's (key: its sha256).

    Returns (kept, removed) with kept in input order and removed as (record, kept_id) pairs.
    """
    first: dict[bytes, Conversation] = {}
    kept: list[Conversation] = []
    removed: list[Duplicate] = []
    for record in records:
        key = hashlib.sha256(normalize_text(record.text()).encode("utf-8")).digest()
        if key in first:
            removed.append(Duplicate(record, first[key].id))
        else:
            first[key] = record
            kept.append(record)
    return kept, removed


def _shingle_hash(shingle: bytes) -> int:
    """32-bit hash of one shingle. CRC-32 is faster than datasketch's default SHA-1
    (`benchmarks/data_build.py` prints both) and deterministic across runs; MinHash's affine32 scheme mixes it with MurmurHash3's
    finaliser before permuting, which removes CRC's linearity."""
    return zlib.crc32(shingle)


def _shingles(text: str, size: int) -> list[bytes]:
    """Distinct character `size`-grams of the normalised text (the whole text if shorter)."""
    norm = normalize_text(text)
    grams = {norm[i:i + size] for i in range(max(1, len(norm) - size + 1))}
    return [g.encode("utf-8") for g in grams]


def near_dedup(records: Sequence[Conversation], threshold: float = 0.8, num_perm: int = 128,
               shingle_size: int = 5, seed: int = 1) -> tuple[list[Conversation], list[NearDuplicate]]:
    """Drop records whose character-shingle set is within `threshold` Jaccard of an earlier kept one.

    MinHash (datasketch, `num_perm` permutations, `seed`) over the distinct character
    `shingle_size`-grams of each normalised text; a MinHashLSH index tuned to `threshold`
    proposes candidates among the records kept so far, and a record is removed when a
    candidate's estimated Jaccard is >= threshold. Removed entries name the most similar
    kept record (earliest on ties) and the estimate. Exact duplicates are caught too
    (Jaccard 1.0), but `exact_dedup` first is cheaper and exact. Estimates carry MinHash
    noise (std ~ sqrt(J(1-J)/num_perm)), so pairs near the threshold may go either way.
    """
    from datasketch import MinHash, MinHashLSH

    if not 0.0 < threshold <= 1.0:
        raise LimacotInputError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if shingle_size < 1 or num_perm < 2:
        raise LimacotInputError(f"need shingle_size >= 1 and num_perm >= 2, got {shingle_size}, {num_perm}")
    sketches = MinHash.generator((_shingles(r.text(), shingle_size) for r in records),
                                 num_perm=num_perm, seed=seed, hashfunc=_shingle_hash)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept_sketch: dict[int, MinHash] = {}
    kept: list[Conversation] = []
    removed: list[NearDuplicate] = []
    for i, (record, sketch) in enumerate(zip(records, sketches)):
        scored = [(kept_sketch[j].jaccard(sketch), -j) for j in lsh.query(sketch)]
        best = max(scored, default=None)
        if best is not None and best[0] >= threshold:
            removed.append(NearDuplicate(record, records[-best[1]].id, float(best[0])))
        else:
            lsh.insert(i, sketch)
            kept_sketch[i] = sketch
            kept.append(record)
    return kept, removed


# ---------------------------------------------------------------- decontamination

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Punctuation-insensitive words: runs of Unicode word characters after NFKC + casefold.

    >>> words("민수는 사과 3개를 샀다. Don't!")
    ['민수는', '사과', '3개를', '샀다', 'don', 't']
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def eval_texts_from_rows(rows: Iterable[dict]) -> list[str]:
    """The texts of eval rows (e.g. from `limacot.data.sources.iter_rows`), distinct, in order.

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

    `n_texts` eval texts were checked; `too_short` had fewer than `min_words` words and
    could not be checked. `matched_ids` lists the overlapping training records in pool
    order; `examples[id]` is one n-gram (words joined by spaces) they share.
    """

    name: str
    n_texts: int
    too_short: int
    matched_ids: list[str] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)


@dataclass
class ContaminationReport:
    """What `decontaminate` found. `kept` is the pool minus `removed` (empty unless remove=True)."""

    ngram: int
    min_words: int
    eval_sets: dict[str, EvalSetContamination]
    contaminated_ids: list[str]
    kept: list[Conversation]
    removed: list[Conversation]

    def to_json(self) -> dict:
        """A JSON-ready summary (no records, only ids)."""
        return {"ngram": self.ngram, "min_words": self.min_words,
                "contaminated": len(self.contaminated_ids), "removed": len(self.removed),
                "eval_sets": {n: {"texts": s.n_texts, "too_short": s.too_short,
                                  "matched": len(s.matched_ids), "examples": s.examples}
                              for n, s in self.eval_sets.items()}}


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


def decontaminate(records: Sequence[Conversation], eval_sets: dict[str, list[str]], ngram: int = 13,
                  min_words: int = 8, remove: bool = False) -> ContaminationReport:
    """Find training records sharing a word n-gram with an eval text.

    Words come from `words` (NFKC, casefold, punctuation dropped; works for Korean). A
    training record overlaps an eval set when its text contains any `ngram`-word window of
    one of the set's texts; an eval text with min_words <= length < ngram words must appear
    whole. Eval texts with fewer than `min_words` words are counted as `too_short` per set.
    With remove=True the overlapping records go to `removed` and the rest to `kept`;
    otherwise `kept` is every record. Words are mapped to ints and n-grams looked up in
    hash sets, skipping windows that hold a word no eval text has.
    """
    if ngram < 1 or not 1 <= min_words <= ngram:
        raise LimacotInputError(f"need ngram >= 1 and 1 <= min_words <= ngram, got ngram={ngram}, "
                                f"min_words={min_words}")
    vocab: dict[str, int] = {}
    grams, stats = _eval_index(eval_sets, ngram, min_words, vocab)
    sizes = sorted(grams)
    vocab_words = list(vocab)  # ids were handed out in insertion order
    contaminated: list[str] = []
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
        for name, example in found.items():
            stats[name].matched_ids.append(record.id)
            stats[name].examples.setdefault(record.id, example)
        if found:
            contaminated.append(record.id)
    bad = set(contaminated) if remove else set()
    return ContaminationReport(ngram, min_words, stats, contaminated,
                               kept=[r for r in records if r.id not in bad],
                               removed=[r for r in records if r.id in bad])

