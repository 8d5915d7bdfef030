"""The readers and templates on the real public data files (../shared/data), unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from limacot.cli import app
from limacot.data.build import build_data
from limacot.data.config import DataBuildConfig, size_label
from limacot.data.contamination import eval_texts_from_rows
from limacot.data.files import iter_rows
from limacot.data.sources import read_records
from limacot.io.yaml_config import load_config

pytestmark = pytest.mark.shared_data
runner = CliRunner()


def test_inspect_lima_train_json(shared_data):
    result = runner.invoke(app, ["data", "inspect", str(shared_data / "lima" / "train.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 1030 and summary["skipped"] == {}
    assert summary["sources"] == {"stackexchange": 400, "wikihow": 200, "writingprompts": 150, "authors": 200,
                                  "nlp": 50, "multi_turn": 30}
    assert summary["trimmed"] == {"trailing_user_turn": 1}
    assert summary["turns"] == {"2": 1000, "4": 16, "6": 10, "8": 3, "20": 1}


def test_korean_cot_sets_load_through_column_mappings(shared_data):
    cot = shared_data / "ko_instruct_cot"
    mwp = read_records(cot / "kor_mwp_reasoning_train.jsonl",
                       columns={"source": "question", "rationale": "reason", "target": "answer"})
    assert (mwp.format, len(mwp.records), dict(mwp.skipped)) == ("kocot", 3000, {})
    assert mwp.records[0].turns[1].content.endswith("따라서 정답은 50입니다.")
    every = read_records(cot / "everythinglm_ko_cot.jsonl", columns={"instruction": "input", "output": "label"})
    assert (every.format, len(every.records), dict(every.skipped)) == ("alpaca", 991, {})


def test_cli_column_mapping_and_tokens(shared_data):
    result = runner.invoke(app, ["data", "inspect", str(shared_data / "ko_instruct_cot" / "kor_mwp_reasoning_test.jsonl"),
                                 "--columns", "source=question,rationale=reason,target=answer", "--json",
                                 "--tokenizer", str(shared_data / "tokenizers" / "llama2"), "--template", "llama-2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 720 and summary["format"] == "kocot"
    tokens = summary["tokens"]
    assert 0 < tokens["percentiles"]["p50"] <= tokens["percentiles"]["p100"] and tokens["trained"] < tokens["total"]


@pytest.mark.parametrize("task", ["boolq", "copa", "hellaswag", "sentineg", "wic"])
def test_kobest_tsv_rows_have_the_header_columns(shared_data, task):
    rows = [row for _, row in iter_rows(shared_data / "kobest" / task / "dev.tsv")]
    assert len(rows) in {700, 500, 400, 610} and all(None not in row for row in rows)



SEED = Path(__file__).resolve().parents[2] / "configs" / "data" / "seed-study.yaml"


def test_seed_study_data_config(shared_data):
    config = load_config(SEED, DataBuildConfig)
    assert config.sources["lima"].include == {"source": ["stackexchange", "wikihow", "writingprompts", "authors", "nlp"]}
    assert config.sources["kocot_answer_only"].twin_of == "kocot"
    assert set(config.variants) == {"lima", "lima+cot", "lima+answer-only", "cot", "cot-answer-only"}
    assert [size_label(s) for s in config.sizes] == ["250", "500", "lima-1000+kocot-2000"]
    assert config.size_mix("lima", config.sizes[2]) == {"lima": 1000}
    assert config.size_mix("lima+answer-only", config.sizes[2]) == {"lima": 1000, "kocot_answer_only": 2000}
    assert config.dedup_groups() == [["lima"], ["kocot", "kocot_answer_only"]]
    decon = config.decontamination
    assert decon.mode == "char" and decon.remove and len(decon.eval_files) == 10
    for name, path in decon.eval_files.items():  # TSV, JSON array, CSV and JSONL, each read into texts
        assert Path(path).is_file() and eval_texts_from_rows(row for _, row in iter_rows(path)), name


@pytest.mark.slow
def test_seed_study_builds_on_local_files(shared_data, tmp_path):
    """The seed config with LIMA's file from shared data and, for KoCoT (not public here), the Korean
    math word problems with rationales: LIMA's 1,000 survive cleaning, and the CoT and answer-only
    variants hold the same questions at every size."""
    raw = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    raw["sources"]["lima"]["path"] = str(shared_data / "lima" / "train.jsonl")
    for name in ("kocot", "kocot_answer_only"):
        raw["sources"][name].update(path=str(shared_data / "ko_instruct_cot" / "kor_mwp_reasoning_train.jsonl"),
                                    columns={"source": "question", "rationale": "reason", "target": "answer"})
    raw["decontamination"]["eval_files"] = {name: str((SEED.parent / path).resolve())
                                            for name, path in raw["decontamination"]["eval_files"].items()}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    manifest = build_data(load_config(tmp_path / "data.yaml", DataBuildConfig), tmp_path / "out").manifest
    assert manifest["inputs"]["lima"]["filtered"] == {"source not in include": 30}
    assert manifest["pools"]["lima"] == 1000 and manifest["pools"]["kocot"] == manifest["pools"]["kocot_answer_only"]
    for label in ("250", "500", "lima-1000+kocot-2000"):
        pairs = [[json.loads(line)["messages"][0] for line in
                  (tmp_path / "out" / variant / label / "train.jsonl").read_text(encoding="utf-8").splitlines()]
                 for variant in ("lima+cot", "lima+answer-only")]
        assert pairs[0] == pairs[1], label
    assert manifest["outputs"]["lima/lima-1000+kocot-2000/train.jsonl"]["records"] == 1000
    assert manifest["outputs"]["lima+cot/lima-1000+kocot-2000/train.jsonl"]["records"] == 3000
