"""Readers: formats, detection, column mapping, and every kind of bad input."""

from __future__ import annotations

import json

import pytest

from limacot.data.sources import detect_format, read_records
from limacot.errors import DataError, LimacotInputError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


LIMA_ROWS = [
    {"conversations": ["What is 2+2?", "2+2 is 4."], "source": "nlp"},
    {"conversations": ["김치란?", "김치는 발효 음식입니다.", "맛있나요?", "네, 맛있습니다."], "source": "authors"},
    {"conversations": ["Hi", "Hello!", "Are you there?"], "source": "multi_turn"},
]


def test_lima_reader_trims_odd_conversation(tmp_path):
    report = read_records(write_jsonl(tmp_path / "lima.jsonl", LIMA_ROWS))
    assert report.format == "lima"
    assert [len(r.turns) for r in report.records] == [2, 4, 2]
    assert report.trimmed == {"trailing_user_turn": 1}
    assert [r.source for r in report.records] == ["nlp", "authors", "multi_turn"]
    assert report.records[1].turns[2].role == "user"


def test_ids_are_stable_content_hashes(tmp_path):
    a = read_records(write_jsonl(tmp_path / "a.jsonl", LIMA_ROWS)).records
    b = read_records(write_jsonl(tmp_path / "b.jsonl", [dict(r, source="other") for r in LIMA_ROWS])).records
    assert [r.id for r in a] == [r.id for r in b]
    assert len({r.id for r in a}) == 3


@pytest.mark.parametrize("row, fmt", [
    ({"conversations": ["q", "a"]}, "lima"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}, "sharegpt"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "messages"),
    ({"instruction": "q", "input": "", "output": "a"}, "alpaca"),
    ({"source": "q", "rationale": "r", "target": "t"}, "kocot"),
])
def test_every_format_is_detected_and_read(tmp_path, row, fmt):
    assert detect_format(row) == fmt
    report = read_records(write_jsonl(tmp_path / "x.jsonl", [row]))
    assert report.format == fmt and len(report.records) == 1
    assert [t.role for t in report.records[0].turns] == ["user", "assistant"]


def test_sharegpt_system_and_alpaca_input(tmp_path):
    share = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "q"},
                               {"from": "gpt", "value": "a"}]}
    record = read_records(write_jsonl(tmp_path / "s.jsonl", [share])).records[0]
    assert record.system == "Be brief."
    alpaca = {"instruction": "Translate.", "input": "안녕", "output": "Hello"}
    record = read_records(write_jsonl(tmp_path / "a.jsonl", [alpaca])).records[0]
    assert record.turns[0].content == "Translate.\n\n안녕"


@pytest.mark.parametrize("style, expected", [
    ("ko", "2 더하기 3은 5입니다.\n따라서 정답은 5입니다."),
    ("en", "2 더하기 3은 5입니다.\nSo the answer is 5."),
    ("answer-only", "5"),
])
def test_kocot_styles(tmp_path, style, expected):
    row = {"source": "2+3은?", "rationale": "2 더하기 3은 5입니다.", "target": 5}
    record = read_records(write_jsonl(tmp_path / "k.jsonl", [row]), cot_style=style).records[0]
    assert record.turns[1].content == expected


def test_user_defined_cot_style(tmp_path):
    row = {"source": "q", "rationale": "because", "target": "A"}
    path = write_jsonl(tmp_path / "k.jsonl", [row])
    record = read_records(path, cot_style="short", cot_styles={"short": "{rationale} => {target}"}).records[0]
    assert record.turns[1].content == "because => A"
    with pytest.raises(LimacotInputError, match="unknown field"):
        read_records(path, cot_style="bad", cot_styles={"bad": "{reason} {target}"})
    with pytest.raises(LimacotInputError, match="unknown CoT style"):
        read_records(path, cot_style="nope")


def test_column_mapping(tmp_path):
    rows = [{"question": "사과 3개와 2개는?", "reason": "3+2=5", "answer": "5", "class": "x"}]
    path = write_jsonl(tmp_path / "mwp.jsonl", rows)
    report = read_records(path, columns={"source": "question", "rationale": "reason", "target": "answer"})
    assert report.format == "kocot"
    assert report.records[0].turns[1].content == "3+2=5\n따라서 정답은 5입니다."
    assert report.records[0].source == "mwp"
    with pytest.raises(DataError, match=r"mwp.jsonl:line 1: field 'why'"):
        read_records(path, columns={"source": "question", "rationale": "why", "target": "answer"})


