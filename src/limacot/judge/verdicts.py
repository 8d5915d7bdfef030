"""Read a judge's reply: "1" (Answer 1 better), "2", "tie", or unparseable (None). Never a guess.

Order of evidence, strongest first:
1. a JSON object with a verdict-like key ("verdict", "winner", "better", "판정", ...), anywhere
   in the reply (code fences and text around it are fine); it alone decides;
2. explicit verdict phrases: "[[2]]", "Verdict: 1", "Final verdict: tie", "판정: 답변 2";
3. descriptive phrases: "Answer 2 is clearly better", "I prefer Response 1", "Neither answer is
   significantly better", "답변 1이 더 낫습니다", "어느 쪽도 뚜렷하게 낫지 않습니다".
A reply that is only "1", "2", "A", "B" or "tie" counts as explicit. Within a level, phrases that
disagree make the reply unparseable (`how="conflict"`); a level with no phrase defers to the next.

    parse_verdict('```json\\n{"reason": "more accurate", "verdict": "2"}\\n```')  -> Verdict("2", "json")
    parse_verdict("Answer 1 is better than Answer 2.")                          -> Verdict("1", "text")
    parse_verdict("답변 2가 더 낫지 않습니다.")                                   -> Verdict(None, "none")
    parse_verdict("Answer 1 is better. Verdict: 2")                              -> Verdict("2", "text")
    parse_verdict("Verdict: 1. Final verdict: 2")                                -> Verdict(None, "conflict")

Letters A/B (what MT-Bench-style judges often write) are read as positions 1/2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterator, Literal, Optional

Choice = Literal["1", "2", "tie"]

_KEYS = {"verdict", "final_verdict", "winner", "better", "better_answer", "preferred", "preference", "choice",
         "decision", "result", "판정", "결과", "승자", "선택", "결론"}
_WORDS: dict[str, Choice] = {
    "1": "1", "2": "2", "a": "1", "b": "2", "answer 1": "1", "answer 2": "2", "response 1": "1",
    "response 2": "2", "answer a": "1", "answer b": "2", "first": "1", "second": "2", "답변 1": "1",
    "답변 2": "2", "응답 1": "1", "응답 2": "2", "첫 번째": "1", "두 번째": "2", "tie": "tie", "draw": "tie",
    "neither": "tie", "equal": "tie", "equally good": "tie", "same": "tie", "none": "tie", "no preference": "tie",
    "both": "tie", "무승부": "tie", "동점": "tie", "비김": "tie", "비슷함": "tie", "동등": "tie", "없음": "tie",
}

_LABEL = r"(?:answer|response|assistant|output|답변|응답|대답)"
_POS = r"(1|2|(?-i:[AB]))(?![0-9A-Za-z])"
_ADV = r"(?:(?:clearly|significantly|slightly|much|far|somewhat|overall|definitely|noticeably)\s+)*"
_KO_ADV = r"(?:(?:훨씬|더|조금|약간|전반적으로|분명히|확실히|좀\s*더)\s*)*"
_NOT_NEG = r"(?!지\s*(?:않|못))"

_EXPLICIT = [
    re.compile(r"\[\[\s*(1|2|A|B|tie)\s*\]\]", re.I),
    re.compile(r"(?:final\s+)?(?:verdict|decision|judge?ment|winner|conclusion)\s*(?:is)?\s*[:=：-]?\s*[*\"'(\[]*\s*"
               rf"(?:{_LABEL}\s*)?(1|2|(?-i:[AB])|tie|neither|draw)\b", re.I),
    re.compile(r"(?:최종\s*)?(?:판정|결론|승자|평가\s*결과)\s*(?:은|는)?\s*[:：]\s*[*\"'(\[]*\s*(?:답변|응답)?\s*"
               r"(1|2|(?-i:[AB])|tie|무승부|동점|비김)", re.I),
]
_DESCRIPTIVE = [
    re.compile(rf"{_LABEL}\s*{_POS}\s*(?:is|was)\s+{_ADV}(?:the\s+)?(?:better|superior|preferable|preferred|"
               r"stronger|more helpful|winner)", re.I),
    re.compile(rf"\bi\s+(?:would\s+)?(?:prefer|choose|pick|select)\s+{_LABEL}\s*{_POS}", re.I),
    re.compile(rf"{_LABEL}\s*{_POS}\s*(?:이|가|은|는|쪽이)?\s*{_KO_ADV}(?:낫|좋|우수|뛰어나|적절|훌륭){_NOT_NEG}", re.I),
    re.compile(rf"{_LABEL}\s*{_POS}\s*(?:을|를)\s*(?:선택|선호|고릅|고르겠)", re.I),
]
_TIE = [
    re.compile(r"\bneither\b[^.\n]{0,40}?\b(?:is|was|are)\s+" + _ADV + r"(?:better|preferable|superior|stronger)",
               re.I),
    re.compile(r"\b(?:both|the two)\s+(?:answers|responses)\s+(?:are|seem|look)\s+(?:about\s+|roughly\s+)?"
               r"(?:equally|similarly|comparabl[ey]|equivalent|of (?:similar|equal) quality)", re.I),
    re.compile(r"\b(?:it'?s|it is|this is|call it)\s+a\s+tie\b|\bno\s+(?:clear\s+)?(?:winner|preference)\b"
               r"|\bequally\s+(?:good|bad|helpful|poor|strong|weak)\b", re.I),
    re.compile(r"어느\s*(?:쪽|답변|응답|것|한\s*쪽)(?:도|이)\s*(?:\S+\s*){0,2}?(?:낫|우수하|뛰어나|좋)지\s*(?:않|못)"),
    re.compile(r"(?:두|양쪽|2개의)\s*(?:답변|응답)\s*(?:모두|다|이|은)?\s*(?:\S+\s*){0,2}?(?:비슷|동등|대등|같은\s*수준)"
               r"|둘\s*다\s*(?:비슷|동등|대등)|무승부|우열을\s*가리기\s*(?:어렵|힘들)"),
]


@dataclass(frozen=True)
class Verdict:
    """`choice` is "1", "2", "tie" or None (unparseable); `how` says what decided it:
    "json", "text", "conflict" (phrases disagree) or "none" (nothing recognizable)."""

    choice: Optional[Choice]
    how: str


def parse_verdict(text: str) -> Verdict:
    """The judge's verdict in `text` (see the module docstring for what is recognized)."""
    text = text or ""
    found = _json_verdict(text)
    if found is not None:
        return found
    for level in (_explicit(text), _descriptive(text)):
        if len(level) == 1:
            return Verdict(level.pop(), "text")
        if len(level) > 1:
            return Verdict(None, "conflict")
    return Verdict(None, "none")


