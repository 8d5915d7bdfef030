"""Training set sizes: integers, 'all', and counts per source ({lima: 3, kocot: 2}); their labels
(the output folder names) and the errors of a bad size."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from limacot.data.build import build_data
from limacot.data.config import DataBuildConfig, size_label
from limacot.errors import LimacotInputError
from limacot.io.yaml_config import load_config


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture()
def files(tmp_path):
    write_jsonl(tmp_path / "lima.jsonl", [{"conversations": [f"Question {i} on topic {i * 31}?", f"Answer number {i}."],
                                           "source": ["stackexchange", "wikihow"][i % 2]} for i in range(10)])
    write_jsonl(tmp_path / "cot.jsonl", [{"source": f"사과 {i}개와 {i * 3}개는 모두 몇 개?", "rationale": f"{i}+{i * 3}={i * 4}",
                                          "target": str(i * 4)} for i in range(8)])
    return tmp_path


def config(folder, name="data.yaml", **changes):
    raw = {"sources": {"lima": {"path": "lima.jsonl"}, "kocot": {"path": "cot.jsonl"},
                       "kocot_answer_only": {"path": "cot.jsonl", "cot_style": "answer-only", "twin_of": "kocot"}},
           "variants": {"lima": {"mix": {"lima": "all"}}, "lima+cot": {"mix": {"lima": "all", "kocot": "all"}},
                        "lima+answer-only": {"mix": {"lima": "all", "kocot_answer_only": "all"}},
                        "cot": {"mix": {"kocot": 2}, "sizes": [2, {"kocot": 5}]}},
           "sizes": [4, {"lima": 3, "kocot": 2}], **changes}
    (folder / name).write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_config(folder / name, DataBuildConfig)


def read(out, rel):
    return [json.loads(line) for line in (out / rel / "train.jsonl").read_text(encoding="utf-8").splitlines()]


def test_size_labels():
    assert [size_label(s) for s in (250, "all", {"lima": 1000, "kocot": 2000}, {"kocot": "all", "lima": 5})] == \
        ["250", "all", "lima-1000+kocot-2000", "kocot-all+lima-5"]


def test_a_size_given_as_counts_takes_them_from_the_variants_sources(files):
    out = files / "out"
    manifest = build_data(config(files), out).manifest
    assert set(manifest["outputs"]) == {f"{v}/{s}/train.jsonl" for v in ("lima", "lima+cot", "lima+answer-only")
                                        for s in ("4", "lima-3+kocot-2")} | {"cot/2/train.jsonl",
                                                                              "cot/kocot-5/train.jsonl"}
    both = read(out, "lima+cot/lima-3+kocot-2")
    assert len(both) == 5 and sum(r["source"] == "kocot" for r in both) == 2
    lima = read(out, "lima/lima-3+kocot-2")
    assert len(lima) == 3 and {r["id"] for r in lima} == {r["id"] for r in both if r["source"] != "kocot"}
    answer_only = read(out, "lima+answer-only/lima-3+kocot-2")
    assert Counter(r["source"] for r in answer_only)["kocot_answer_only"] == 2 and len(answer_only) == 5
    assert [r["messages"][0] for r in answer_only] == [r["messages"][0] for r in both]


def test_a_size_given_as_counts_overrides_the_mix_counts(files):
    """Variant `cot` mixes {kocot: 2}; at size {kocot: 5} it takes 5, a superset of the 2 of a smaller count."""
    out = files / "out"
    build_data(config(files, variants={"cot": {"mix": {"kocot": 2}}}, sizes=[{"kocot": 5}, {"kocot": 2}, 2]), out)
    five, two = read(out, "cot/kocot-5"), read(out, "cot/kocot-2")
    assert len(five) == 5 and len(two) == 2 and {r["id"] for r in two} <= {r["id"] for r in five}
    assert {r["id"] for r in read(out, "cot/2")} == {r["id"] for r in two}  # the mix's own 2, drawn the same way


def test_counts_over_a_pool_name_the_variant_and_source(files):
    with pytest.raises(LimacotInputError, match=r"data.yaml: variants.lima: mixture asks for 30 records from pool "
                                                r"'lima', which has only 10 available"):
        build_data(config(files, variants={"lima": {"mix": {"lima": "all"}}}, sizes=[{"lima": 30}]), files / "out")


# (case, sizes, the message after "FILE: ")
BAD_SIZES = [
    ("unknown_source", [{"lima": 3, "alpaca": 2}], r"sizes: size lima-3\+alpaca-2 names unknown source 'alpaca'"),
    ("twin_named", [{"kocot_answer_only": 2}], r"sizes: size kocot_answer_only-2 names the twin 'kocot_answer_only'; "
                                               r"a size counts questions, so name its source 'kocot'"),
    ("none_of_the_variant", [{"kocot": 2}], r"sizes: size kocot-2 names none of the sources of variant 'lima' "
                                            r"\(\['lima'\]\)"),
    ("count_zero", [{"lima": 0}], r"sizes: size lima-0: lima: 0 is not a count of records >= 1"),
    ("empty", [{}], r"sizes: a size given as counts per source names no source"),
    ("twice", [{"lima": 3}, 4, {"lima": 3}], r"sizes: size lima-3 is given twice"),
    ("bad_value", [{"lima": "half"}], r".*sizes\[0\].lima: expected a valid integer or 'all' \(got 'half'\)"),
]


@pytest.mark.parametrize("case, sizes, message", BAD_SIZES, ids=[c[0] for c in BAD_SIZES])
def test_bad_sizes_are_config_errors(files, case, sizes, message):
    with pytest.raises(LimacotInputError, match=rf"{case}.yaml: {message}"):
        config(files, f"{case}.yaml", sizes=sizes)


def test_a_variants_own_sizes_are_checked_against_its_sources(files):
    variants = {"cot": {"mix": {"kocot": "all"}, "sizes": [{"lima": 3}]}}
    with pytest.raises(LimacotInputError, match=r"own.yaml: variants.cot.sizes: size lima-3 names none of the sources "
                                                r"of variant 'cot' \(\['kocot'\]\)"):
        config(files, "own.yaml", variants=variants)
    ratio = {"half": {"mix": {"lima": 0.5, "kocot": 0.5}, "sizes": ["all", {"lima": 2, "kocot": 2}]}}
    with pytest.raises(LimacotInputError, match=r"ratio.yaml: variants.half: a ratio mix needs an integer size"):
        config(files, "ratio.yaml", variants=ratio)
