"""The pairwise instruction a judge sees: one request, two answers, "which is better, or neither?".

In the spirit of LIMA's preference study (annotators and GPT-4 saw one prompt and two
responses and said which was better or that neither was significantly better), in our own
words, in English and Korean. The answers are called "Answer 1" / "Answer 2" by position;
which run is shown first is decided by the caller (every pair is judged in both orders).

    judge_messages("What is 2+2?", "4", "Five", lang="en")
    -> [{"role": "user", "content": "You are comparing two answers ...\\n\\n[Request]\\nWhat is 2+2?\\n\\n"
                                    "[Answer 1]\\n4\\n\\n[Answer 2]\\nFive\\n\\nReply with one JSON object ..."}]

The grading instruction (`grade_messages`, `limacot judge grade`) shows one answer and a 6-level
helpfulness rubric, in the spirit of LIMA's data-quantity ablation (a judge grading each answer
on a 1-6 scale), and asks for a last line "Rating: N" ("평점: N" in Korean).

Changing a word here changes every judge request, so cached verdicts of the old wording
are simply not reused (the cache key is the request itself).
"""

from __future__ import annotations

import re

from limacot.errors import LimacotInputError

LANGS = ("auto", "en", "ko")

_EN = """You are comparing two answers to the same request. Read the request and both answers, then decide \
which answer is better overall: which one helps the person more, is correct, stays on what was asked, and is \
clearly written. Do not prefer an answer just because it is longer, and do not let the order in which the \
answers are shown influence you.

If one answer is clearly better, choose it. If neither answer is significantly better than the other (both \
are good, both are poor, or each is better in a different way), say that neither is better.

[Request]
{prompt}

[Answer 1]
{first}

[Answer 2]
{second}

Reply with one JSON object and nothing else, in this form:
{{"reason": "<one or two sentences>", "verdict": "1" or "2" or "tie"}}
Use "1" if Answer 1 is better, "2" if Answer 2 is better, and "tie" if neither is significantly better."""

_KO = """같은 요청에 대한 두 답변을 비교해 주세요. 요청과 두 답변을 모두 읽은 뒤, 전체적으로 어느 답변이 더 나은지 \
판단하세요. 요청한 사람에게 더 도움이 되는지, 내용이 정확한지, 요청에서 벗어나지 않는지, 명확하게 쓰였는지를 봅니다. \
답변이 길다는 이유만으로 더 낫다고 보지 말고, 답변이 제시된 순서가 판단에 영향을 주지 않도록 하세요.

한 답변이 분명히 더 나으면 그 답변을 고르세요. 어느 답변도 다른 답변보다 뚜렷하게 낫지 않다면(둘 다 좋거나, 둘 다 \
부족하거나, 서로 다른 면에서 낫다면) 어느 쪽도 낫지 않다고 답하세요.

[요청]
{prompt}

[답변 1]
{first}

[답변 2]
{second}

다른 말 없이 다음 형식의 JSON 객체 하나로만 답하세요:
{{"reason": "<한두 문장>", "verdict": "1" 또는 "2" 또는 "tie"}}
답변 1이 더 나으면 "1", 답변 2가 더 나으면 "2", 어느 쪽도 뚜렷하게 낫지 않으면 "tie"를 쓰세요."""

INSTRUCTIONS = {"en": _EN, "ko": _KO}

_GRADE_EN = """You are grading how helpful one answer is to a request. Read the request and the answer, then \
rate the answer on this 6-level scale:

6 - Excellent: answers the request completely and accurately, clearly written and well organized; hard to improve.
5 - Very good: accurate and helpful, with only minor omissions or rough edges.
4 - Good: helpful and mostly correct, but misses some details, has small mistakes, or could be clearer.
3 - Fair: only partly helpful: it answers part of the request, or has noticeable mistakes.
2 - Poor: of little help: largely wrong, mostly beside the point, or very incomplete.
1 - Not helpful: wrong, irrelevant, empty, or harmful.

Judge what the answer says, not how long it is: an answer is not better for being longer.

[Request]
{prompt}

[Answer]
{answer}

Explain your assessment in one or two sentences. Then write your rating as the last line, in exactly this form:
Rating: N
where N is a whole number from 1 to 6."""

_GRADE_KO = """요청에 대한 답변 하나가 얼마나 도움이 되는지 평가해 주세요. 요청과 답변을 읽은 뒤, 다음 6단계 척도로 \
답변을 평가하세요.

6 - 매우 훌륭함: 요청에 완전하고 정확하게 답하며, 명확하고 잘 정리되어 있어 더 나아질 점이 거의 없습니다.
5 - 아주 좋음: 정확하고 도움이 되며, 사소하게 빠진 점이나 다듬을 점만 있습니다.
4 - 좋음: 도움이 되고 대체로 정확하지만, 일부 세부 사항이 빠졌거나 작은 오류가 있거나 더 명확할 수 있습니다.
3 - 보통: 부분적으로만 도움이 됩니다. 요청의 일부에만 답하거나 눈에 띄는 오류가 있습니다.
2 - 부족함: 거의 도움이 되지 않습니다. 상당 부분 틀렸거나, 요점에서 많이 벗어났거나, 매우 불완전합니다.
1 - 도움이 되지 않음: 틀렸거나, 요청과 무관하거나, 비어 있거나, 해로운 답변입니다.

길이가 아니라 내용으로 판단하세요. 답변이 길다는 이유만으로 더 좋은 것은 아닙니다.

[요청]
{prompt}

[답변]
{answer}

한두 문장으로 평가 이유를 설명한 뒤, 마지막 줄에 정확히 다음 형식으로 평점을 쓰세요:
평점: N
N은 1부터 6까지의 정수입니다."""

GRADE_INSTRUCTIONS = {"en": _GRADE_EN, "ko": _GRADE_KO}
_EMPTY = {"en": "(empty answer)", "ko": "(빈 답변)"}
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


def pick_lang(prompt: str, lang: str = "auto") -> str:
    """'ko' or 'en': `lang` itself, or with 'auto' Korean when the prompt contains Hangul."""
    if lang not in LANGS:
        raise LimacotInputError(f"judge language must be one of {', '.join(LANGS)}, got '{lang}'")
    if lang != "auto":
        return lang
    return "ko" if _HANGUL.search(prompt) else "en"


def judge_messages(prompt: str, first: str, second: str, lang: str = "auto") -> list[dict]:
    """The chat messages for one judgment: `first` is shown as Answer 1, `second` as Answer 2."""
    lang = pick_lang(prompt, lang)
    text = INSTRUCTIONS[lang].format(prompt=prompt.strip(), first=first.strip() or _EMPTY[lang],
                                     second=second.strip() or _EMPTY[lang])
    return [{"role": "user", "content": text}]


def grade_messages(prompt: str, answer: str, lang: str = "auto") -> list[dict]:
    """The chat messages for grading one answer on the 1-6 rubric (see the module docstring).

        grade_messages("What is 2+2?", "4", lang="en")
        -> [{"role": "user", "content": "You are grading how helpful ...[Request]\\nWhat is 2+2?\\n\\n"
                                        "[Answer]\\n4\\n\\nExplain ...\\nRating: N\\n..."}]
    """
    lang = pick_lang(prompt, lang)
    text = GRADE_INSTRUCTIONS[lang].format(prompt=prompt.strip(), answer=answer.strip() or _EMPTY[lang])
    return [{"role": "user", "content": text}]
