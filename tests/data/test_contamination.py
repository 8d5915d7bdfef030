"""Decontamination in char mode beside word mode, and eval sets read from every eval file format."""

from __future__ import annotations

import json

import pytest
import yaml

from limacot.data.build import build_data
from limacot.data.config import DataBuildConfig
from limacot.data.contamination import decontaminate, letters, window_hashes
from limacot.data.records import Conversation, Turn
from limacot.errors import LimacotInputError
from limacot.io.yaml_config import load_config


def conv(question: str, answer: str) -> Conversation:
    return Conversation.from_turns([Turn("user", question), Turn("assistant", answer)], source="demo")


EVAL_LONG = ("The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden "
             "porch near the barn")
EVAL_KO_LONG = "철수는 아침마다 공원에서 강아지와 함께 산책을 하고 돌아와서 따뜻한 우유를 한 잔 마신 뒤 학교에 갑니다"
SHORT_KO = "지난주에 새로 산 청바지의 허리둘레가 너무 컸다"  # 7 words (< min_words 8), 20 characters without spaces


def test_the_short_item_is_short_in_words_and_long_enough_in_characters():
    assert len(SHORT_KO.split()) == 7 and len(letters(SHORT_KO)) == 20


def test_a_planted_eval_item_is_found_in_word_mode_and_in_char_mode():
    planted = conv("Tell me a story.", "Once, THE QUICK brown fox — jumps over the lazy dog, while the farmer "
                   "watches from the old porch!")
    planted_ko = conv("이야기를 해 줘.", "어제 " + " ".join(EVAL_KO_LONG.split()[1:16]) + " 그리고 끝.")
    clean = conv("Something else.", "Nothing to see here at all, only a plain answer about the weather.")
    eval_sets = {"en": [EVAL_LONG], "ko": [EVAL_KO_LONG]}
    for mode in ("word", "char"):
        report = decontaminate([planted, planted_ko, clean], eval_sets, mode=mode)
        assert report.contaminated_ids == [planted.id, planted_ko.id], mode
        assert report.eval_sets["en"].matched_ids == [planted.id], mode
        assert report.eval_sets["ko"].matched_ids == [planted_ko.id], mode
    char = decontaminate([planted], eval_sets, mode="char")
    assert char.eval_sets["en"].examples[planted.id] == letters("the quick brown fox jumps over the lazy dog while t")[:40]


def test_a_short_korean_item_is_found_by_char_mode_only():
    answer = conv("바지 이야기", "어제 일기: 지난주에 새로 산 청바지의 허리둘레가 너무 컸다. 그래서 벨트를 샀다.")
    word = decontaminate([answer], {"kobest": [SHORT_KO]}, mode="word")
    assert word.contaminated_ids == [] and word.eval_sets["kobest"].too_short == 1
    char = decontaminate([answer], {"kobest": [SHORT_KO]}, mode="char")
    assert char.contaminated_ids == [answer.id] and char.eval_sets["kobest"].too_short == 0
    assert char.eval_sets["kobest"].examples[answer.id] == letters(SHORT_KO)


def test_char_mode_ignores_korean_spacing_and_punctuation():
    respaced = conv("질문", "철수는 아침마다 공원에서 강아지와함께 산책을하고, 돌아와서 따뜻한 우유를 한잔 마신뒤 학교에 갑니다!")
    assert decontaminate([respaced], {"ko": [EVAL_KO_LONG]}, mode="word").contaminated_ids == []
    assert decontaminate([respaced], {"ko": [EVAL_KO_LONG]}, mode="char").contaminated_ids == [respaced.id]


def test_char_mode_needs_a_full_run_and_counts_too_short_texts():
    chars = letters(EVAL_LONG)
    near_miss = conv("Q?", chars[:39] + " and then it rained")
    exact_run = conv("Q?", "so " + chars[10:50] + " it was")
    report = decontaminate([near_miss, exact_run], {"en": [EVAL_LONG, "too short text", "tiny"]}, mode="char")
    assert report.contaminated_ids == [exact_run.id]
    assert (report.eval_sets["en"].n_texts, report.eval_sets["en"].too_short) == (3, 2)
    with pytest.raises(LimacotInputError, match="min_chars <= char_ngram"):
        decontaminate([], {}, mode="char", char_ngram=10, min_chars=20)
    with pytest.raises(LimacotInputError, match="unknown decontamination mode 'chars'"):
        decontaminate([], {}, mode="chars")


