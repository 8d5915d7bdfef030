"""Read a grade from a judge's reply: a whole number 1..6, or unparseable (None). Never a guess.

Evidence, strongest first; the first level that finds any rating decides:
1. JSON: an object with a rating-like key ("rating", "score", "grade", "평점", "점수"), its value a
   number or a text holding one ("5", "5/6", "5점"); the first such object alone decides;
2. labelled: "Rating: 5", "**Rating:** 4", "Final rating = 6", "Score: 5/6", "Rating: 5 out of 6",
   "[[5]]", "평점: 5", "점수: 5점", "평점은 4점입니다", "최종 평점: 6", or a reply that is only a
   number ("5", "5점");
3. on the scale, unlabelled: "5/6", "5 out of 6", "6점 만점에 5점".
Every rating of the deciding level must be the same whole number from 1 to 6. A number outside
1..6 ("Rating: 7", "Rating: 0"), not whole ("Rating: 4.5") or on another scale ("Rating: 8/10",
"10점 만점에 8점") makes the reply unparseable (`how="out_of_range"`), and so do two different
ratings (`how="conflict"`: "Rating: 3 ... Rating: 5"); nothing recognizable is `how="none"`.

    parse_grade("Accurate and complete.\\nRating: 6")   -> Grade(6, "text")
    parse_grade("**평점:** 4")                           -> Grade(4, "text")
    parse_grade('{"reason": "ok", "rating": "5"}')       -> Grade(5, "json")
    parse_grade("Rating: 7")                             -> Grade(None, "out_of_range")
    parse_grade("Rating: 3. On reflection, Rating: 5")   -> Grade(None, "conflict")
    parse_grade("I cannot rate this.")                   -> Grade(None, "none")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from limacot.judge.verdicts import json_objects

SCALE = (1, 6)

_KEYS = {"rating", "score", "grade", "final_rating", "final_score", "helpfulness", "평점", "점수", "등급"}
_NUMBER = r"([-+]?\d+(?:[.,]\d+)?)(?!\d|[.,]\d)"  # a whole number, never its first digits
_OF = r"(?:\s*(?:/|out\s+of)\s*(\d+))?"  # an optional scale: "5/6", "5 out of 6"
_OPEN = r"[*_`\s\"'(\[]*"  # markdown and quotes between a label and its number
_LABELLED = [
    re.compile(r"\[\[\s*" + _NUMBER + _OF + r"\s*\]\]"),
    re.compile(r"(?<![A-Za-z])(?:final\s+|overall\s+)?(?:rating|score|grade)[*_`\s]*(?:\bis\b\s*[:：=]?|[:：=])"
               + _OPEN + _NUMBER + _OF, re.I),
    re.compile(r"(?:최종\s*)?(?:평점|점수|등급)[*_`\s]*(?:은|는|이|가)?\s*[:：=]?" + _OPEN + _NUMBER
               + r"(?!\s*점?\s*만점)" + _OF),
]
_ON_SCALE = [
    re.compile(r"(?<![\d.,/])" + _NUMBER + r"\s*/\s*(6)(?![\d.,/])"),  # only "/6": "1/2 cup" is no rating
    re.compile(r"(?<![\d.,])" + _NUMBER + r"\s+out\s+of\s+(\d+)(?![\d.,])", re.I),
    re.compile(r"(\d+)\s*점\s*만점(?:에서|에|\s*중)?\s*" + _NUMBER + r"\s*점"),
]
_BARE = re.compile(r"^[*_`\s\"'(\[]*" + _NUMBER + r"\s*(?:점)?" + _OF + r"[*_`\s\"')\].]*$")


@dataclass(frozen=True)
class Grade:
    """`value` is 1..6 or None (unparseable); `how` says what decided it: "json", "text",
    "out_of_range", "conflict" or "none" (see the module docstring)."""

    value: Optional[int]
    how: str


def parse_grade(text: str) -> Grade:
    """The grade in a judge's reply (see the module docstring for what is recognized)."""
    text = text or ""
    found = _json_grade(text)
    if found is not None:
        return found
    bare = _BARE.match(text.strip())
    labelled = [(bare.group(1), bare.group(2))] if bare else []
    labelled += [(m.group(1), m.group(2)) for p in _LABELLED for m in p.finditer(text)]
    on_scale = [(m.group(1), m.group(2)) for p in _ON_SCALE[:2] for m in p.finditer(text)]
    on_scale += [(m.group(2), m.group(1)) for m in _ON_SCALE[2].finditer(text)]
    for level in (labelled, on_scale):
        if level:
            return _decide([_whole(number, scale) for number, scale in level], "text")
    return Grade(None, "none")


def _decide(values: list[Optional[int]], how: str) -> Grade:
    """One grade when every value found is the same valid grade; else unparseable, saying why."""
    if any(value is None for value in values):
        return Grade(None, "out_of_range")
    if len(set(values)) > 1:
        return Grade(None, "conflict")
    return Grade(values[0], how)


def _whole(number: str, scale: Optional[str] = None) -> Optional[int]:
    """'5' -> 5; '5' on scale '6' -> 5; None for '4.5', '7', '0' or any scale other than 6."""
    if scale is not None and int(scale) != SCALE[1]:
        return None
    if not re.fullmatch(r"[-+]?\d+", number):
        return None
    value = int(number)
    return value if SCALE[0] <= value <= SCALE[1] else None


def _json_grade(text: str) -> Grade | None:
    """The grade of the first JSON object with a rating-like key; None when there is none."""
    for obj in json_objects(text):
        for key, value in obj.items():
            if str(key).strip().lower() in _KEYS:
                return _decide([_json_value(value)], "json")
    return None


def _json_value(value) -> Optional[int]:
    """A rating given as a JSON value: 5, "5", "5/6", "5점"; anything else (true, 4.5, "good") None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _whole(str(value))
    if isinstance(value, str):
        bare = _BARE.match(value.strip())
        return _whole(bare.group(1), bare.group(2)) if bare else None
    return None
