"""`data build` with source filters (include / exclude) and twin sources (one file read in two
CoT styles, kept as pairs through dedup, decontamination and selection)."""

from __future__ import annotations

import json

import pytest
import yaml

from limacot.data.build import build_data
from limacot.data.config import DataBuildConfig
from limacot.errors import LimacotInputError
from limacot.io.yaml_config import load_config


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_config(folder, config, name="data.yaml"):
    (folder / name).write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
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