def test_window_hashes_are_equal_exactly_for_equal_windows():
    text = "abcabcab민수는민수"
    for size in (1, 3, 5):
        hashes = window_hashes(text, size)
        assert len(hashes) == len(text) - size + 1
        for i in range(len(hashes)):
            for j in range(len(hashes)):
                assert (hashes[i] == hashes[j]) == (text[i:i + size] == text[j:j + size])
    assert len(window_hashes("ab", 3)) == 0


# ---------------------------------------------------------------- eval files in every format

def write_eval_files(folder) -> dict[str, str]:
    """One small eval file per format, each holding one item that the training data quotes."""
    (folder / "gsm.jsonl").write_text(json.dumps({"question": EVAL_LONG, "answer": "#### 3"}) + "\n", encoding="utf-8")
    (folder / "kmmlu.json").write_text(json.dumps([{"question": "범죄 측정에 대한 설명으로 옳은 것은 무엇인가?",
                                                    "A": "참여 관찰 연구는 조사자의 주관적 편견이 개입할 수 있다", "answer": 1}],
                                                  ensure_ascii=False), encoding="utf-8")
    (folder / "haerae.csv").write_text("question,a,b,answer\n\"다음 글을 읽고, 글쓴이가 가장 강조하는 내용을 고르시오\",하나,둘,a\n",
                                       encoding="utf-8")
    (folder / "copa.tsv").write_text(f"ID\tsentence\tquestion\t1\t2\tAnswer\n1\t{SHORT_KO}\t결과\t잘랐다.\t샀다.\t2\n",
                                     encoding="utf-8")
    return {"gsm8k": "gsm.jsonl", "kmmlu": "kmmlu.json", "haerae": "haerae.csv", "kobest_copa": "copa.tsv"}


def test_eval_files_of_every_format_are_read_and_checked(tmp_path):
    quotes = [EVAL_LONG, "참여 관찰 연구는 조사자의 주관적 편견이 개입할 수 있다고 합니다",
              "다음 글을 읽고 글쓴이가 가장 강조하는 내용을 고르시오", SHORT_KO]
    rows = [{"conversations": [f"Question {i}?", f"Here it is: {quote}."]} for i, quote in enumerate(quotes)]
    rows.append({"conversations": ["Clean question?", "A clean answer with nothing borrowed."]})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                          encoding="utf-8")
    raw = {"sources": {"lima": {"path": "train.jsonl"}}, "variants": {"lima": {"mix": {"lima": "all"}}},
           "decontamination": {"eval_files": write_eval_files(tmp_path), "mode": "char", "remove": True}}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = build_data(load_config(tmp_path / "data.yaml", DataBuildConfig), tmp_path / "out")
    assert result.manifest["removed"]["contaminated"] == 4 and result.manifest["pools"] == {"lima": 1}
    card = (tmp_path / "out" / "card.md").read_text(encoding="utf-8")
    assert "40-character overlap (mode char" in card
    for name in ("gsm8k", "kmmlu", "haerae", "kobest_copa"):
        assert f"| {name} | " in card and " | 1 |" in card.split(f"| {name} | ")[1].splitlines()[0], name


def test_decontamination_settings_are_checked_when_the_config_loads(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"conversations": ["q", "a"]}) + "\n", encoding="utf-8")
    (tmp_path / "eval.jsonl").write_text(json.dumps({"text": "an eval text"}) + "\n", encoding="utf-8")
    base = {"sources": {"lima": {"path": "train.jsonl"}}, "variants": {"lima": {"mix": {"lima": "all"}}}}
    for case, decon, message in [
            ("chars", {"mode": "chars"}, r"decontamination.mode: expected 'word' or 'char' \(got 'chars'\)"),
            ("min", {"mode": "char", "char_ngram": 10}, r"decontamination: min_chars: expected at most char_ngram "
                                                        r"\(10\), got 20"),
            ("words", {"min_words": 20}, r"decontamination: min_words: expected at most ngram \(13\), got 20")]:
        (tmp_path / f"{case}.yaml").write_text(yaml.safe_dump({**base, "decontamination": {
            "eval_files": {"e": "eval.jsonl"}, **decon}}), encoding="utf-8")
        with pytest.raises(LimacotInputError, match=rf"{case}.yaml: {message}"):
            load_config(tmp_path / f"{case}.yaml", DataBuildConfig)