def test_undetectable_format_names_fields(tmp_path):
    with pytest.raises(LimacotInputError, match=r"cannot tell the data format.*\['a', 'b'\]"):
        read_records(write_jsonl(tmp_path / "x.jsonl", [{"a": 1, "b": 2}]))


def test_csv_tsv_json_parquet(tmp_path):
    (tmp_path / "a.csv").write_text("instruction,input,output\r\n\"Say hi, please\",,hi\r\n", encoding="utf-8")
    (tmp_path / "a.tsv").write_text("source\trationale\ttarget\n질문\t이유\t답\n", encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps(LIMA_ROWS[:2]), encoding="utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist([{"instruction": "q", "output": "a"}]), tmp_path / "a.parquet")
    assert read_records(tmp_path / "a.csv").records[0].turns[0].content == "Say hi, please"
    assert read_records(tmp_path / "a.tsv").records[0].turns[1].content == "이유\n따라서 정답은 답입니다."
    assert len(read_records(tmp_path / "a.json").records) == 2
    assert read_records(tmp_path / "a.parquet").format == "alpaca"


def test_hf_local_dataset_directory(tmp_path):
    import datasets

    datasets.Dataset.from_list(LIMA_ROWS[:2]).save_to_disk(str(tmp_path / "saved"))
    report = read_records(f"hf:{tmp_path / 'saved'}")
    assert len(report.records) == 2
    data_dir = tmp_path / "files"
    data_dir.mkdir()
    write_jsonl(data_dir / "train.jsonl", LIMA_ROWS)
    report = read_records(f"hf:{data_dir}:train")
    assert len(report.records) == 3 and report.trimmed["trailing_user_turn"] == 1
    with pytest.raises(LimacotInputError, match="could not load|no split"):
        read_records(f"hf:{data_dir}:validation")


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    body = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in LIMA_ROWS[:2]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    assert len(read_records(path).records) == 2
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfinstruction,output\r\nq,a\r\n")
    assert read_records(csv_path).format == "alpaca"


GOOD = json.dumps(LIMA_ROWS[0])
GOOD_MESSAGES = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
# (name, the bad line placed between two good ones, expected field, reason); the bad line is always line 2
BAD_CASES = [
    ("truncated_json", '{"conversations": ["q", "a"', None, "bad_json"),
    ("not_an_object", '["q", "a"]', None, "wrong_type"),
    ("wrong_type_list", '{"conversations": "q a"}', "conversations", "wrong_type"),
    ("wrong_type_turn", '{"conversations": ["q", 7]}', "conversations[1]", "wrong_type"),
    ("empty_turn", '{"conversations": ["q", "  "]}', "conversations[1]", "empty_turn"),
    ("too_few_turns", '{"conversations": ["q"]}', "conversations", "too_few_turns"),
    ("missing_field", '{"messages": [{"role": "user"}]}', "messages[0].content", "missing_field"),
    ("role_order", '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}',
     "messages[0].role", "wrong_role_order"),
    ("bad_role", '{"messages": [{"role": "bot", "content": "a"}, {"role": "user", "content": "q"}]}',
     "messages[0].role", "bad_role"),
]


@pytest.mark.parametrize("name, bad_line, field, reason", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_records_name_file_line_field(tmp_path, name, bad_line, field, reason):
    good = GOOD_MESSAGES if "messages" in bad_line else GOOD
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join([good, bad_line, good]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_records(path)
    err = info.value
    assert (err.location, err.field, err.reason) == ("line 2", field, reason)
    assert str(err).startswith(f"{path}:line 2: ") and "expected" in str(err)
    report = read_records(path, skip_bad=True)
    assert report.skipped == {reason: 1}
    assert len(report.records) == 2 and report.errors == [str(err)]


def test_invalid_utf8_names_line_and_column(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes((GOOD + "\n").encode() + '{"conversations": ["caf\xe9", "a"]}\n'.encode("latin-1")
                     + (GOOD + "\n").encode())
    with pytest.raises(DataError, match=r"latin1.jsonl:line 2: expected UTF-8 text, got byte 0xe9 at column 24"):
        read_records(path)
    report = read_records(path, skip_bad=True)
    assert report.skipped == {"invalid_utf8": 1} and len(report.records) == 2


def test_broken_json_array_and_csv_rows(tmp_path):
    (tmp_path / "a.json").write_text('[{"conversations": ["q", "a"]},\n {"conv', encoding="utf-8")
    with pytest.raises(DataError, match=r"a.json:line 2: expected a JSON array"):
        read_records(tmp_path / "a.json", skip_bad=True)
    (tmp_path / "b.csv").write_text("instruction,output\nq,a\nonly-one\nq2,a2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"b.csv:row 2 \(line 3\): expected 2 columns as in the header, got 1"):
        read_records(tmp_path / "b.csv")
    assert read_records(tmp_path / "b.csv", skip_bad=True).skipped == {"wrong_column_count": 1}


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(LimacotInputError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(LimacotInputError, match="unsupported file type"):
        read_records(tmp_path / "x.txt")


# ---------------------------------------------------------------- include / exclude filters

FILTER_ROWS = [
    {"conversations": ["q1", "a1"], "source": "stackexchange", "turns": 2},
    {"conversations": ["q2", "a2", "q2b", "a2b"], "source": "multi_turn", "turns": 4},
    {"conversations": ["q3", "a3"], "source": "wikihow", "turns": 2},
    {"conversations": ["q4", "a4"], "turns": 2},  # no source field
    {"conversations": ["q5", "a5"], "source": None, "turns": 2},  # null counts as missing
]


def test_include_keeps_listed_values_and_counts_the_rest(tmp_path):
    path = write_jsonl(tmp_path / "lima.jsonl", FILTER_ROWS)
    report = read_records(path, include={"source": ["stackexchange", "wikihow", "stackexchnage"]})
    assert [r.turns[0].content for r in report.records] == ["q1", "q3"]
    assert report.locations == ["line 1", "line 3"]
    assert report.filtered == {"source not in include": 1, "source missing": 2}
    assert report.filter_seen == {"source": {"stackexchange": 1, "multi_turn": 1, "wikihow": 1}}
    assert report.filter_unmatched == {"include.source": ["stackexchnage"]}


def test_exclude_and_values_compared_as_strings(tmp_path):
    path = write_jsonl(tmp_path / "lima.jsonl", FILTER_ROWS)
    report = read_records(path, exclude={"turns": ["4", "6"]})
    assert [r.turns[0].content for r in report.records] == ["q1", "q3", "q4", "q5"]
    assert report.filtered == {"turns in exclude": 1}
    assert report.filter_unmatched == {"exclude.turns": ["6"]}
    unfiltered = read_records(path)
    assert len(unfiltered.records) == 5 and not unfiltered.filtered and unfiltered.locations[-1] == "line 5"


def test_filters_apply_after_the_column_mapping(tmp_path):
    rows = [{"question": "2+3?", "reason": "2+3=5", "answer": 5, "kind": "add"},
            {"question": "5-3?", "reason": "5-3=2", "answer": 2, "kind": "sub"}]
    path = write_jsonl(tmp_path / "mwp.jsonl", rows)
    report = read_records(path, columns={"source": "question", "rationale": "reason", "target": "answer",
                                         "category": "kind"}, include={"category": ["sub"]})
    assert [r.turns[0].content for r in report.records] == ["5-3?"]
    assert report.filtered == {"category not in include": 1}


def test_tsv_fields_are_verbatim_quotes_included(tmp_path):
    """A TSV has no quoting (KoBEST's BoolQ asks `"뷰티 인사이드"는 ...?`): quotes are text, while a
    CSV field may still be quoted to hold a comma."""
    (tmp_path / "q.tsv").write_text('source\ttarget\n"뷰티 인사이드"는 영화인가\t"예"\n', encoding="utf-8")
    record = read_records(tmp_path / "q.tsv", format="kocot", cot_style="answer-only").records[0]
    assert [t.content for t in record.turns] == ['"뷰티 인사이드"는 영화인가', '"예"']
