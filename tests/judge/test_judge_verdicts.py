"""The verdict parser on real-looking judge replies (English and Korean): read or refuse, never guess."""

from __future__ import annotations

import pytest

from limacot.judge.verdicts import Verdict, parse_verdict

CASES = [
    # JSON, as asked for (with the fences and chatter that real judges add)
    ('{"reason": "Answer 2 explains the cause and gives a fix.", "verdict": "2"}', "2", "json"),
    ('```json\n{\n  "reason": "Both are accurate and equally clear.",\n  "verdict": "tie"\n}\n```', "tie", "json"),
    ('Here is my evaluation:\n{"reason": "답변 1이 더 정확합니다.", "verdict": "1"}', "1", "json"),
    ('{"verdict": 2, "reason": "more complete"}', "2", "json"),
    ('{"reason": "Response A is more helpful", "verdict": "A"}', "1", "json"),
    ('{"verdict": "Answer 2", "reason": "..."}', "2", "json"),
    ('{"판정": "무승부", "이유": "두 답변 모두 비슷한 수준입니다."}', "tie", "json"),
    ('{"reason": "Answer 1 is better in tone, but Answer 2 is correct.", "verdict": "2"}', "2", "json"),
    ('{"verdict": "maybe", "reason": "hard to say"}', None, "json"),
    # explicit verdict phrases
    ("After comparing both answers, Answer 2 covers every step.\n\nFinal verdict: [[2]]", "2", "text"),
    ("[[A]]", "1", "text"),
    ("Verdict: tie. Neither response is significantly better.", "tie", "text"),
    ("**Verdict:** Answer 1", "1", "text"),
    ("판정: 답변 2\n이유: 답변 2가 단계별로 풀이를 보여 줍니다.", "2", "text"),
    ("최종 판정: 무승부", "tie", "text"),
    ("2", "2", "text"),
    ("tie", "tie", "text"),
    ("Answer 1 is better. Verdict: 2", "2", "text"),  # the explicit verdict outranks a description
    # descriptive phrases
    ("Answer 1 is better than Answer 2 because it answers the question directly.", "1", "text"),
    ("Response B is clearly better: it is accurate and concise.", "2", "text"),
    ("I prefer Answer 2, since it gives a concrete example.", "2", "text"),
    ("Neither answer is significantly better than the other; both miss the point.", "tie", "text"),
    ("Both responses are equally helpful and accurate.", "tie", "text"),
    ("답변 1이 훨씬 더 낫습니다. 질문에 정확하게 답하고 있습니다.", "1", "text"),
    ("두 번째 답변보다 답변 2가 더 좋습니다.", "2", "text"),
    ("답변 1보다 답변 2가 더 우수합니다.", "2", "text"),
    ("어느 쪽도 뚜렷하게 낫지 않습니다. 두 답변 모두 비슷합니다.", "tie", "text"),
    ("두 답변은 거의 비슷한 수준입니다.", "tie", "text"),
    ("답변 2를 선택하겠습니다.", "2", "text"),
    # unparseable: nothing recognizable, negations, or disagreement -- recorded, never guessed
    ("Both answers discuss the topic at length.", None, "none"),
    ("답변 2가 더 좋지 않습니다.", None, "none"),
    ("Answer 1 is not better than Answer 2.", None, "none"),
    ("I cannot decide.", None, "none"),
    ("", None, "none"),
    ("Verdict: 1. Final verdict: 2", None, "conflict"),
    ("Answer 1 is better for beginners, while Answer 2 is better for experts.", None, "conflict"),
    ("답변 1이 더 낫습니다. 하지만 답변 2가 더 좋습니다.", None, "conflict"),
    ("How to tie a tie: cross the wide end over the narrow end.", None, "none"),
]


@pytest.mark.parametrize("text,choice,how", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_parse_verdict_table(text, choice, how):
    assert parse_verdict(text) == Verdict(choice, how)


def test_unparseable_is_never_a_guess():
    for text in ["The answer is 42.", "1. First, read the question. 2. Then answer it.",
                 "Answer 1: ...\nAnswer 2: ..."]:
        assert parse_verdict(text).choice is None, text
