"""Cleaning a training pool of duplicates: exact copies and near copies.

Pure functions over lists of `Conversation` (compared through `Conversation.text()`);
no file I/O. Every function keeps the FIRST occurrence, so the input order decides which
copy survives, and names the kept record in what it removes. Text is compared after
`normalize_text` (Unicode NFKC, casefold, whitespace collapsed), which treats Korean and
English alike. Twins (one row read in two CoT styles) share a pair key: they are never
compared with each other and are kept or removed together.

    >>> kept, removed = exact_dedup(records)
    >>> kept, near = near_dedup(kept, threshold=0.8)

Benchmark contamination is checked in `limacot.data.contamination`.
"""

from __future__ import annotations

import hashlib
import unicodedata
import zlib
from typing import Hashable, NamedTuple, Sequence

from limacot.data.records import Conversation
from limacot.errors import LimacotInputError


def normalize_text(text: str) -> str:
    """NFKC, casefold, every whitespace run -> one space, stripped.

    >>> normalize_text("  Hello\\n\\tWORLD ")
    'hello world'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class Duplicate(NamedTuple):
    """A removed record (at position `index` of the input) and the kept record it repeats
    (`kept_id`, at position `kept_index`; `jaccard`: their estimated Jaccard similarity for a
    near duplicate, 1.0 for an exact one). When `twin_id` is set the record itself repeats
    nothing: it goes with its twin `twin_id` (same pair key), which repeats the kept record."""

    record: Conversation
    kept_id: str
    index: int
    kept_index: int
    jaccard: float = 1.0
    twin_id: str | None = None


def pair_units(count: int, pair_keys: Sequence[Hashable | None] | None) -> list[list[int]]:
    """Positions 0..count-1 grouped into units, in order of first appearance: records with the same
    pair key form one unit (twins: one row read in two CoT styles), a None key a unit of its own.

    >>> pair_units(4, [("kocot", "line 1"), None, ("kocot", "line 1"), None])
    [[0, 2], [1], [3]]
    """
    if pair_keys is None:
        return [[i] for i in range(count)]
    if len(pair_keys) != count:
        raise ValueError(f"{len(pair_keys)} pair keys for {count} records; expected one per record")
    units: list[list[int]] = []
    by_key: dict[Hashable, list[int]] = {}
    for i, key in enumerate(pair_keys):
        if key is None:
            units.append([i])
        elif key in by_key:
            by_key[key].append(i)
        else:
            by_key[key] = [i]
            units.append(by_key[key])
    return units


def _unit_removed(records: Sequence[Conversation], unit: list[int],
                  matches: dict[int, tuple[int, float]]) -> list[Duplicate]:
    """Every record of a unit some of whose members repeat kept records (`matches`: member ->
    (kept position, Jaccard)): those members, and the others with their twin (the first that repeats)."""
    first = next(i for i in unit if i in matches)
    out = []
    for i in unit:
        kept, jaccard = matches.get(i, matches[first])
        out.append(Duplicate(records[i], records[kept].id, i, kept, jaccard, None if i in matches else records[first].id))
    return out


def exact_dedup(records: Sequence[Conversation], pair_keys: Sequence[Hashable | None] | None = None,
                ) -> tuple[list[Conversation], list[Duplicate]]:
    """Drop records whose normalised text equals an earlier kept record's (key: its sha256).

    `pair_keys` (one per record, or None) ties twins together: records with the same key are
    never compared with each other, and are kept or removed together (a twin goes with its
    member that repeats an earlier record). Returns (kept, removed), both in input order.
    """
    first: dict[bytes, int] = {}
    kept = [False] * len(records)
    removed: list[Duplicate] = []
    for unit in pair_units(len(records), pair_keys):
        keys = [hashlib.sha256(normalize_text(records[i].text()).encode("utf-8")).digest() for i in unit]
        matches = {i: (first[key], 1.0) for i, key in zip(unit, keys) if key in first}
        if matches:
            removed += _unit_removed(records, unit, matches)
            continue
        for i, key in zip(unit, keys):
            first.setdefault(key, i)
            kept[i] = True
    return [r for r, keep in zip(records, kept) if keep], sorted(removed, key=lambda d: d.index)


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
               shingle_size: int = 5, seed: int = 1, pair_keys: Sequence[Hashable | None] | None = None,
               ) -> tuple[list[Conversation], list[Duplicate]]:
    """Drop records whose character-shingle set is within `threshold` Jaccard of an earlier kept one.

    MinHash (datasketch, `num_perm` permutations, `seed`) over the distinct character
    `shingle_size`-grams of each normalised text; a MinHashLSH index tuned to `threshold`
    proposes candidates among the records kept so far, and a record is removed when a
    candidate's estimated Jaccard is >= threshold. Removed entries name the most similar
    kept record (earliest on ties) and the estimate. Exact duplicates are caught too
    (Jaccard 1.0), but `exact_dedup` first is cheaper and exact. Estimates carry MinHash
    noise (std ~ sqrt(J(1-J)/num_perm)), so pairs near the threshold may go either way.
    `pair_keys` ties twins together as in `exact_dedup`.
    """
    from datasketch import MinHash, MinHashLSH

    if not 0.0 < threshold <= 1.0:
        raise LimacotInputError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if shingle_size < 1 or num_perm < 2:
        raise LimacotInputError(f"need shingle_size >= 1 and num_perm >= 2, got {shingle_size}, {num_perm}")
    sketches = list(MinHash.generator((_shingles(r.text(), shingle_size) for r in records),
                                      num_perm=num_perm, seed=seed, hashfunc=_shingle_hash))
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept_sketch: dict[int, MinHash] = {}
    removed: list[Duplicate] = []
    for unit in pair_units(len(records), pair_keys):
        matches = {}
        for i in unit:  # each member's most similar kept record (earliest on ties), if close enough
            best = max(((kept_sketch[j].jaccard(sketches[i]), -j) for j in lsh.query(sketches[i])), default=None)
            if best is not None and best[0] >= threshold:
                matches[i] = (-best[1], float(best[0]))
        if matches:
            removed += _unit_removed(records, unit, matches)
            continue
        for i in unit:
            lsh.insert(i, sketches[i])
            kept_sketch[i] = sketches[i]
    return [r for i, r in enumerate(records) if i in kept_sketch], sorted(removed, key=lambda d: d.index)
