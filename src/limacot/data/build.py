"""`limacot data build`: sources -> dedup -> decontamination -> variants x nested sizes.

Output layout (all written atomically; the manifest last, so a build killed midway is
simply redone):

    OUT/<variant>/<size>/train.jsonl   messages format, one conversation per line; <size> is
                                       `size_label`: 250, all, lima-1000+kocot-2000
    OUT/card.md                        dataset card: sources, counts, what was removed, hashes
    OUT/manifest.json                  build key, input and output content hashes, counts
    OUT/config.resolved.yaml           the config as used

The build key hashes the resolved config, every input file's content (a hub file
`hf:ORG/NAME/PATH[@REV]` too, once fetched; the manifest also records the commit it resolved
to) and the limacot version; when it matches the manifest and every output is intact,
nothing is redone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from limacot import __version__
from limacot.data.card import render_card
from limacot.data.clean import clean
from limacot.data.config import DataBuildConfig, MixAmount, size_label
from limacot.data.files import check_readable
from limacot.data.filters import seen_text
from limacot.data.records import Conversation
from limacot.data.select import mix_picks, nested_picks, selection_order
from limacot.data.sources import ReadReport, read_records
from limacot.data.twins import Pool, pair_twins
from limacot.errors import DataError, LimacotInputError
from limacot.io.atomic import atomic_write_json, atomic_write_jsonl, atomic_write_text
from limacot.io.fingerprint import (
    input_fingerprint,
    input_identity,
    sha256_file,
    sha256_ids,
    sha256_json,
)
from limacot.io.yaml_config import dump_config

MANIFEST = "manifest.json"


@dataclass
class BuildResult:
    out_dir: Path
    up_to_date: bool
    manifest: dict
    reports: dict[str, ReadReport] = field(default_factory=dict)


def build_key(config: DataBuildConfig) -> str:
    """Content hash of everything the build reads: config, input files, limacot version."""
    decon = config.decontamination
    return sha256_json({
        "config": config.model_dump(mode="json"),
        "sources": {name: input_fingerprint(src.path) for name, src in config.sources.items()},
        "eval_files": {name: input_fingerprint(p) for name, p in (decon.eval_files if decon else {}).items()},
        "limacot": __version__,
    })


def is_up_to_date(out_dir: Path, key: str) -> dict | None:
    """The existing manifest if it has this build key and every output file is intact."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("build_key") != key:
        return None
    for rel, info in manifest.get("outputs", {}).items():
        target = out_dir / rel
        if not target.is_file() or sha256_file(target) != info.get("sha256"):
            return None
    return manifest


def _read_sources(config: DataBuildConfig) -> dict[str, ReadReport]:
    """Every source's records. Each source is checked before any is read (its file type, its hf:
    spec); a problem with a whole source (not with one record) names the config and the source."""
    for name, src in config.sources.items():
        _named(config, f"sources.{name}.path", check_readable, src.path)
    for name, path in (config.decontamination.eval_files if config.decontamination else {}).items():
        _named(config, f"decontamination.eval_files.{name}", check_readable, path)
    reports = {}
    for name, src in config.sources.items():
        report = _named(config, f"sources.{name}", read_records, src.path, format=src.format,
                        columns=src.columns or None, cot_style=src.cot_style, cot_styles=config.cot_styles,
                        source_name=name, skip_bad=config.skip_bad, include=src.include, exclude=src.exclude)
        if not report.records:
            raise LimacotInputError(f"{config.origin}: sources.{name}: {_why_empty(report)}")
        reports[name] = report
    return reports


def _named(config: DataBuildConfig, key: str, call: Callable, *args, **kwargs):
    """`call(*args, **kwargs)`; an input error about the whole source is prefixed with the config
    file and `key` (a DataError already names the file, line and field of one record)."""
    try:
        return call(*args, **kwargs)
    except DataError:
        raise
    except LimacotInputError as err:
        raise LimacotInputError(f"{config.origin}: {key}: {err}") from None


def _why_empty(report: ReadReport) -> str:
    """Why a source gave no records: an empty file, filters that dropped every row, or every
    record skipped as malformed."""
    if report.filtered and not report.skipped:
        return (f"the include/exclude filters dropped every row of {report.path} ({dict(report.filtered)}); "
                f"the values its rows hold: {seen_text(report.filter_seen)}")
    if not report.skipped:
        return f"{report.path} holds no records; expected at least one"
    first = f"; the first: {report.errors[0]}" if report.errors else ""
    filtered = f" (the filters dropped the other rows: {dict(report.filtered)})" if report.filtered else ""
    return (f"every record of {report.path} was malformed and skipped (--skip-bad / skip_bad){filtered}: "
            f"{dict(report.skipped)}{first}")


def _select_variants(config: DataBuildConfig, pools: dict[str, Pool]) -> dict[str, list[Conversation]]:
    """{"<variant>/<size label>": records} for every variant and size, all chosen before any is
    written. A selection problem (a size over the pool, a mixture asking for more than a source
    has, an empty result) names the config file and the variant."""
    chosen: dict[str, list[Conversation]] = {}
    for variant, spec in config.variants.items():
        where = f"{config.origin}: variants.{variant}"
        try:
            files = _variant_sizes(config, pools, variant)
        except LimacotInputError as err:
            raise LimacotInputError(f"{where}: {err}") from None
        for size in config.sizes_for(variant):
            label = size_label(size)
            if not files[label]:
                left = {name: len(pools[name].records) for name in spec.mix}
                raise LimacotInputError(
                    f"{where}: size {label} would write an empty training file (mix {dict(spec.mix)}; records "
                    f"left per source after dedup and decontamination: {left}); a build never writes one")
            chosen[f"{variant}/{label}"] = files[label]
    return chosen


