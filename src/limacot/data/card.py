"""The dataset card (`card.md`) written by `limacot data build`: a human-readable record of
what went in, what was removed and why, and what came out, with content hashes."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from limacot import __version__
from limacot.data.config import DataBuildConfig
from limacot.data.filters import seen_text
from limacot.data.sources import ReadReport
from limacot.data.twins import Family
from limacot.io.tables import markdown_table

MAX_LISTED = 10


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return markdown_table(header, rows) + [""]


def _counts(counter: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) or "none"


def _sources_section(config: DataBuildConfig, reports: dict[str, ReadReport], manifest: dict) -> list[str]:
    rows = [[name, f"`{config.sources[name].path}`", r.format, len(r.records), _counts(dict(r.filtered)),
             _counts(dict(r.skipped)), _counts(dict(r.trimmed)), manifest["pools"][name],
             f"`{manifest['inputs'][name]['sha256'][:16]}`"]
            for name, r in reports.items()]
    lines = ["## Sources", ""]
    lines += _table(["source", "file", "format", "read", "filtered out", "skipped (bad)", "trimmed",
                     "after cleaning", "sha256"], rows)
    lines += _filter_lines(config, reports)
    for name, report in reports.items():
        if report.errors:
            lines += [f"First skipped records of `{name}`:", ""] + [f"- {e}" for e in report.errors] + [""]
    return lines


def _filter_lines(config: DataBuildConfig, reports: dict[str, ReadReport]) -> list[str]:
    """Each source's filters, and a warning for filter values that no row held (a typo?)."""
    lines = []
    for name, report in reports.items():
        src = config.sources[name]
        if not (src.include or src.exclude):
            continue
        rules = [f"{kind} {field} in {values}" for kind, filters in (("include", src.include),
                                                                     ("exclude", src.exclude))
                 for field, values in filters.items()]
        lines.append(f"- `{name}` filters: {'; '.join(rules)}; values seen: {seen_text(report.filter_seen)}")
        for key, never in report.filter_unmatched.items():
            lines.append(f"  - **warning**: `sources.{name}.{key}` values {never} match no row (a typo?)")
    return lines + [""] if lines else []


def _dedup_section(config: DataBuildConfig, findings: dict) -> list[str]:
    groups = config.dedup_groups()
    scope = ("all sources together" if config.dedup.groups is None else
             "within each group (records of different groups are never compared): "
             + ", ".join("[" + ", ".join(group) + "]" for group in groups))
    lines = ["## Deduplication", "", f"Deduplicated {scope}. Twins (one row read in two CoT styles) are never "
             "compared with each other, and go together: when one is removed, so is its twin.", ""]
    near = config.dedup
    steps = [("exact", "exact (normalised text)", near.exact),
             ("near", f"near-duplicate (MinHash LSH, threshold {near.threshold}, {near.num_perm} permutations, "
                      f"{near.shingle_size}-character shingles)", near.near)]
    for kind, title, on in steps:
        own = [d for d in findings[kind] if not d["with_twin"]]
        twins = [d for d in findings[kind] if d["with_twin"]]
        lines.append(f"- {title}: {'on' if on else 'off'}, removed {len(own)} "
                     f"({_counts(dict(Counter(d['source'] for d in own)))})"
                     + (f", and {len(twins)} with their twin ({_counts(dict(Counter(d['source'] for d in twins)))})"
                        if twins else ""))
    for dup in [d for kind in ("exact", "near") for d in findings[kind] if not d["with_twin"]][:MAX_LISTED]:
        extra = f", Jaccard ~{dup['jaccard']}" if "jaccard" in dup else ""
        lines.append(f"  - `{dup['id']}` ({dup['source']}, {dup['location']}) duplicates `{dup['duplicate_of']}` "
                     f"({dup['duplicate_of_source']}, {dup['duplicate_of_location']}){extra}")
    return lines + [""]


def _twins_section(families: Sequence[Family]) -> list[str]:
    if not families:
        return []
    return ["## Twin sources", "", "Each pair is one row read in two CoT styles; dedup and decontamination keep "
            "or remove a pair whole, and selection draws the same rows for both.", ""] \
        + [f"- {family.summary()}" for family in families] + [""]


def _contamination_section(config: DataBuildConfig, report) -> list[str]:
    if report is None:
        return ["## Decontamination", "", "Not checked (no `decontamination.eval_files`).", ""]
    action = "removed" if config.decontamination.remove else "reported only (set `remove: true` to drop them)"
    if report.mode == "char":
        method = (f"{report.char_ngram}-character overlap (mode char: the text's letters and digits, whitespace "
                  f"and punctuation removed) with each eval set (eval texts shorter than {report.char_ngram} "
                  f"characters but with at least {report.min_chars} are matched whole; shorter ones are too short "
                  f"to check)")
    else:
        method = (f"{report.ngram}-gram word overlap (mode word) with each eval set (eval texts shorter than "
                  f"{report.ngram} words but with at least {report.min_words} are matched whole; shorter ones are "
                  f"too short to check)")
    with_twin = f", plus {len(report.with_twin_at)} removed with their twin" if report.with_twin_at else ""
    lines = ["## Decontamination", "",
             f"{method}. Overlapping training records: {len(report.contaminated_ids)}, {action}{with_twin}.", ""]
    rows = [[name, s.n_texts, s.too_short, len(s.matched_ids)] for name, s in report.eval_sets.items()]
    lines += _table(["eval set", "texts", "too short to check", "overlapping training records"], rows)
    for name, stats in report.eval_sets.items():
        for record_id in stats.matched_ids[:MAX_LISTED]:
            lines.append(f"- {name}: `{record_id}` shares \"{stats.examples.get(record_id, '')}\"")
    return lines + [""]


def _outputs_section(manifest: dict) -> list[str]:
    rows = [[f"`{rel}`", info["records"], _counts(info["sources"]), f"`{info['sha256'][:16]}`"]
            for rel, info in manifest["outputs"].items()]
    return ["## Outputs", "", "The integer sizes of a variant are nested: each smaller file is a prefix of the same "
            "seeded order as the larger ones. A size given as counts per source (e.g. `lima-1000+kocot-2000`) "
            "takes each count as a prefix of that source's own seeded order, so raising a count only adds "
            "records.", ""] + _table(["file", "records", "by source", "sha256"], rows)


def render_card(config: DataBuildConfig, reports: dict[str, ReadReport], findings: dict, manifest: dict,
                families: Sequence[Family] = ()) -> str:
    """Markdown dataset card from the build's reports, findings, manifest and twin families."""
    lines = ["# Dataset card", "",
             f"Built by limacot {__version__}; seed {config.seed}; stratified by source: {config.stratify}; "
             f"build key `{manifest['build_key'][:16]}`.", ""]
    lines += _sources_section(config, reports, manifest)
    lines += _dedup_section(config, findings)
    lines += _contamination_section(config, findings["contamination"])
    lines += _twins_section(families)
    lines += _outputs_section(manifest)
    return "\n".join(lines)
