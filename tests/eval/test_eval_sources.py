"""Reading the original files under --data-dir: layouts, label spellings, fallbacks, errors."""

from __future__ import annotations

import json

import pytest

from limacot.errors import DataError, LimacotInputError
from limacot.eval.task_data import clean_ko_question, load_docs, local_files, missing_message, read_local


def _tsv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")


def test_sentineg_columns_are_read_by_name_whatever_their_order(tmp_path):
    base = tmp_path / "kobest" / "sentineg"
    _tsv(base / "train.tsv", ["ID", "Text", "Label"], [["1", "별로네요", "0"]])
    _tsv(base / "dev.tsv", ["ID", "Label", "Text"], [["1", "1", "만족입니다"]])
    _tsv(base / "test.tsv", ["ID", "Label_origin", "Text_origin", "Label", "Text", "Category_neg"],
         [["3394", "0", "마음에 안들음", "1", "마음에 듬", "1"]])
    splits = read_local("kobest_sentineg", tmp_path)
    assert splits["train"][0] == {"sentence": "별로네요", "label": 0, "limacot_id": "1"}
    assert splits["validation"][0]["sentence"] == "만족입니다" and splits["validation"][0]["label"] == 1
    assert splits["test"][0] == {"sentence": "마음에 듬", "label": 1, "limacot_id": "3394"}


def test_true_false_spellings_and_copa_answers(tmp_path):
    base = tmp_path / "kobest" / "boolq"
    rows = [["1", "p", "q", "TRUE"], ["2", "p", "q", "False "], ["3", "p", "q", "true"]]
    for split in ("train", "dev", "test"):
        _tsv(base / f"{split}.tsv", ["ID", "Text", "Question", "Answer"], rows)
    assert [d["label"] for d in read_local("kobest_boolq", tmp_path)["test"]] == [1, 0, 1]
    copa = tmp_path / "kobest" / "copa"
    for split in ("train", "dev", "test"):
        _tsv(copa / f"{split}.tsv", ["ID", "sentence", "question", "1", "2", "Answer"],
             [["1", "s", "결과 ", "a", "b", "2"]])
    doc = read_local("kobest_copa", tmp_path)["test"][0]
    assert (doc["premise"], doc["question"], doc["alternative_1"], doc["label"]) == ("s", "결과 ", "a", 1)


def test_a_bad_label_names_file_row_and_field(tmp_path):
    base = tmp_path / "kobest" / "wic"
    header = ["ID", "Target", "SENTENCE1", "Dictionary 1", "Link 1", "SENTENCE2", "Dictionary 2", "Link2", "ANSWER"]
    good = ["1", "w", "a", "1", "l", "b", "1", "l", "True"]
    for split in ("train", "dev"):
        _tsv(base / f"{split}.tsv", header, [good])
    _tsv(base / "test.tsv", header, [good, good[:-1] + ["maybe"]])
    with pytest.raises(DataError) as err:
        read_local("kobest_wic", tmp_path)
    message = str(err.value)
    assert "wic/test.tsv:row 2 (line 3)" in message and "field 'ANSWER'" in message and "'maybe'" in message


def test_missing_files_name_the_expected_path_and_layout(tmp_path):
    message = missing_message("kobest_copa", "kobest_copa", tmp_path)
    assert str(tmp_path / "kobest" / "copa" / "train.tsv") in message and "test.tsv" in message
    assert "KoBEST TSV" in message
    with pytest.raises(LimacotInputError, match="kmmlu/Accounting-test.json"):
        read_local("kmmlu", tmp_path, "Accounting")


def test_mmlu_header_and_headerless_layouts(tmp_path):
    (tmp_path / "mmlu" / "test").mkdir(parents=True)
    (tmp_path / "mmlu" / "dev").mkdir(parents=True)
    (tmp_path / "mmlu" / "test" / "anatomy_test.csv").write_text(
        "question,choice0,choice1,choice2,choice3,answer\nWhat?,a,b,c,d,2\n", encoding="utf-8")
    (tmp_path / "mmlu" / "dev" / "anatomy_dev.csv").write_text('"Why, then?",a,b,c,d,D\n', encoding="utf-8")
    splits = read_local("mmlu", tmp_path, "anatomy")
    assert splits["test"][0]["choices"] == ["a", "b", "c", "d"] and splits["test"][0]["answer"] == 2
    assert splits["dev"][0]["question"] == "Why, then?" and splits["dev"][0]["answer"] == 3


def test_kmmlu_dev_fallback_and_csv_files(tmp_path):
    rows = [{"question": f"q{i}", "answer": 1 + i % 4, "A": "a", "B": "b", "C": "c", "D": "d"} for i in range(8)]
    (tmp_path / "kmmlu").mkdir()
    (tmp_path / "kmmlu" / "Law-test.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    splits = read_local("kmmlu", tmp_path, "Law")
    assert [d["question"] for d in splits["dev"]] == ["q0", "q1", "q2", "q3", "q4"]
    assert [d["question"] for d in splits["test"]] == ["q5", "q6", "q7"]
    (tmp_path / "kmmlu" / "Law-dev.csv").write_text("question,answer,A,B,C,D\ndq,2,a,b,c,d\n", encoding="utf-8")
    assert local_files("kmmlu", tmp_path, "Law")["dev"].suffix == ".csv"
    splits = read_local("kmmlu", tmp_path, "Law")
    assert len(splits["test"]) == 8 and splits["dev"][0]["answer"] == 2


def test_arc_original_layout_and_dev_as_fewshot_pool(tmp_path):
    row = {"id": "X1", "question": {"stem": "Why?", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]},
           "answerKey": "B"}
    (tmp_path / "arc").mkdir()
    for name in ("Dev", "Test"):
        (tmp_path / "arc" / f"ARC-Challenge-{name}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    splits = read_local("arc_challenge", tmp_path)
    assert splits["test"][0]["choices"] == {"text": ["a", "b"], "label": ["A", "B"]}
    assert splits["train"] == splits["validation"]


def test_clean_ko_question():
    assert clean_ko_question("얼마나 벌까요? \n\nAnswer: 그녀는 $4를 벌게 됩니다.") == "얼마나 벌까요?"
    assert clean_ko_question("몇 개입니까?") == "몇 개입니까?"


def test_hub_failure_says_to_use_data_dir(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(LimacotInputError, match="--data-dir"):
        load_docs("kobest_copa")
    with pytest.raises(LimacotInputError, match="no hub dataset"):
        load_docs("ko_gsm8k")
