"""The readers and templates on the real public data files (../shared/data), unchanged."""

from __future__ import annotations

import json
import pytest
from typer.testing import CliRunner

from limacot.cli import app
from limacot.data.files import iter_rows
from limacot.data.sources import read_records

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

