"""Final-answer extraction for Chain-of-Thought math tasks (gsm8k, ko_gsm8k).

A generation is scored by the number after the first answer marker ("The answer is",
"####", "정답은", "답:" ...), or, when no marker is followed by a number, by the last number in
the text. Numbers are compared by value: commas, currency signs and trailing zeros do not
matter.

    "... 5 * 4 = 20. The answer is 29."        -> "29"
    "#### 1,234"                               -> "1234"
    "따라서 정답은 18입니다."                    -> "18"
    "정답: 약 -3.50도"                          -> "-3.5"
    "그녀는 $16에서 $12를 뺀 $4를 벌게 됩니다."   -> "4"      (no marker: last number)
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
_MARKERS = r"(?:the answer is|answer:|####|정답은|정답:|정답 :|답은|답:)"
_MARKED = re.compile(_MARKERS + r"[^\d\n-]{0,24}?(" + NUMBER + r")", re.IGNORECASE)
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


def extract_answer(generation: str) -> str | None:
    """The normalized final number of a CoT generation (see module docstring), or None."""
    text = generation.translate(_MINUS_SIGNS)
    marked = _MARKED.search(text)
    if marked:
        return normalize_number(marked.group(1))
    numbers = _ANY_NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


def gsm8k_gold(doc: dict) -> str | None:
    """GSM8K's gold number: what follows '####' in the reference solution."""
    return normalize_number(str(doc["answer"]).split("####")[-1])


def is_correct(generation: str, gold: str | None) -> bool:
    predicted = extract_answer(generation)
    return predicted is not None and predicted == normalize_number(gold)


def gsm8k_process_results(doc: dict, results: list[str]) -> dict:
    """lm-eval `process_results` hook: exact match of the extracted number with the gold."""
    return {"exact_match": float(is_correct(results[0], gsm8k_gold(doc)))}


def ko_gsm8k_process_results(doc: dict, results: list[str]) -> dict:
    """Same for Ko-GSM8K, whose docs carry the gold number itself (`answer_s` -> `answer`)."""
    return {"exact_match": float(is_correct(results[0], doc["answer"]))}
