"""Choosing which records to train on: nested size subsets and source mixtures.

Pure functions over lists of `Conversation`; no file I/O. Every random choice comes from
`random.Random(seed)` over record positions, so a result depends only on the input list
(its order included) and the seed, never on Python's hash randomisation.

Cleaning the pool first (exact and near duplicates, benchmark contamination) lives in
`limacot.data.dedup`.

    >>> subsets = nested_subsets(pool, sizes=[100, 500, 1000], seed=0)
    >>> set(subsets[100]) <= set(subsets[500]) <= set(subsets[1000])
    True
    >>> train = mix({"lima": lima, "kocot": kocot}, {"lima": "all", "kocot": 500}, seed=0)
"""

from __future__ import annotations

import random
from typing import Literal, Sequence, Union

from limacot.data.records import Conversation
from limacot.errors import LimacotInputError


def selection_order(records: Sequence[Conversation], seed: int, stratify_by_source: bool = True) -> list[int]:
    """A seeded permutation of `range(len(records))`; subsets are its prefixes.

    Unstratified: a plain seeded shuffle. Stratified: each source's records are shuffled,
    then the sources are interleaved so that for EVERY prefix length n each source s holds
    floor(n*c_s/N) or ceil(n*c_s/N) records (c_s its pool count, N the pool size), i.e. it is
    always strictly within 1 of its proportional share. The interleave is earliest-deadline-
    first over the sources that are under their upper quota (Tijdeman's chairman assignment
    construction); ties between sources are broken by a seeded random priority.
    """
    rng = random.Random(seed)
    if not stratify_by_source:
        order = list(range(len(records)))
        rng.shuffle(order)
        return order
    by_source: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_source.setdefault(record.source, []).append(i)
    names = sorted(by_source)
    for name in names:
        rng.shuffle(by_source[name])
    priority = {name: rng.random() for name in names}
    total = len(records)
    taken = dict.fromkeys(names, 0)
    order = []
    for n in range(1, total + 1):
        # Eligible: taking one more keeps the source at or below ceil(n * c_s / N).
        eligible = [s for s in names if taken[s] + 1 <= -(-n * len(by_source[s]) // total)]
        # Deadline: the first prefix length whose floor quota this source would miss.
        chosen = min(eligible, key=lambda s: (-(-(taken[s] + 1) * total // len(by_source[s])), priority[s]))
        order.append(by_source[chosen][taken[chosen]])
        taken[chosen] += 1
    return order


def nested_subsets(records: Sequence[Conversation], sizes: Sequence[int], seed: int,
                   stratify_by_source: bool = True, *, variant: str | None = None,
                   ) -> dict[int, list[Conversation]]:
    """Subsets of the given sizes with n1 ⊂ n2 ⊂ ... by construction (prefixes of one order).

    Returns {size: records} in ascending size order; each list is in selection order (see
    `selection_order`), so the larger subset starts with the smaller one. Deterministic for
    the same input list and seed. Raises LimacotInputError for a size that is not a
    non-negative int or exceeds the pool (the message names the size, the pool size and
    `variant`, the data variant's name, when given).
    """
    picks = nested_picks(records, sizes, seed, stratify_by_source, variant=variant)
    return {size: [records[i] for i in chosen] for size, chosen in picks.items()}


def nested_picks(records: Sequence[Conversation], sizes: Sequence[int], seed: int,
                 stratify_by_source: bool = True, *, variant: str | None = None) -> dict[int, list[int]]:
    """`nested_subsets` as positions in `records`: {size: the first `size` positions of the order}."""
    where = f" for data variant '{variant}'" if variant else ""
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise LimacotInputError(f"subset size {size!r}{where} is not a non-negative integer")
        if size > len(records):
            raise LimacotInputError(
                f"subset size {size}{where} is larger than the pool of {len(records)} records; "
                f"use sizes <= {len(records)} or add records to the pool")
    order = selection_order(records, seed, stratify_by_source)
    return {size: order[:size] for size in sorted(set(sizes))}


MixSpec = dict[str, Union[int, float, Literal["all"]]]


def mix(pools: dict[str, list[Conversation]], spec: MixSpec, seed: int,
        total: int | None = None) -> list[Conversation]:
    """Draw records from named pools, by counts or by ratios; returns them concatenated.

    Counts: each value is an int (that many records) or "all" (the whole pool); `total`
    must then be None or equal the sum. Ratios: every value is a float, they sum to 1
    within 1e-6, and `total` is required; pool shares are floor(ratio * total) plus one
    extra record for the largest remainders (ties: spec order), so they sum to `total`.
    Each pool is drawn as a prefix of its own shuffle seeded by (seed, pool name), so
    raising one pool's count only adds records and leaves other pools' draws unchanged.
    The result lists the pools in spec order, each in its drawn order.

    Raises LimacotInputError for an unknown pool, a mix of counts and ratios, a bad value,
    or a pool with fewer records than asked (naming the pool, asked and available).
    """
    return [pools[name][i] for name, i in mix_picks({name: len(pool) for name, pool in pools.items()},
                                                     spec, seed, total)]


def mix_picks(pool_sizes: dict[str, int], spec: MixSpec, seed: int, total: int | None = None) -> list[tuple[str, int]]:
    """`mix` as (pool name, position in that pool) pairs, given only each pool's size: the same
    positions drawn from a twin pool of the same size give the twin records of the same rows."""
    counts = _mix_counts(pool_sizes, spec, total)
    out: list[tuple[str, int]] = []
    for name, count in counts.items():
        if count > pool_sizes[name]:
            raise LimacotInputError(f"mixture asks for {count} records from pool '{name}', "
                                    f"which has only {pool_sizes[name]} available")
        order = list(range(pool_sizes[name]))
        random.Random(f"{seed}:{name}").shuffle(order)
        out.extend((name, i) for i in order[:count])
    return out


def _mix_counts(pools: dict[str, int], spec: MixSpec, total: int | None) -> dict[str, int]:
    """Turn a count or ratio spec into {pool: count}, validating it."""
    if not spec:
        raise LimacotInputError("mixture spec is empty; name at least one pool")
    unknown = [name for name in spec if name not in pools]
    if unknown:
        raise LimacotInputError(f"mixture names unknown pool(s) {unknown}; available: {sorted(pools)}")
    ratios = {k: v for k, v in spec.items() if isinstance(v, float)}
    if ratios and len(ratios) != len(spec):
        raise LimacotInputError(f"mixture spec {spec} mixes ratios (floats) with counts (ints/'all'); "
                                "use one kind for every pool")
    if not ratios:
        counts = {}
        for name, value in spec.items():
            if value == "all":
                counts[name] = pools[name]
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                counts[name] = value
            else:
                raise LimacotInputError(f"mixture count for pool '{name}' is {value!r}; "
                                        "expected a non-negative int, 'all', or a float ratio")
        if total is not None and total != sum(counts.values()):
            raise LimacotInputError(f"mixture counts sum to {sum(counts.values())} but total={total}")
        return counts
    if total is None or isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise LimacotInputError(f"a ratio mixture needs total= a non-negative int, got {total!r}")
    if any(r < 0 for r in ratios.values()) or abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise LimacotInputError(f"mixture ratios {ratios} must be >= 0 and sum to 1 (they sum to "
                                f"{sum(ratios.values()):.6g})")
    exact = {name: r / sum(ratios.values()) * total for name, r in ratios.items()}
    counts = {name: int(share) for name, share in exact.items()}
    short = total - sum(counts.values())
    by_remainder = sorted(exact, key=lambda n: -(exact[n] - counts[n]))  # stable: spec order
    for name in by_remainder[:short]:
        counts[name] += 1
    return counts
