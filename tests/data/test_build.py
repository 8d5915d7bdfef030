"""`data build` end to end on small synthetic files: layout, nesting, dedup, decontamination,
the card, the manifest and the no-work rebuild; and the config's strictness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from limacot.data.config import DataBuildConfig
from limacot.io.yaml_config import load_config
from limacot.data.build import build_data
from limacot.errors import LimacotInputError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


LEAKED = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat"


@pytest.fixture()
def study(tmp_path):
    lima = [{"conversations": [f"Question number {i} about topic {i * 7}?", f"Answer {i}: " + "word " * (i % 5 + 3)],
             "source": ["stackexchange", "wikihow"][i % 2]} for i in range(12)]
    lima.append(dict(lima[0]))  # exact duplicate
    lima.append({"conversations": ["Tell me a story", "Once upon a time " + LEAKED + "."], "source": "authors"})
    cot = [{"source": f"사과가 {i}개 있고 2개를 더 사면 몇 개입니까?", "rationale": f"{i} 더하기 2는 {i + 2}입니다.",
            "target": str(i + 2)} for i in range(10)]
    write_jsonl(tmp_path / "lima.jsonl", lima)
    write_jsonl(tmp_path / "cot.jsonl", cot)
    write_jsonl(tmp_path / "eval.jsonl", [{"text": LEAKED.upper() + "!", "label": "1"}])
    config = {
        "sources": {"lima": {"path": "lima.jsonl"}, "kocot": {"path": "cot.jsonl", "cot_style": "en"}},
        "variants": {"lima": {"mix": {"lima": "all"}}, "lima+cot": {"mix": {"lima": "all", "kocot": 5}},
                     "half": {"mix": {"lima": 0.5, "kocot": 0.5}, "sizes": [4, 8]}},
        "sizes": [4, 8, "all"],
        "decontamination": {"eval_files": {"demo_eval": "eval.jsonl"}, "remove": True},
    }
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


def read_ids(path):
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_build_writes_nested_variants_card_and_manifest(study):
    config = load_config(study / "data.yaml", DataBuildConfig)
    out = study / "out"
    result = build_data(config, out)
    assert not result.up_to_date
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["removed"] == {"exact_duplicates": 1, "near_duplicates": 0, "contaminated": 1, "removed_with_twin": 0}
    assert manifest["pools"] == {"lima": 12, "kocot": 10}
    small, large, everything = (read_ids(out / "lima" / s / "train.jsonl") for s in ("4", "8", "all"))
    assert len(small) == 4 and len(large) == 8 and len(everything) == 12
    assert small == large[:4] and large == everything[:8]
    assert len(read_ids(out / "lima+cot" / "all" / "train.jsonl")) == 17
    half = [json.loads(line) for line in (out / "half" / "8" / "train.jsonl").read_text().splitlines()]
    assert sum(r["source"] == "kocot" for r in half) == 4
    first = json.loads((out / "lima+cot" / "all" / "train.jsonl").read_text().splitlines()[0])
    assert set(first) == {"id", "source", "messages"}
    card = (out / "card.md").read_text()
    assert "demo_eval" in card and "| `lima/4/train.jsonl` | 4 |" in card
    assert (out / "config.resolved.yaml").is_file()


def test_rebuild_is_a_no_op_until_something_changes(study):
    config = load_config(study / "data.yaml", DataBuildConfig)
    out = study / "out"
    build_data(config, out)
    before = (out / "lima" / "8" / "train.jsonl").stat().st_mtime_ns
    assert build_data(config, out).up_to_date
    assert (out / "lima" / "8" / "train.jsonl").stat().st_mtime_ns == before
    (out / "lima" / "8" / "train.jsonl").write_text("tampered\n")
    assert not build_data(config, out).up_to_date
    assert build_data(config.model_copy(update={"seed": 1}), out).up_to_date is False


def test_same_seed_same_files_other_seed_other_order(study):
    config = load_config(study / "data.yaml", DataBuildConfig)
    build_data(config, study / "a")
    build_data(config, study / "b")
    build_data(config.model_copy(update={"seed": 7}), study / "c")
    a, b, c = (read_ids(study / d / "lima" / "8" / "train.jsonl") for d in "abc")
    assert a == b and a != c


def test_config_errors_are_input_errors(study):
    path = study / "bad.yaml"
    path.write_text(yaml.safe_dump({"sources": {"lima": {"path": "lima.jsonl", "colums": {}}},
                                    "variants": {"v": {"mix": {"lima": "all"}}}}))
    with pytest.raises(LimacotInputError, match=r"sources.lima.colums: unknown key; valid keys: path, format, columns, cot_style"):
        load_config(path, DataBuildConfig)
    path.write_text(yaml.safe_dump({"sources": {"lima": {"path": "lima.jsonl"}},
                                    "variants": {"v": {"mix": {"kocot": "all"}}}}))
    with pytest.raises(LimacotInputError, match=r"bad.yaml: variants.v.mix: names unknown source\(s\) \['kocot'\]"):
        load_config(path, DataBuildConfig)
    with pytest.raises(LimacotInputError, match="config file not found"):
        load_config(study / "missing.yaml", DataBuildConfig)


def test_a_key_given_twice_is_an_input_error(study):
    """Plain YAML keeps the last of two equal keys: the second `lima` variant would silently
    replace the first."""
    path = study / "twice.yaml"
    path.write_text("sources:\n  lima: {path: lima.jsonl}\nvariants:\n  lima: {mix: {lima: all}}\n"
                    "  lima: {mix: {lima: 3}}\n", encoding="utf-8")
    with pytest.raises(LimacotInputError, match=r"twice.yaml: key 'lima' is given twice \(line 4 and line 5\)"):
        load_config(path, DataBuildConfig)


def test_size_larger_than_pool_is_an_input_error(study):
    config = load_config(study / "data.yaml", DataBuildConfig).model_copy(update={"sizes": [100]})
    with pytest.raises(LimacotInputError, match="100"):
        build_data(config, study / "out")


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.shared_data) if "shared/data" in p.read_text()
                                  else p for p in SHIPPED], ids=[p.name for p in SHIPPED])
def test_shipped_data_configs_validate(path, request):
    """A config naming the public data (../shared/data) loads only where that folder is."""
    if "shared/data" in path.read_text(encoding="utf-8"):
        request.getfixturevalue("shared_data")
    config = load_config(path, DataBuildConfig)
    assert config.variants and config.sources, path


def write_config(study, name, **changes):
    """data.yaml of `study` with top-level `changes`, saved as `name`."""
    raw = {**yaml.safe_load((study / "data.yaml").read_text(encoding="utf-8")), **changes}
    (study / name).write_text(yaml.safe_dump(raw), encoding="utf-8")
    return study / name


# (case, top-level changes, the key and the words the message must hold)
BAD_CONFIGS = [
    ("size_zero", {"sizes": [0]}, r"sizes: size 0 is not a number of records >= 1"),
    ("size_twice", {"sizes": [4, 4]}, r"sizes: size 4 is given twice"),
    ("no_sizes", {"sizes": []}, r"sizes: expected at least one size"),
    ("variant_size_twice", {"variants": {"v": {"mix": {"lima": "all"}, "sizes": [2, "all", 2]}}},
     r"variants.v.sizes: size 2 is given twice"),
    ("no_variants", {"variants": {}}, r"variants: expected at least one entry"),
    ("missing_source", {"sources": {"lima": {"path": "nope.jsonl"}, "kocot": {"path": "cot.jsonl"}}}, r"sources.lima.path: no such file .*nope.jsonl"),
    ("folder_source", {"sources": {"lima": {"path": "."}, "kocot": {"path": "cot.jsonl"}}}, r"sources.lima.path: .* is a folder, expected a file"),
    ("missing_eval_file", {"decontamination": {"eval_files": {"copa": "gone.jsonl"}}},
     r"decontamination.eval_files.copa: no such file .*gone.jsonl"),
    ("ratio_and_count", {"variants": {"v": {"mix": {"lima": 0.5, "kocot": 3}}}},
     r"variants.v.mix: .* mixes ratios \(floats\) with counts"),
    ("count_zero", {"variants": {"v": {"mix": {"lima": 0}}}}, r"variants.v.mix: lima: 0 is not a count"),
    ("mix_not_a_mapping", {"variants": {"v": {"mix": "all"}}}, r"variants.v.mix: expected a mapping \(key: value\) "
                                                               r"\(got 'all'\)"),
    ("variant_named_none", {"variants": {"none": {"mix": {"lima": [1]}}}},
     r"variants.none.mix.lima: expected a valid integer or a valid number or 'all'"),
    ("source_not_a_mapping", {"sources": {"lima": "lima.jsonl", "kocot": {"path": "cot.jsonl"}}}, r"sources.lima: expected a mapping of settings"),
]


@pytest.mark.parametrize("case, changes, expected", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_configs_name_the_file_and_key(study, case, changes, expected):
    """Each was built silently (an empty or duplicated training file) or failed with a raw
    exception; each is refused when the config loads, before any source is read."""
    path = write_config(study, f"{case}.yaml", **changes)
    with pytest.raises(LimacotInputError, match=rf"{case}.yaml: {expected}") as err:
        load_config(path, DataBuildConfig)
    assert "Config" not in str(err.value) and "Value error" not in str(err.value)


def test_unreadable_config_files_are_input_errors(study):
    (study / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01 binary")
    with pytest.raises(LimacotInputError, match=r"binary.yaml: not a UTF-8 text file \(byte 0xff at offset 0\)"):
        load_config(study / "binary.yaml", DataBuildConfig)
    (study / "folder.yaml").mkdir()
    with pytest.raises(LimacotInputError, match=r"folder.yaml: is a folder; expected a YAML config file"):
        load_config(study / "folder.yaml", DataBuildConfig)


def test_an_empty_source_is_an_input_error(study):
    (study / "empty.jsonl").write_text("\n", encoding="utf-8")
    path = write_config(study, "empty.yaml", sources={"lima": {"path": "lima.jsonl"}, "kocot": {"path": "empty.jsonl"}})
    with pytest.raises(LimacotInputError, match=r"empty.yaml: sources.kocot: .*empty.jsonl holds no records"):
        build_data(load_config(path, DataBuildConfig), study / "out")
    assert not (study / "out").exists()


def test_skip_bad_dropping_every_record_is_an_input_error(study):
    write_jsonl(study / "bad.jsonl", [{"conversations": "not a list"}, {"text": "no turns"}])
    path = write_config(study, "bad.yaml", sources={"lima": {"path": "bad.jsonl", "format": "lima"}},
                        variants={"v": {"mix": {"lima": "all"}}}, skip_bad=True)
    with pytest.raises(LimacotInputError, match=r"bad.yaml: sources.lima: every record of .*bad.jsonl was malformed "
                                                r"and skipped .*\{'wrong_type': 1, 'missing_field': 1\}"):
        build_data(load_config(path, DataBuildConfig), study / "out")


def test_a_build_never_writes_an_empty_training_file(study):
    """A source made only of duplicates of another is empty after dedup: its variant would be a
    0-record train.jsonl. Nothing is written, not even the other variants."""
    write_jsonl(study / "copy.jsonl", [json.loads(line) for line in
                                       (study / "lima.jsonl").read_text(encoding="utf-8").splitlines()[:3]])
    path = write_config(study, "copy.yaml", sources={"lima": {"path": "lima.jsonl"}, "mirror": {"path": "copy.jsonl"}},
                        variants={"lima": {"mix": {"lima": "all"}}, "mirror": {"mix": {"mirror": "all"}}},
                        sizes=["all"], decontamination=None)
    with pytest.raises(LimacotInputError, match=r"copy.yaml: variants.mirror: size all would write an empty training "
                                                r"file .*\{'mirror': 0\}"):
        build_data(load_config(path, DataBuildConfig), study / "out")
    assert not list(study.rglob("train.jsonl"))


def test_selection_errors_name_the_config_and_variant(study):
    path = write_config(study, "big.yaml", sizes=[100])
    with pytest.raises(LimacotInputError, match=r"big.yaml: variants.lima: subset size 100"):
        build_data(load_config(path, DataBuildConfig), study / "out")


def test_every_source_is_checked_before_any_is_read(study, monkeypatch):
    """A file type no reader handles, on the last source, stopped the build after the others were
    read; and the message named neither the config nor the source."""
    import limacot.data.build as build

    (study / "notes.txt").write_text("plain text\n", encoding="utf-8")
    path = write_config(study, "txt.yaml", sources={"lima": {"path": "lima.jsonl"}, "kocot": {"path": "cot.jsonl"},
                                                    "zz_notes": {"path": "notes.txt"}})
    read = []
    monkeypatch.setattr(build, "read_records", lambda *a, **k: read.append(a) or pytest.fail("a source was read"))
    with pytest.raises(LimacotInputError, match=r"txt.yaml: sources.zz_notes.path: .*notes.txt: unsupported file "
                                                r"type '.txt'"):
        build_data(load_config(path, DataBuildConfig), study / "out")
    assert not read
