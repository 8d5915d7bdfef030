"""`limacot data build`: sources -> dedup -> decontamination -> variants x nested sizes.

Output layout (all written atomically; the manifest last, so a build killed midway is
simply redone):

    OUT/<variant>/<size>/train.jsonl   messages format, one conversation per line
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
from limacot.io.atomic import atomic_write_json, atomic_write_jsonl, atomic_write_text
from limacot.data.config import DataBuildConfig
from limacot.io.yaml_config import dump_config
from limacot.data.card import render_card
from limacot.data.files import check_readable, iter_rows
from limacot.data.filters import seen_text
from limacot.data.records import Conversation
from limacot.data.dedup import decontaminate, eval_texts_from_rows, exact_dedup, near_dedup
from limacot.data.select import mix, nested_subsets
from limacot.data.sources import ReadReport, read_records
from limacot.errors import DataError, LimacotInputError
from limacot.io.fingerprint import input_fingerprint, input_identity, sha256_file, sha256_ids, sha256_json

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
    return (f"every record of {report.path} was malformed and skipped (--skip-bad / skip_bad): "
            f"{dict(report.skipped)}{first}")


def _clean(config: DataBuildConfig, reports: dict[str, ReadReport]) -> tuple[dict[str, list[Conversation]], dict]:
    """Dedup and decontaminate across all sources; returns pools per config source and findings."""
    origin: dict[str, str] = {}
    records: list[Conversation] = []
    for name, report in reports.items():
        for record in report.records:
            origin.setdefault(record.id, name)
            records.append(record)
    findings: dict = {"exact": [], "near": [], "contamination": None}
    if config.dedup.exact:
        records, removed = exact_dedup(records)
        findings["exact"] = [{"id": d.record.id, "source": origin[d.record.id], "duplicate_of": d.kept_id}
                             for d in removed]
    if config.dedup.near:
        records, removed = near_dedup(records, threshold=config.dedup.threshold,
                                      num_perm=config.dedup.num_perm, shingle_size=config.dedup.shingle_size)
        findings["near"] = [{"id": d.record.id, "source": origin[d.record.id], "duplicate_of": d.kept_id,
                              "jaccard": round(d.jaccard, 3)} for d in removed]
    decon = config.decontamination
    if decon and decon.eval_files:
        eval_sets = {name: eval_texts_from_rows(row for _, row in iter_rows(path))
                     for name, path in decon.eval_files.items()}
        report = decontaminate(records, eval_sets, ngram=decon.ngram, min_words=decon.min_words,
                               remove=decon.remove)
        findings["contamination"] = report
        records = report.kept
    pools: dict[str, list[Conversation]] = {name: [] for name in reports}
    for record in records:
        pools[origin[record.id]].append(record)
    return pools, findings


def _select_variants(config: DataBuildConfig, pools: dict[str, list[Conversation]]) -> dict[str, list[Conversation]]:
    """{"<variant>/<size label>": records} for every variant and size, all chosen before any is
    written. A selection problem (a size over the pool, a mixture asking for more than a source
    has, an empty result) names the config file and the variant."""
    chosen: dict[str, list[Conversation]] = {}
    for variant, spec in config.variants.items():
        where = f"{config.origin}: variants.{variant}"
        sizes = config.sizes_for(variant)
        numeric = [s for s in sizes if s != "all"]
        ratios = any(isinstance(v, float) for v in spec.mix.values())
        total = max(numeric) if ratios and numeric else None
        try:
            pool = mix({name: pools[name] for name in spec.mix}, dict(spec.mix), seed=config.seed, total=total)
            wanted = [len(pool) if s == "all" else s for s in sizes]
            subsets = nested_subsets(pool, wanted, seed=config.seed, stratify_by_source=config.stratify,
                                     variant=variant)
        except LimacotInputError as err:
            raise LimacotInputError(f"{where}: {err}") from None
        for size, label in zip(wanted, sizes):
            if not subsets[size]:
                left = {name: len(pools[name]) for name in spec.mix}
                raise LimacotInputError(
                    f"{where}: size {label} would write an empty training file (mix {dict(spec.mix)}; records "
                    f"left per source after dedup and decontamination: {left}); a build never writes one")
            chosen[f"{variant}/{label}"] = subsets[size]
    return chosen


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
            + (f", skipped {dict(report.skipped)}" if report.skipped else ""))
    pools, findings = _clean(config, reports)
    outputs = _write_variants(_select_variants(config, pools), out_dir, log)
    contamination = findings["contamination"]
    manifest = {
        "build_key": key,
        "limacot_version": __version__,
        "inputs": {name: {"path": config.sources[name].path, **input_identity(config.sources[name].path),
                          "format": r.format, "records": len(r.records), "skipped": dict(r.skipped),
                          "trimmed": dict(r.trimmed), "filtered": dict(r.filtered),
                          "filter_values_never_seen": r.filter_unmatched} for name, r in reports.items()},
        "removed": {"exact_duplicates": len(findings["exact"]), "near_duplicates": len(findings["near"]),
                    "contaminated": len(contamination.contaminated_ids)
                    if contamination and config.decontamination.remove else 0},
        "pools": {name: len(pool) for name, pool in pools.items()},
        "outputs": outputs,
    }
    atomic_write_text(out_dir / "config.resolved.yaml", dump_config(config))
    atomic_write_text(out_dir / "card.md", render_card(config, reports, findings, manifest))
    atomic_write_json(out_dir / MANIFEST, manifest)
    return BuildResult(out_dir, False, manifest, reports)
