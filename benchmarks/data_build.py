"""Time the data-cleaning steps on the real training pool and show what each removes.

Pool: LIMA train (1,030 conversations) + 3,000 Korean math word problems with CoT
rationales (user = question, assistant = reason + "\\n따라서 정답은 {answer}입니다.").
Steps: exact dedup -> MinHash near dedup -> 13-gram decontamination against the KoBEST
dev sets. Goal: the whole run under 30 s on 2 CPU cores.

    .venv/bin/python benchmarks/data_build.py [--shared-data DIR] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from limacot.data.files import iter_rows
from limacot.data.records import Conversation
from limacot.data.contamination import decontaminate, eval_texts_from_rows
from limacot.data.dedup import exact_dedup, near_dedup
from limacot.data.sources import read_records

REPO = Path(__file__).resolve().parents[1]
KOCOT_COLUMNS = {"source": "question", "rationale": "reason", "target": "answer"}


def load_pool(shared: Path) -> list[Conversation]:
    lima = read_records(shared / "lima" / "train.jsonl", format="lima")
    kocot = read_records(shared / "ko_instruct_cot" / "kor_mwp_reasoning_train.jsonl", format="kocot",
                         columns=KOCOT_COLUMNS, cot_style="ko", source_name="kor_mwp")
    print(f"  lima: {len(lima.records)} records (trimmed {dict(lima.trimmed)}), "
          f"kor_mwp: {len(kocot.records)} records")
    return lima.records + kocot.records


def load_eval_sets(shared: Path) -> dict[str, list[str]]:
    return {f"kobest_{path.parent.name}": eval_texts_from_rows(row for _, row in iter_rows(path))
            for path in sorted((shared / "kobest").glob("*/dev.tsv"))}


def _clip(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def timed(label: str, timings: dict[str, float], fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    timings[label] = time.perf_counter() - start
    print(f"[{timings[label]:6.2f} s] {label}")
    return result


def show_removed(title: str, removed: list, by_id: dict[str, Conversation]) -> None:
    counts = Counter(item.record.source for item in removed)
    same = sum(item.record.id == item.kept_id for item in removed)
    print(f"  {title}: {len(removed)} removed ({same} byte-identical to the kept record), "
          f"per source {dict(sorted(counts.items()))}")
    # Show the instructive cases first: copies that differ from what they duplicate.
    for item in sorted(removed, key=lambda item: item.record.id == item.kept_id)[:3]:
        extra = f" (Jaccard ~{item.jaccard:.2f})" if hasattr(item, "jaccard") else ""
        kept = by_id[item.kept_id]
        print(f"    - {item.record.id} [{item.record.source}] duplicates {kept.id} [{kept.source}]{extra}")
        pairs = list(zip(item.record.turns, kept.turns))
        turn = next((i for i, (a, b) in enumerate(pairs) if a.content != b.content), 0)
        print(f"        removed, turn {turn}: {_clip(pairs[turn][0].content)}")
        print(f"        kept,    turn {turn}: {_clip(pairs[turn][1].content)}")


def compare_shingle_hashes(records: list[Conversation], shingle_size: int = 5, num_perm: int = 128) -> None:
    """MinHash sketching with our CRC-32 shingle hash vs datasketch's default SHA-1, same shingles."""
    from datasketch import MinHash
    from datasketch.hashfunc import sha1_hash32

    from limacot.data import dedup

    shingles = [dedup._shingles(r.text(), shingle_size) for r in records]
    seconds = {}
    for name, hashfunc in (("crc32 (ours)", dedup._shingle_hash), ("sha1 (datasketch default)", sha1_hash32)):
        start = time.perf_counter()
        for _ in MinHash.generator(shingles, num_perm=num_perm, seed=1, hashfunc=hashfunc):
            pass
        seconds[name] = time.perf_counter() - start
    (ours, ours_s), (theirs, theirs_s) = seconds.items()
    print(f"  MinHash sketching of {len(records)} records: {ours} {ours_s:.2f} s, {theirs} {theirs_s:.2f} s, "
          f"ratio {theirs_s / ours_s:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--threshold", type=float, default=0.8, help="near-dup Jaccard threshold")
    parser.add_argument("--ngram", type=int, default=13)
    parser.add_argument("--min-words", type=int, default=8, help="shorter eval texts are not checked")
    args = parser.parse_args(argv)

    timings: dict[str, float] = {}
    records = timed("read training pool", timings, load_pool, args.shared_data)
    eval_sets = timed("read KoBEST dev eval texts", timings, load_eval_sets, args.shared_data)
    by_id = {r.id: r for r in records}
    print(f"  pool: {len(records)} records, {dict(Counter(r.source for r in records))}")

    kept, exact = timed("exact dedup", timings, exact_dedup, records)
    show_removed("exact duplicates", exact, by_id)
    compare_shingle_hashes(kept)
    kept, near = timed("near dedup (MinHash LSH)", timings, near_dedup, kept, threshold=args.threshold)
    show_removed(f"near duplicates (threshold {args.threshold})", near, by_id)
    report = timed("decontamination", timings, decontaminate, kept, eval_sets, ngram=args.ngram,
                    min_words=args.min_words, remove=True)

    print(f"  contaminated: {len(report.contaminated_ids)} records, "
          f"per source {dict(Counter(r.source for r in report.removed))}")
    for name, found in report.eval_sets.items():
        print(f"    {name}: {found.n_texts} eval texts ({found.too_short} too short to check), "
              f"{len(found.matched_ids)} training records overlap")
        for record_id in found.matched_ids[:2]:
            print(f"      - {record_id} [{by_id[record_id].source}]: \"{_clip(found.examples[record_id])}\"")
    print(f"  final pool: {len(report.kept)} records, {dict(Counter(r.source for r in report.kept))}")
    print(f"[{sum(timings.values()):6.2f} s] total (goal < 30 s)")


if __name__ == "__main__":
    main()
