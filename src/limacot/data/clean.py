"""The cleaning step of `data build`: dedup within each dedup group, then decontamination of
every source against the eval sets, twins kept or removed together.

Records are handled as one list in `sources` order (a source's records in file order), so the
first copy of a duplicate in that order survives. Each removed record is reported with its
source; a record removed only because its twin was is marked `with_twin`.
"""

from __future__ import annotations

from limacot.data.config import DataBuildConfig
from limacot.data.contamination import decontaminate, eval_texts_from_rows
from limacot.data.dedup import Duplicate, exact_dedup, near_dedup
from limacot.data.files import iter_rows
from limacot.data.twins import Family, Pool, check_aligned, pair_keys


def clean(config: DataBuildConfig, pools: dict[str, Pool], families: list[Family]) -> tuple[dict[str, Pool], dict]:
    """The pools left after dedup and decontamination, and the findings: {"exact": [...], "near":
    [...]} (dicts naming id, source, duplicate_of, jaccard for near, with_twin) and
    {"contamination": ContaminationReport or None}. Fills in each family's kept and
    removed-with-twin counts."""
    owner = [(name, i) for name, pool in pools.items() for i in range(len(pool.records))]
    records = [pools[name].records[i] for name, i in owner]
    keys = [key for name, pool in pools.items() for key in pair_keys(config, name, pool)]
    alive = [True] * len(records)
    findings: dict = {"exact": [], "near": [], "contamination": None}
    dedup = config.dedup
    for group in config.dedup_groups():
        members = [k for k, (name, _) in enumerate(owner) if name in group]
        steps = [("exact", lambda rs, ks: exact_dedup(rs, pair_keys=ks))] if dedup.exact else []
        if dedup.near:
            steps.append(("near", lambda rs, ks: near_dedup(rs, threshold=dedup.threshold, num_perm=dedup.num_perm,
                                                            shingle_size=dedup.shingle_size, pair_keys=ks)))
        for kind, step in steps:
            _, removed = step([records[k] for k in members], [keys[k] for k in members])
            for dup in removed:
                alive[members[dup.index]] = False
                findings[kind].append(_finding(dup, [_where(pools, owner[members[i]]) for i in (dup.index, dup.kept_index)],
                                               near=kind == "near"))
            members = [k for k in members if alive[k]]
    decon = config.decontamination
    if decon and decon.eval_files:
        left = [k for k in range(len(records)) if alive[k]]
        eval_sets = {name: eval_texts_from_rows(row for _, row in iter_rows(path))
                     for name, path in decon.eval_files.items()}
        report = decontaminate([records[k] for k in left], eval_sets, ngram=decon.ngram, min_words=decon.min_words,
                               remove=decon.remove, mode=decon.mode, char_ngram=decon.char_ngram,
                               min_chars=decon.min_chars, pair_keys=[keys[k] for k in left])
        for i in report.removed_at:
            alive[left[i]] = False
        findings["contamination"] = report
        findings["contamination_with_twin"] = [owner[left[i]][0] for i in report.with_twin_at]
    cleaned = {name: Pool([], []) for name in pools}
    for k, (name, i) in enumerate(owner):
        if alive[k]:
            cleaned[name].records.append(records[k])
            cleaned[name].locations.append(pools[name].locations[i])
    _count_families(families, cleaned, findings)
    return cleaned, findings


def _where(pools: dict[str, Pool], owner: tuple[str, int]) -> tuple[str, str]:
    return owner[0], pools[owner[0]].locations[owner[1]]


def _finding(dup: Duplicate, where: list[tuple[str, str]], near: bool) -> dict:
    """One removed record: its id, source and row, the kept record it repeats (id, source, row)."""
    (source, location), (kept_source, kept_location) = where
    entry = {"id": dup.record.id, "source": source, "location": location, "duplicate_of": dup.kept_id,
             "duplicate_of_source": kept_source, "duplicate_of_location": kept_location,
             "with_twin": dup.twin_id is not None}
    return {**entry, "jaccard": round(dup.jaccard, 3)} if near else entry


def _count_families(families: list[Family], cleaned: dict[str, Pool], findings: dict) -> None:
    with_twin = [f["source"] for kind in ("exact", "near") for f in findings[kind] if f["with_twin"]]
    with_twin += findings.get("contamination_with_twin", [])
    for family in families:
        check_aligned(cleaned, family.members)
        family.kept = len(cleaned[family.primary].records)
        family.removed_with_twin = {m: with_twin.count(m) for m in family.members}
