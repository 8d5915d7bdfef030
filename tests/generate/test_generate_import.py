"""Answers made elsewhere imported as a generations folder (`limacot generate --import`): checked
row by row against the prompts file, missing prompts counted and reported, usable as A by the judge."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from limacot.cli import app
from limacot.errors import LimacotInputError
from limacot.generate.imported import import_answers
from limacot.judge.protocol import load_run

runner = CliRunner()
PROMPTS = [{"id": "p1", "prompt": "Capital of France?"}, {"id": "p2", "prompt": "한국의 수도는?"},
           {"id": "p3", "prompt": "2+3?"}, {"id": 4, "prompt": "Name a colour."}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def prompts(tmp_path):
    return write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)


def test_import_writes_the_prompts_files_text_in_prompt_order_and_reports_what_is_missing(prompts, tmp_path):
    answers = write_jsonl(tmp_path / "answers.jsonl", [
        {"id": 4, "answer": "Blue."}, {"id": "p1", "answer": "Paris.", "prompt": " Capital of France? "},
        {"id": "p2", "answer": "서울입니다."}])
    result = runner.invoke(app, ["generate", "--import", str(answers), "--prompts", str(prompts), "--out",
                                 str(tmp_path / "REF")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "imported 3 answers for the 4 prompts" in text and "missing: 1 prompts have no answer (ids p3)" in text
    rows = [json.loads(line) for line in (tmp_path / "REF" / "generations.jsonl").read_text().splitlines()]
    assert rows == [{"id": "p1", "prompt": "Capital of France?", "answer": "Paris.", "tokens": None,
                     "finish_reason": None},
                    {"id": "p2", "prompt": "한국의 수도는?", "answer": "서울입니다.", "tokens": None, "finish_reason": None},
                    {"id": "4", "prompt": "Name a colour.", "answer": "Blue.", "tokens": None, "finish_reason": None}]
    settings = json.loads((tmp_path / "REF" / "settings.json").read_text())
    assert settings["model"]["kind"] == "import" and len(settings["model"]["sha256"]) == 64
    assert settings["imported"] == {"answered": 3, "prompts": 4, "missing": 1, "missing_ids": ["p3"],
                                    "left_out_by_limit": 0}
    run = load_run(tmp_path / "REF")  # what `limacot judge --a REF` reads
    assert list(run.rows) == ["p1", "p2", "4"]


def test_limit_keeps_the_first_prompts_and_counts_the_answers_left_out(prompts, tmp_path):
    answers = write_jsonl(tmp_path / "answers.jsonl", [{"id": pid, "answer": "x"} for pid in ("p1", "p2", "p3", 4)])
    report = import_answers(answers, prompts, tmp_path / "REF", limit=2)
    assert [r["id"] for r in report.rows] == ["p1", "p2"] and report.left_out == 2 and report.missing == []


@pytest.mark.parametrize("rows, expected", [
    ([{"id": "p1", "answer": "a"}, {"id": "p2", "answer": "b"}, {"id": "p1", "answer": "c"}],
     r"answers.jsonl:line 3: field 'id': expected each prompt id once; 'p1' is also on line 1"),
    ([{"id": "p1", "answer": "a"}, {"id": "p2", "answer": "  "}],
     r"answers.jsonl:line 2: field 'answer': expected the answer's text, not empty, got str '  '"),
    ([{"id": "p1"}], r"answers.jsonl:line 1: field 'answer': expected the answer's text, not empty, got nothing"),
    ([{"id": "p9", "answer": "a"}], r"answers.jsonl:line 1: field 'id': expected an id of the prompts file"),
    ([{"answer": "a"}], r"answers.jsonl:line 1: field 'id': expected the prompt's id"),
    ([{"id": "p1", "answer": "a", "prompt": "Capital of Spain?"}],
     r"answers.jsonl:line 1: field 'prompt': expected the prompts file's text for id 'p1'"),
])
def test_bad_answer_rows_are_errors_naming_the_line(prompts, tmp_path, rows, expected):
    answers = write_jsonl(tmp_path / "answers.jsonl", rows)
    with pytest.raises(LimacotInputError, match=expected):
        import_answers(answers, prompts, tmp_path / "REF")
    assert not (tmp_path / "REF" / "generations.jsonl").exists()
    result = runner.invoke(app, ["generate", "--import", str(answers), "--prompts", str(prompts), "--out",
                                 str(tmp_path / "REF")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_import_and_a_model_together_are_refused(prompts, tmp_path):
    answers = write_jsonl(tmp_path / "answers.jsonl", [{"id": "p1", "answer": "a"}])
    result = runner.invoke(app, ["generate", "--import", str(answers), "--model", "embedded", "--prompts",
                                 str(prompts), "--out", str(tmp_path / "REF")])
    assert result.exit_code == 2 and "not both" in result.output and not (tmp_path / "REF").exists()