def _variant_sizes(config: DataBuildConfig, pools: dict[str, Pool], variant: str) -> dict[str, list[Conversation]]:
    """{size label: records} of one variant. Integer sizes and 'all' are nested prefixes of one
    seeded order of the variant's mix; a size given as counts per source is its own draw (each
    source a prefix of its own seeded shuffle), in the same kind of order."""
    sizes = config.sizes_for(variant)
    files: dict[str, list[Conversation]] = {}
    plain = [s for s in sizes if not isinstance(s, dict)]
    if plain:
        mix = config.variants[variant].mix
        numeric = [s for s in plain if s != "all"]
        ratios = any(isinstance(v, float) for v in mix.values())
        drawn, records_at = _draw(config, pools, mix, total=max(numeric) if ratios and numeric else None)
        wanted = [len(drawn) if s == "all" else s for s in plain]
        picks = nested_picks(drawn, wanted, config.seed, config.stratify, variant=variant)
        files.update({size_label(s): records_at(picks[n]) for s, n in zip(plain, wanted)})
    for size in (s for s in sizes if isinstance(s, dict)):
        drawn, records_at = _draw(config, pools, config.size_mix(variant, size))
        files[size_label(size)] = records_at(selection_order(drawn, config.seed, config.stratify))
    return files


def _draw(config: DataBuildConfig, pools: dict[str, Pool], spec: dict[str, MixAmount], total: int | None = None,
          ) -> tuple[list[Conversation], Callable[[list[int]], list[Conversation]]]:
    """What `spec` draws, as the records of each source's primary (a twin draws through its primary:
    the primary's name seeds the shuffle and its labels stratify, so a twin and its primary pick
    the same rows), and a function from positions in that list to the variant's own records."""
    primary = {source: config.primary_of(source) for source in spec}
    picks = mix_picks({primary[s]: len(pools[primary[s]].records) for s in spec},
                      {primary[s]: amount for s, amount in spec.items()}, config.seed, total)
    drawn = [pools[name].records[i] for name, i in picks]
    own = {primary[s]: s for s in spec}
    return drawn, lambda positions: [pools[own[picks[k][0]]].records[picks[k][1]] for k in positions]


def _write_variants(chosen: dict[str, list[Conversation]], out_dir: Path, log: Callable[[str], None]) -> dict:
    outputs: dict[str, dict] = {}
    for name, subset in chosen.items():
        rel = f"{name}/train.jsonl"
        atomic_write_jsonl(out_dir / rel, (r.to_json() for r in subset))
        outputs[rel] = {"records": len(subset), "sha256": sha256_file(out_dir / rel),
                        "ids_sha256": sha256_ids(r.id for r in subset),
                        "sources": dict(Counter(r.source for r in subset))}
        log(f"{rel}: {len(subset)} records")
    return outputs


def _input_entry(config: DataBuildConfig, name: str, report: ReadReport, families: list) -> dict:
    path = config.sources[name].path
    entry = {"path": path, **input_identity(path), "format": report.format, "records": len(report.records),
             "skipped": dict(report.skipped), "trimmed": dict(report.trimmed), "filtered": dict(report.filtered),
             "filter_values_never_seen": report.filter_unmatched}
    for family in families:
        if name in family.members:
            entry["unpaired"] = family.unpaired[name]
    return entry


def _removed_counts(config: DataBuildConfig, findings: dict) -> dict:
    """Records removed by each step for their own text, and those removed with their twin."""
    contamination = findings["contamination"]
    own = {kind: sum(not f["with_twin"] for f in findings[kind]) for kind in ("exact", "near")}
    with_twin = sum(f["with_twin"] for kind in ("exact", "near") for f in findings[kind])
    contaminated = 0
    if contamination and config.decontamination.remove:
        contaminated = len(contamination.removed_at) - len(contamination.with_twin_at)
        with_twin += len(contamination.with_twin_at)
    return {"exact_duplicates": own["exact"], "near_duplicates": own["near"], "contaminated": contaminated,
            "removed_with_twin": with_twin}


def build_data(config: DataBuildConfig, out_dir: str | Path, *, force: bool = False,
               log: Callable[[str], None] = lambda msg: None) -> BuildResult:
    """Build every variant and size of `config` under `out_dir` (see the module docstring)."""
    out_dir = Path(out_dir)
    key = build_key(config)
    if not force and (manifest := is_up_to_date(out_dir, key)):
        return BuildResult(out_dir, True, manifest)
    reports = _read_sources(config)
    for name, report in reports.items():
        log(f"read {name}: {len(report.records)} records ({report.format})"
            + (f", filtered out {dict(report.filtered)}" if report.filtered else "")
            + (f", skipped {dict(report.skipped)}" if report.skipped else ""))
    pools, families = pair_twins(config, reports)
    pools, findings = clean(config, pools, families)
    outputs = _write_variants(_select_variants(config, pools), out_dir, log)
    manifest = {
        "build_key": key,
        "limacot_version": __version__,
        "inputs": {name: _input_entry(config, name, r, families) for name, r in reports.items()},
        "removed": _removed_counts(config, findings),
        "twins": {family.primary: family.to_json() for family in families},
        "pools": {name: len(pool.records) for name, pool in pools.items()},
        "outputs": outputs,
    }
    atomic_write_text(out_dir / "config.resolved.yaml", dump_config(config))
    atomic_write_text(out_dir / "card.md", render_card(config, reports, findings, manifest, families))
    atomic_write_json(out_dir / MANIFEST, manifest)
    return BuildResult(out_dir, False, manifest, reports)
