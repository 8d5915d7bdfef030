"""Final-answer extraction for the CoT math tasks: markers, commas, units, Korean particles,
negative numbers, and the fall-back to the last number."""

from __future__ import annotations

import pytest

from limacot.eval.answers import extract_answer, gsm8k_gold, gsm8k_process_results, is_correct, \
    ko_gsm8k_process_results, normalize_number

CASES = [
    ("So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.", "29"),
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
    ("The answer is $1,234.", "1234"),
    ("The answer is 1,234,567 dollars.", "1234567"),
    ("The answer is -5.", "-5"),
    ("The temperature drops by 8, so it is \u22123 degrees. The answer is \u22123.", "-3"),
    ("The answer is 2.50.", "2.5"),
    ("The answer is 0.75 of the cake", "0.75"),
    ("따라서 정답은 18입니다.", "18"),
    ("하루에 16 - 3 - 4 = 9개를 팝니다. 9 * 2 = 18달러입니다. 따라서 정답은 18달러입니다.", "18"),
    ("정답은 1,200원입니다", "1200"),
    ("정답: 약 -3.50도", "-3.5"),
    ("답은 42개예요.", "42"),
    ("모두 3 + 4 = 7개이므로 답: 7", "7"),
    # no marker followed by a number: the last number counts
    ("그녀는 $16에서 $12를 뺀 $4를 벌게 됩니다.", "4"),
    ("Janet sells 16 - 3 - 4 = 9 duck eggs a day, making 9 * 2 = 18 dollars.", "18"),
    ("The answer is unclear, but 12 apples remain", "12"),
    ("no number at all", None),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_the_first_marker_wins_over_later_numbers():
    assert extract_answer("The answer is 6.\n\nQ: There are 3 cars and 2 more arrive") == "6"


@pytest.mark.parametrize("raw, expected", [("1,234.50", "1234.5"), ("$-7", "-7"), ("18.", "18"), ("18.00", "18"),
                                           ("-0", "0"), ("abc", None), (None, None), ("  42 ", "42")])
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_gold_and_process_results():
    doc = {"question": "q", "answer": "Janet sells 9 eggs.\n#### 1,018"}
    assert gsm8k_gold(doc) == "1018"
    assert gsm8k_process_results(doc, ["... The answer is 1018."]) == {"exact_match": 1.0}
    assert gsm8k_process_results(doc, ["... The answer is 1017."]) == {"exact_match": 0.0}
    assert ko_gsm8k_process_results({"answer": "18"}, ["따라서 정답은 18.0입니다."]) == {"exact_match": 1.0}
    assert not is_correct("no number", "18")
