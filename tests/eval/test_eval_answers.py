"""Final-answer extraction for the CoT math tasks: the strict score (the number after an answer
marker) and the flexible one (the last number), with markers, commas, units, Korean particles
and negative numbers."""

from __future__ import annotations

import pytest

from limacot.eval.answers import flexible_answer, gsm8k_gold, gsm8k_process_results, ko_gsm8k_process_results, \
    normalize_number, score_generation, strict_answer

CASES = [  # (generation, strict, flexible)
    ("So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.", "29", "29"),
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18", "18"),
    ("The answer is $1,234.", "1234", "1234"),
    ("The answer is 1,234,567 dollars.", "1234567", "1234567"),
    ("The answer is -5.", "-5", "-5"),
    ("The temperature drops by 8, so it is \u22123 degrees. The answer is \u22123.", "-3", "-3"),
    ("The answer is 2.50.", "2.5", "2.5"),
    ("The answer is 0.75 of the cake", "0.75", "0.75"),
    ("The final answer is: 12", "12", "12"),
    ("따라서 정답은 18입니다.", "18", "18"),
    ("하루에 16 - 3 - 4 = 9개를 팝니다. 9 * 2 = 18달러입니다. 따라서 정답은 18달러입니다.", "18", "18"),
    ("정답은 1,200원입니다", "1200", "1200"),
    ("정답: 약 -3.50도", "-3.5", "-3.5"),
    ("답은 42개예요.", "42", "42"),
    ("모두 3 + 4 = 7개이므로 답: 7", "7", "7"),
    # no marker followed by a number: strict finds nothing, flexible takes the last number
    ("그녀는 $16에서 $12를 뺀 $4를 벌게 됩니다.", None, "4"),
    ("Janet sells 16 - 3 - 4 = 9 duck eggs a day, making 9 * 2 = 18 dollars.", None, "18"),
    ("The answer is unclear, but 12 apples remain", None, "12"),
    ("no number at all", None, None),
    # a marker, then more numbers: strict keeps the marked one, flexible the last
    ("따라서 정답은 18입니다. 검산: 9 * 2 = 18, 16 - 7 = 9", "18", "9"),
]


@pytest.mark.parametrize("text, strict, flexible", CASES)
def test_strict_and_flexible_extraction(text, strict, flexible):
    assert strict_answer(text) == strict
    assert flexible_answer(text) == flexible


def test_the_first_marker_wins_over_later_numbers():
    assert strict_answer("The answer is 6.\n\nQ: There are 3 cars and 2 more arrive") == "6"


@pytest.mark.parametrize("raw, expected", [("1,234.50", "1234.5"), ("$-7", "-7"), ("18.", "18"), ("18.00", "18"),
                                           ("-0", "0"), ("abc", None), (None, None), ("  42 ", "42")])
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_gold_and_process_results_report_both_metrics():
    doc = {"question": "q", "answer": "Janet sells 9 eggs.\n#### 1,018"}
    assert gsm8k_gold(doc) == "1018"
    assert gsm8k_process_results(doc, ["... The answer is 1018."]) == {"exact_match_strict": 1.0,
                                                                       "exact_match_flexible": 1.0}
    assert gsm8k_process_results(doc, ["... The answer is 1017."]) == {"exact_match_strict": 0.0,
                                                                       "exact_match_flexible": 0.0}
    assert gsm8k_process_results(doc, ["9 * 113 + 1 = 1,018"]) == {"exact_match_strict": 0.0,
                                                                  "exact_match_flexible": 1.0}
    assert ko_gsm8k_process_results({"answer": "18"}, ["따라서 정답은 18.0입니다."]) == \
        {"exact_match_strict": 1.0, "exact_match_flexible": 1.0}
    assert score_generation("no number", "18") == {"exact_match_strict": 0.0, "exact_match_flexible": 0.0}
    assert score_generation("The answer is 5", None) == {"exact_match_strict": 0.0, "exact_match_flexible": 0.0}
