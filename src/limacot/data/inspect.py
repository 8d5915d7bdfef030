"""`limacot data inspect`: what a data file holds, before any GPU hour is spent on it."""

from __future__ import annotations

from collections import Counter

from limacot.data.sources import ReadReport
from limacot.data.templates import get_template, prepare_tokenizer, render_many

PERCENTILES = (50, 90, 95, 99, 100)


def _percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def summarize(report: ReadReport, tokenizer=None, template_name: str = "lima", max_length: int = 2048) -> dict:
    """Counts of a read (after odd-length trimming) and, with a tokenizer, token lengths.

    Keys: path, format, records, skipped (reason -> n), trimmed (what -> n), sources
    (name -> n), turns (number of turns -> n, system turns included), errors (first
    skipped-row messages) and, when `tokenizer` is given, tokens: the rendered length
    of each example under `template_name` (percentiles, how many exceed `max_length`,
    trained-token total).
    """
    summary = {
        "path": report.path,
        "format": report.format,
        "records": len(report.records),
        "skipped": dict(report.skipped),
        "trimmed": dict(report.trimmed),
        "sources": dict(Counter(r.source for r in report.records).most_common()),
        "turns": {str(k): v for k, v in sorted(Counter(len(r.turns) for r in report.records).items())},
        "errors": list(report.errors),
    }
    if tokenizer is not None and report.records:
        summary["tokens"] = _token_stats(report, tokenizer, template_name, max_length)
    return summary


def _token_stats(report: ReadReport, tokenizer, template_name: str, max_length: int) -> dict:
    template = get_template(template_name)
    prepare_tokenizer(tokenizer, template)
    examples, _ = render_many(report.records, tokenizer, template, max_length=10**9)
    lengths = sorted(len(e.input_ids) for e in examples)
    return {
        "template": template_name,
        "percentiles": {f"p{q}": _percentile(lengths, q) for q in PERCENTILES},
        "over_max_length": sum(n > max_length for n in lengths),
        "max_length": max_length,
        "total": sum(lengths),
        "trained": sum(sum(1 for label in e.labels if label != -100) for e in examples),
    }