def _explicit(text: str) -> set[Choice]:
    bare = _word(text.strip().strip("*\"'`.[]() \n"))
    found = {bare} if bare and len(text.strip()) <= 20 else set()
    for pattern in _EXPLICIT:
        found |= {_word(m.group(1)) for m in pattern.finditer(text)} - {None}
    return found  # type: ignore[return-value]


def _descriptive(text: str) -> set[Choice]:
    found: set = {_word(m.group(1)) for p in _DESCRIPTIVE for m in p.finditer(text)} - {None}
    if any(p.search(text) for p in _TIE):
        found.add("tie")
    return found


def _word(value) -> Optional[Choice]:
    """A verdict value ("2", 2, "Answer 2", "B", "tie", "무승부") as a Choice, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return {1: "1", 2: "2"}.get(value)  # type: ignore[return-value]
    key = re.sub(r"\s+", " ", str(value).strip().strip("*\"'`.[]()").strip()).lower()
    return _WORDS.get(key)


def json_objects(text: str) -> Iterator[dict]:
    """Every JSON object embedded in a judge's reply, in order (prose around them is ignored)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            yield obj


def _json_verdict(text: str) -> Verdict | None:
    """The verdict of the first JSON object with a verdict-like key; None when there is none."""
    for obj in json_objects(text):
        for key, value in obj.items():
            if str(key).strip().lower() in _KEYS:
                choice = _word(value)
                if choice is None and isinstance(value, str):
                    inner = parse_verdict(value)  # "Answer 2 is better" as a value
                    choice = inner.choice
                return Verdict(choice, "json")
    return None
