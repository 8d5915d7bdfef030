"""`data build` with source filters (include / exclude) and twin sources (one file read in two
CoT styles, kept as pairs through dedup, decontamination and selection)."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import yaml

from limacot.data.build import build_data, build_key
from limacot.data.config import DataBuildConfig
from limacot.errors import LimacotInputError
from limacot.io.yaml_config import load_config


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_config(folder, config, name="data.yaml"):
    (folder / name).write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_config(folder / name, DataBuildConfig)


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


LIMA = [{"conversations": [f"Question {i} about subject {i * 13}?", f"Answer {i}: " + "text " * (i % 4 + 2)],
         "source": ["stackexchange", "wikihow", "multi_turn"][i % 3]} for i in range(12)]


# ---------------------------------------------------------------- filters

def test_include_filter_in_a_build_is_counted_in_card_and_manifest(tmp_path):
    write_jsonl(tmp_path / "lima.jsonl", LIMA)
    config = write_config(tmp_path, {
        "sources": {"lima": {"path": "lima.jsonl", "include": {"source": ["stackexchange", "wikihow",
                                                                           "stackexchnage"]}}},
        "variants": {"lima": {"mix": {"lima": "all"}}}})
    manifest = build_data(config, tmp_path / "out").manifest
    assert manifest["inputs"]["lima"]["records"] == 8
    assert manifest["inputs"]["lima"]["filtered"] == {"source not in include": 4}
    assert manifest["inputs"]["lima"]["filter_values_never_seen"] == {"include.source": ["stackexchnage"]}
    assert {r["source"] for r in lines(tmp_path / "out" / "lima" / "all" / "train.jsonl")} == {"stackexchange",
                                                                                             "wikihow"}
    card = (tmp_path / "out" / "card.md").read_text(encoding="utf-8")
    assert "| lima | " in card and "| source not in include 4 |" in card
    assert "`sources.lima.include.source` values ['stackexchnage'] match no row" in card
    assert "values seen: source: stackexchange 4, wikihow 4, multi_turn 4" in card


def test_a_filter_dropping_every_row_names_the_source_field_and_values_seen(tmp_path):
    write_jsonl(tmp_path / "lima.jsonl", LIMA)
    config = write_config(tmp_path, {
        "sources": {"lima": {"path": "lima.jsonl", "exclude": {"source": ["stackexchange", "wikihow",
                                                                           "multi_turn"]}}},
        "variants": {"lima": {"mix": {"lima": "all"}}}})
    with pytest.raises(LimacotInputError, match=r"data.yaml: sources.lima: the include/exclude filters dropped every "
                                                r"row of .*lima.jsonl \(\{'source in exclude': 12\}\); the values its "
                                                r"rows hold: source: stackexchange 4, wikihow 4, multi_turn 4"):
        build_data(config, tmp_path / "out")


def test_a_filter_needs_values(tmp_path):
    write_jsonl(tmp_path / "lima.jsonl", LIMA)
    with pytest.raises(LimacotInputError, match=r"sources.lima.include: source: expected at least one value"):
        write_config(tmp_path, {"sources": {"lima": {"path": "lima.jsonl", "include": {"source": []}}},
                                "variants": {"lima": {"mix": {"lima": "all"}}}})


@pytest.mark.shared_data
def test_lima_include_filter_keeps_its_1000_single_turn_examples(shared_data, tmp_path):
    config = write_config(tmp_path, {
        "sources": {"lima": {"path": str(shared_data / "lima" / "train.jsonl"), "format": "lima",
                             "include": {"source": ["stackexchange", "wikihow", "writingprompts", "authors", "nlp"]}}},
        "variants": {"lima": {"mix": {"lima": "all"}}}, "dedup": {"exact": False}})
    result = build_data(config, tmp_path / "out")
    assert result.reports["lima"].filtered == {"source not in include": 30}
    records = lines(tmp_path / "out" / "lima" / "all" / "train.jsonl")
    assert len(records) == 1000 and all(len(r["messages"]) == 2 for r in records)


# ---------------------------------------------------------------- twins

VOCAB = ("사과 배 포도 기차 바다 하늘 학교 연필 고양이 강아지 나무 구름 시장 도서관 자전거 우유 빵 노래 숫자 계산 "
         "apple river window garden").split()
LEAKED = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat"


def words(seed: int, k: int) -> str:
    return " ".join(random.Random(seed).choices(VOCAB, k=k))


def cot_rows() -> list[dict]:
    """12 rows: row 3 has no rationale (the ko style fails on it, answer-only reads it), row 5 repeats
    row 1, row 7 has row 2's question and answer with another rationale (only its answer-only form
    repeats row 2's), row 9's rationale quotes an eval text."""
    rows = [{"source": f"문제 {i}: {words(100 + i, 8)}?", "rationale": words(i, 60), "target": str(i)} for i in range(12)]
    del rows[3]["rationale"]
    rows[5] = dict(rows[1])
    rows[7] = {**rows[2], "rationale": words(700, 60)}
    rows[9]["rationale"] += " " + LEAKED
    return rows


def lima_rows(cot: list[dict]) -> list[dict]:
    """8 LIMA rows, the last one the same conversation as the ko rendering of cot row 0."""
    rows = [{"conversations": [f"Question {i}: {words(200 + i, 10)}", words(300 + i, 40)],
             "source": ["stackexchange", "wikihow"][i % 2]} for i in range(7)]
    return rows + [{"conversations": [cot[0]["source"], f"{cot[0]['rationale']}\n따라서 정답은 0입니다."],
                    "source": "stackexchange"}]


TWIN_VARIANTS = {"lima+cot": {"mix": {"lima": "all", "kocot": "all"}},
                 "lima+answer-only": {"mix": {"lima": "all", "kocot_answer_only": "all"}},
                 "cot": {"mix": {"kocot": "all"}}, "cot-answer-only": {"mix": {"kocot_answer_only": "all"}}}


@pytest.fixture()
def twins(tmp_path):
    cot = cot_rows()
    write_jsonl(tmp_path / "cot.jsonl", cot)
    write_jsonl(tmp_path / "lima.jsonl", lima_rows(cot))
    write_jsonl(tmp_path / "eval.jsonl", [{"text": LEAKED}])
    return tmp_path, {
        "sources": {"lima": {"path": "lima.jsonl"},
                    "kocot": {"path": "cot.jsonl", "format": "kocot", "cot_style": "ko"},
                    "kocot_answer_only": {"path": "cot.jsonl", "format": "kocot", "cot_style": "answer-only",
                                          "twin_of": "kocot"}},
        "variants": TWIN_VARIANTS, "sizes": [3, 6, "all", {"lima": 2, "kocot": 3}, {"kocot": 4}],
        "skip_bad": True, "dedup": {"exact": True, "near": True, "groups": [["lima"], ["kocot", "kocot_answer_only"]]},
        "decontamination": {"eval_files": {"leak": "eval.jsonl"}, "remove": True}}


def questions(out, rel):
    return [r["messages"][0]["content"] for r in lines(out / rel / "train.jsonl")]


def test_twins_lose_and_keep_the_same_rows(twins):
    folder, raw = twins
    result = build_data(write_config(folder, raw), folder / "out")
    manifest = result.manifest
    assert manifest["inputs"]["kocot"]["skipped"] == {"missing_field": 1}
    assert manifest["inputs"]["kocot_answer_only"]["unpaired"] == 1 and manifest["inputs"]["kocot"]["unpaired"] == 0
    assert manifest["twins"]["kocot"] == {
        "primary": "kocot", "twins": ["kocot_answer_only"], "pairs_read": 11, "pairs_kept": 8,
        "unpaired": {"kocot": 0, "kocot_answer_only": 1},
        "removed_with_twin": {"kocot": 1, "kocot_answer_only": 1}}
    # row 5 repeats row 1 in both styles; only row 7's answer-only form repeats (its ko form goes with it);
    # only row 9's ko form quotes the eval text (its answer-only form goes with it)
    assert manifest["removed"] == {"exact_duplicates": 3, "near_duplicates": 0, "contaminated": 1,
                                   "removed_with_twin": 2}
    assert manifest["pools"] == {"lima": 8, "kocot": 8, "kocot_answer_only": 8}
    cot, answer_only = (lines(folder / "out" / v / "all" / "train.jsonl") for v in ("cot", "cot-answer-only"))
    assert [r["messages"][0] for r in cot] == [r["messages"][0] for r in answer_only]
    assert {r["messages"][1]["content"] for r in answer_only} == {"0", "1", "2", "4", "6", "8", "10", "11"}
    card = (folder / "out" / "card.md").read_text(encoding="utf-8")
    assert "- kocot / kocot_answer_only: 8 of 11 pairs kept; removed with their twin: kocot 1, " \
           "kocot_answer_only 1; unpaired (the row failed in another style), dropped: kocot_answer_only 1" in card
    assert "within each group (records of different groups are never compared): [lima], [kocot, kocot_answer_only]" \
        in card
    kept_row1 = result.reports["kocot"].records[1].id
    assert f"(kocot, line 6) duplicates `{kept_row1}` (kocot, line 2)" in card


def test_a_twin_variant_selects_the_questions_of_its_primary_at_every_size(twins):
    folder, raw = twins
    build_data(write_config(folder, raw), folder / "out")
    out = folder / "out"
    for label in ("3", "6", "all", "lima-2+kocot-3", "kocot-4"):
        with_cot, answer_only = questions(out, f"lima+cot/{label}"), questions(out, f"lima+answer-only/{label}")
        assert with_cot == answer_only, label
        assert questions(out, f"cot/{label}") == questions(out, f"cot-answer-only/{label}"), label
    mixed = lines(out / "lima+answer-only" / "lima-2+kocot-3" / "train.jsonl")
    assert Counter(r["source"] for r in mixed)["kocot_answer_only"] == 3 and len(mixed) == 5
    assert questions(out, "lima+cot/3") == questions(out, "lima+cot/6")[:3]


def test_with_another_seed_the_twins_still_agree(twins):
    folder, raw = twins
    build_data(write_config(folder, {**raw, "seed": 5, "stratify": False}), folder / "out")
    for label in ("3", "6", "lima-2+kocot-3"):
        assert questions(folder / "out", f"lima+cot/{label}") == questions(folder / "out", f"lima+answer-only/{label}")


def test_dedup_groups_keep_a_copy_across_groups(twins):
    folder, raw = twins
    grouped = build_data(write_config(folder, raw), folder / "a").manifest
    together = build_data(write_config(folder, {**raw, "dedup": {"exact": True, "near": True}}), folder / "b").manifest
    assert grouped["pools"]["lima"] == together["pools"]["lima"] == 8
    assert together["pools"]["kocot"] == together["pools"]["kocot_answer_only"] == 7  # cot row 0 repeats a lima row
    assert together["twins"]["kocot"]["removed_with_twin"] == {"kocot": 1, "kocot_answer_only": 2}


def test_twins_are_never_compared_with_each_other(tmp_path):
    """The ko and en renderings of one row differ only in the closing sentence: as two independent
    sources near dedup removes every en record; as twins it removes none."""
    rows = [{"source": f"문제 {i}: {words(100 + i, 8)}?", "rationale": words(i, 80), "target": str(i)} for i in range(6)]
    write_jsonl(tmp_path / "cot.jsonl", rows)
    raw = {"sources": {"kocot": {"path": "cot.jsonl", "cot_style": "ko"},
                       "kocot_en": {"path": "cot.jsonl", "cot_style": "en", "twin_of": "kocot"}},
           "variants": {"cot": {"mix": {"kocot": "all"}}, "cot-en": {"mix": {"kocot_en": "all"}}},
           "dedup": {"near": True}}
    paired = build_data(write_config(tmp_path, raw), tmp_path / "a").manifest
    assert paired["pools"] == {"kocot": 6, "kocot_en": 6} and paired["removed"]["near_duplicates"] == 0
    raw["sources"]["kocot_en"].pop("twin_of")
    raw["variants"].pop("cot-en")  # it would be empty
    apart = build_data(write_config(tmp_path, raw), tmp_path / "b").manifest
    assert apart["pools"] == {"kocot": 6, "kocot_en": 0} and apart["removed"]["near_duplicates"] == 6


# (case, changes to the twins config, the message)
BAD_TWINS = [
    ("unknown", {"kocot_answer_only": {"twin_of": "kocat"}}, r"sources.kocot_answer_only.twin_of: expected another "
                                                            r"source's name"),
    ("itself", {"kocot_answer_only": {"twin_of": "kocot_answer_only"}}, r"sources.kocot_answer_only.twin_of: expected another source's name"),
    ("twin_of_twin", {"kocot_en": {"path": "cot.jsonl", "format": "kocot", "cot_style": "en",
                                   "twin_of": "kocot_answer_only"}},
     r"sources.kocot_en.twin_of: kocot_answer_only is itself a twin \(of kocot\); name kocot instead"),
    ("other_path", {"kocot_answer_only": {"path": "lima.jsonl"}},
     r"sources.kocot_answer_only.twin_of: a twin reads the same rows as its source, so "
     r"sources.kocot_answer_only.path must equal sources.kocot.path"),
    ("other_filter", {"kocot_answer_only": {"include": {"target": ["1"]}}},
     r"sources.kocot_answer_only.twin_of: .* sources.kocot_answer_only.include must equal sources.kocot.include "
     r"\(\{\}; got \{'target': \['1'\]\}\)"),
]


@pytest.mark.parametrize("case, change, message", BAD_TWINS, ids=[c[0] for c in BAD_TWINS])
def test_bad_twins_are_config_errors(twins, case, change, message):
    folder, raw = twins
    sources = {name: dict(src) for name, src in raw["sources"].items()}
    for name, fields in change.items():
        sources[name] = {**sources.get(name, {}), **fields}
    with pytest.raises(LimacotInputError, match=rf"{case}.yaml: {message}"):
        write_config(folder, {**raw, "sources": sources}, f"{case}.yaml")


BAD_VARIANTS = [
    ("both_twins", {"variants": {"v": {"mix": {"kocot": "all", "kocot_answer_only": 3}}}},
     r"variants.v.mix: kocot and kocot_answer_only are twins"),
    ("group_twice", {"dedup": {"groups": [["lima", "kocot", "kocot_answer_only"], ["lima"]]}},
     r"dedup.groups\[1\]: source 'lima' is already in dedup.groups\[0\]"),
    ("group_unknown", {"dedup": {"groups": [["lima", "alpaca"]]}}, r"dedup.groups\[0\]: unknown source 'alpaca'"),
    ("group_empty", {"dedup": {"groups": [[]]}}, r"dedup.groups\[0\]: expected at least one source name"),
    ("twin_apart", {"dedup": {"groups": [["lima", "kocot"], ["kocot_answer_only"]]}},
     r"dedup.groups: 'kocot_answer_only' is the twin of 'kocot' .* put both in one group"),
    ("twin_left_out", {"dedup": {"groups": [["lima", "kocot"]]}}, r"dedup.groups: 'kocot_answer_only' is the twin"),
]


@pytest.mark.parametrize("case, changes, message", BAD_VARIANTS, ids=[c[0] for c in BAD_VARIANTS])
def test_bad_twin_variants_and_groups_are_config_errors(twins, case, changes, message):
    folder, raw = twins
    with pytest.raises(LimacotInputError, match=rf"{case}.yaml: {message}"):
        write_config(folder, {**raw, **changes}, f"{case}.yaml")


def test_sources_in_no_group_are_deduplicated_with_their_twins_only(twins):
    folder, raw = twins
    config = write_config(folder, {**raw, "dedup": {"groups": [["lima"]]}})
    assert config.dedup_groups() == [["lima"], ["kocot", "kocot_answer_only"]]
    assert write_config(folder, {**raw, "dedup": {}}).dedup_groups() == [["lima", "kocot", "kocot_answer_only"]]


def test_the_build_key_covers_filters_twins_groups_sizes_and_decontamination_mode(twins):
    folder, raw = twins
    key = build_key(write_config(folder, raw))
    sources = raw["sources"]
    changes = [
        {"sources": {**sources, "lima": {**sources["lima"], "exclude": {"source": ["wikihow"]}}}},
        {"sources": {**sources, "kocot_answer_only": {**sources["kocot_answer_only"], "cot_style": "en"}}},
        {"dedup": {**raw["dedup"], "groups": None}},
        {"sizes": [3, 6, "all", {"lima": 2, "kocot": 4}, {"kocot": 4}]},
        {"decontamination": {**raw["decontamination"], "mode": "char"}},
    ]
    keys = {build_key(write_config(folder, {**raw, **change})) for change in changes}
    assert len(keys) == len(changes) and key not in keys
