"""Final-answer extraction and scoring for the Chain-of-Thought math tasks (gsm8k, ko_gsm8k).

A generation gets two scores, as lm-eval's gsm8k reports two:

    exact_match_strict    the number right after the first answer marker ("The answer is",
                          "####", "정답은", "답:" ...) equals the gold; no marker -> wrong
    exact_match_flexible  the last number of the generation equals the gold

Between a marker and its number only spaces, a colon, a currency sign, quotes or "약" may stand.
Numbers are compared by value: commas, currency signs and trailing zeros do not matter.

    generation                                    strict   flexible
    "... 5 * 4 = 20. The answer is 29."           "29"     "29"
    "#### 1,234"                                  "1234"   "1234"
    "따라서 정답은 18입니다."                       "18"     "18"
    "정답: 약 -3.50도"                             "-3.5"   "-3.5"
    "그녀는 $16에서 $12를 뺀 $4를 벌게 됩니다."      None     "4"
    "The answer is unclear, but 12 apples remain" None     "12"
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
_MARKERS = r"(?:the (?:final )?answer is|answer:|####|정답은|정답\s?:|답은|답\s?:)"
_GAP = r"[ \t:：$₩*\"'“”(]*(?:약[ \t]*)?"
_MARKED = re.compile(_MARKERS + _GAP + "(" + NUMBER + ")", re.IGNORECASE)
_ANY_NUMBER = re.compile(NUMBER)
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\uff0d": "-"})


def normalize_number(text: str | None) -> str | None:
    """'1,234.50' -> '1234.5', '$-7' -> '-7', '18.' -> '18'; None when `text` is no number."""
    if text is None:
        return None
    cleaned = str(text).translate(_MINUS_SIGNS).replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def strict_answer(generation: str) -> str | None:
    """The normalized number after the first answer marker, or None (no marker with a number)."""
    marked = _MARKED.search(str(generation).translate(_MINUS_SIGNS))
    return normalize_number(marked.group(1)) if marked else None


def flexible_answer(generation: str) -> str | None:
    """The normalized last number of the generation, or None (no number)."""
    numbers = _ANY_NUMBER.findall(str(generation).translate(_MINUS_SIGNS))
    return normalize_number(numbers[-1]) if numbers else None


def gsm8k_gold(doc: dict) -> str | None:
    """GSM8K's gold number: what follows '####' in the reference solution."""
    return normalize_number(str(doc["answer"]).split("####")[-1])


def score_generation(generation: str, gold: str | None) -> dict[str, float]:
    """{"exact_match_strict": 0|1, "exact_match_flexible": 0|1} of one generation (see module docstring)."""
    gold = normalize_number(gold)
    strict, flexible = strict_answer(generation), flexible_answer(generation)
    return {"exact_match_strict": float(gold is not None and strict == gold),
            "exact_match_flexible": float(gold is not None and flexible == gold)}


def gsm8k_process_results(doc: dict, results: list[str]) -> dict:
    """lm-eval `process_results` hook: strict and flexible exact match against the '####' gold."""
    return score_generation(results[0], gsm8k_gold(doc))


def ko_gsm8k_process_results(doc: dict, results: list[str]) -> dict:
    """Same for Ko-GSM8K, whose docs carry the gold number itself (`answer_s` -> `answer`)."""
    return score_generation(results[0], doc["answer"])
