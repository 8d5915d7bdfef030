"""The pairwise instruction a judge sees: one request, two answers, "which is better, or neither?".

In the spirit of LIMA's preference study (annotators and GPT-4 saw one prompt and two
responses and said which was better or that neither was significantly better), in our own
words, in English and Korean. The answers are called "Answer 1" / "Answer 2" by position;
which run is shown first is decided by the caller (every pair is judged in both orders).

    judge_messages("What is 2+2?", "4", "Five", lang="en")
    -> [{"role": "user", "content": "You are comparing two answers ...\\n\\n[Request]\\nWhat is 2+2?\\n\\n"
                                    "[Answer 1]\\n4\\n\\n[Answer 2]\\nFive\\n\\nReply with one JSON object ..."}]

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
