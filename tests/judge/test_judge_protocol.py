"""The pairwise protocol with a scripted judge: both orders, flips, counts, CI, cache, outputs."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from limacot.errors import LimacotInputError, register_secret
from limacot.judge.clients import JudgeReply
from limacot.judge.instructions import judge_messages, pick_lang
from limacot.judge.config import JudgeConfig
from limacot.judge.pairwise import dry_run, judge_pairwise
from limacot.judge.protocol import combine, preferred, summarize
from test_judge_support import ScriptedJudge, save_tiny_chat_model, write_generations

A = {"p1": "bad", "p2": "good", "p3": "good, short", "p4": "bad, short", "p5": "bad", "p6": "bad"}
B = {"p1": "good", "p2": "bad", "p3": "good, long", "p4": "bad, long", "p5": "good", "p6": "good"}


def content_judge(prompt: str, one: str, two: str) -> str:
    """Prefers the answer that says 'good'; garbles p5; always says '1' on p6 (position bias)."""
    if prompt == "Question p5?":
        return "I am not sure what you mean."
    if prompt == "Question p6?":
        return '{"verdict": "1"}'
    if ("good" in one) == ("good" in two):
        return '{"reason": "same", "verdict": "tie"}'
    return "Answer 1 is better." if "good" in one else '```json\n{"verdict": "2"}\n```'


@pytest.fixture()
def runs(tmp_path):
    return write_generations(tmp_path / "A", A), write_generations(tmp_path / "B", B)


def test_both_orders_flip_rule_and_counts(runs, tmp_path):
    a, b = runs
    judge = ScriptedJudge(content_judge)
    summary = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(judge="scripted"), judge=judge)
    assert judge.calls == 12  # 6 prompts x 2 orders
    run = summary["runs"][0]
    assert (run["win"], run["tie"], run["loss"], run["unparseable"], run["flipped"]) == (1, 3, 1, 1, 1)
    assert run["decided"] == 5 and run["b_equal_or_better"] == pytest.approx(4 / 5)
    lo, hi = run["ci95"]
    assert 0 <= lo <= 0.8 <= hi <= 1
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "J" / "records.jsonl").read_text().splitlines())}
    p1 = records["p1"]
    assert p1["outcome"] == "win" and p1["answer_a"] == "bad" and p1["answer_b"] == "good"
    assert p1["orders"]["ab"]["verdict"] == "2" and p1["orders"]["ba"]["verdict"] == "1"
    assert p1["orders"]["ab"]["prefers"] == p1["orders"]["ba"]["prefers"] == "b"
    assert p1["orders"]["ab"]["raw"] == '```json\n{"verdict": "2"}\n```'
    assert p1["orders"]["ba"]["raw"] == "Answer 1 is better."
    assert records["p6"]["outcome"] == "tie" and records["p6"]["flipped"]
    assert records["p5"]["outcome"] == "unparseable" and records["p5"]["orders"]["ab"]["parsed_by"] == "none"
    assert summary["calls"] == {"requests": 12, "made": 12, "from_cache": 0}
    assert summary["tokens"] == {"prompt_tokens": 120, "completion_tokens": 24}
    table = (tmp_path / "J" / "table.md").read_text()
    assert "| 1 | 6/6 |" in table and "Coverage:" not in table  # every prompt of A judged: no coverage line


def test_rerun_makes_no_calls_and_new_b_runs_only_theirs(runs, tmp_path):
    a, b = runs
    first = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(), judge=ScriptedJudge(content_judge))
    again = ScriptedJudge(content_judge)
    second = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(), judge=again)
    assert again.calls == 0 and second["calls"]["from_cache"] == 12
    assert second["runs"] == first["runs"]
    twin = write_generations(tmp_path / "B", B)  # the same answers under a second name: same requests
    c = write_generations(tmp_path / "C", {"p1": "good enough", "p2": "good"})
    third = ScriptedJudge(content_judge)
    both = judge_pairwise(a, [twin, c], tmp_path / "J", JudgeConfig(min_coverage=0), judge=third)
    assert third.calls == 3  # C's p1 is new in both orders; p2 (good vs good) is one request for both
    assert [r["b_run"] for r in both["runs"]] == ["B", "C"]
    assert both["runs"][1]["n"] == 2 and both["runs"][1]["win"] == 1 and both["runs"][1]["tie"] == 1
    table = (tmp_path / "J" / "table.md").read_text()
    assert "| B | 6 | 1 | 3 | 1 | 1 | 80.0% |" in table and "| C | 2 | 1 | 1 | 0 | 0 | 100.0% |" in table


def test_failure_keeps_finished_replies_and_writes_no_results(runs, tmp_path):
    a, b = runs
    with pytest.raises(RuntimeError, match="judge went away"):
        judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(), judge=ScriptedJudge(content_judge, fail_after=5))
    assert len((tmp_path / "J" / "judge-cache.jsonl").read_text().splitlines()) == 5
    assert not any((tmp_path / "J" / name).exists() for name in ("summary.json", "records.jsonl", "table.md",
                                                                 "preference.png"))
    resumed = ScriptedJudge(content_judge)
    summary = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(), judge=resumed)
    assert resumed.calls == 7 and summary["calls"] == {"requests": 12, "made": 7, "from_cache": 5}
    assert (tmp_path / "J" / "preference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class QuotingJudge(ScriptedJudge):
    """A judge whose replies and usage quote a secret, with token counts that are not numbers."""

    def __init__(self, secret: str):
        super().__init__(content_judge)
        self.secret = secret

    def complete_all(self, requests, on_reply, concurrency=4):
        for index, _ in enumerate(requests):
            self.calls += 1
            usage = {"prompt_tokens": f"many ({self.secret})", "completion_tokens": 2, "note": [self.secret]}
            on_reply(index, JudgeReply(f'{{"verdict": "tie", "reason": "{self.secret} said so"}}', usage))


def test_no_file_holds_a_registered_secret_a_judge_quotes(runs, tmp_path):
    secret = "quoted-SECRET-fedcba9876543210"
    register_secret(secret)
    a, b = runs
    summary = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(), judge=QuotingJudge(secret))
    assert summary["runs"][0]["tie"] == 6 and summary["tokens"] == {"prompt_tokens": 0, "completion_tokens": 24}
    for path in (tmp_path / "J").iterdir():
        text = path.read_bytes().decode("utf-8", "replace")
        assert secret not in text and secret[:14] not in text and secret[14:] not in text, path.name
    records = (tmp_path / "J" / "records.jsonl").read_text()
    assert '*** said so' in records and '"note": ["***"]' in records
    old = tmp_path / "old"  # a cache written before the secret was redacted is read without it
    old.mkdir()
    cached = [json.loads(line) for line in (tmp_path / "J" / "judge-cache.jsonl").read_text().splitlines()]
    (old / "judge-cache.jsonl").write_text("".join(json.dumps({**row, "text": row["text"].replace("***", secret)})
                                                   + "\n" for row in cached))
    again = judge_pairwise(a, [b], old, JudgeConfig(), judge=QuotingJudge(secret))
    assert again["calls"]["made"] == 0 and secret not in (old / "records.jsonl").read_text()


def test_combine_and_preferred_cover_the_table():
    assert preferred("ab", "1") == "a" and preferred("ab", "2") == "b"
    assert preferred("ba", "1") == "b" and preferred("ba", "tie") == "tie" and preferred("ba", None) is None
    assert [combine(x, y) for x, y in [("b", "b"), ("a", "a"), ("tie", "tie"), ("a", "b"), ("b", "tie"),
                                       ("tie", "a"), (None, "b"), ("a", None)]] == \
        ["win", "loss", "tie", "tie", "tie", "tie", "unparseable", "unparseable"]


def test_bootstrap_is_seeded_and_sensible():
    outcomes = ["win"] * 50 + ["tie"] * 30 + ["loss"] * 20
    first, second = summarize(outcomes, seed=3), summarize(outcomes, seed=3)
    assert first == second and first["b_equal_or_better"] == pytest.approx(0.8)
    lo, hi = first["ci95"]
    assert 0.70 < lo < 0.75 and 0.85 < hi < 0.90  # binomial sd 0.04: about 0.8 +- 0.078
    assert summarize(["win"] * 10)["ci95"] == [1.0, 1.0] and summarize([])["ci95"] is None
    assert summarize(["unparseable"])["b_equal_or_better"] is None


def test_instructions_pick_korean_for_hangul_and_keep_the_order():
    assert pick_lang("사과는 몇 개입니까?") == "ko" and pick_lang("How many apples?") == "en"
    assert pick_lang("사과", "en") == "en"
    ko = judge_messages("사과는 몇 개?", "세 개", "", lang="auto")[0]["content"]
    assert "[답변 1]\n세 개\n\n[답변 2]\n(빈 답변)" in ko and '"verdict"' in ko
    en = judge_messages("Q?", "first", "second", lang="en")[0]["content"]
    assert en.index("first") < en.index("second") and "neither" in en
    with pytest.raises(LimacotInputError):
        pick_lang("x", "fr")


def test_input_errors_name_the_problem(runs, tmp_path):
    a, b = runs
    other = write_generations(tmp_path / "X", {"zz": "answer"})
    with pytest.raises(LimacotInputError, match="share no prompt id"):
        judge_pairwise(a, [other], tmp_path / "J", JudgeConfig(), judge=ScriptedJudge(content_judge))
    clash = write_generations(tmp_path / "Y", {"p1": "good"}, prompts={"p1": "Another question"})
    with pytest.raises(LimacotInputError, match="different text"):
        judge_pairwise(a, [clash], tmp_path / "J", JudgeConfig(min_coverage=0), judge=ScriptedJudge(content_judge))
    with pytest.raises(LimacotInputError, match="no generations found"):
        judge_pairwise(tmp_path / "nowhere", [b], tmp_path / "J", JudgeConfig())
    with pytest.raises(ValidationError, match="concurrency"):
        JudgeConfig(concurrency=0)


def test_a_duplicate_id_is_an_input_error_naming_the_file_line_and_id(runs, tmp_path):
    a, _ = runs
    rows = [{"id": "p1", "prompt": "Question p1?", "answer": "first"}, {"id": "p2", "prompt": "Question p2?",
            "answer": "x"}, {"id": "p1", "prompt": "Question p1?", "answer": "second"}]
    twice = tmp_path / "twice.jsonl"
    twice.write_text(json.dumps(rows[0]) + "\n\n" + "".join(json.dumps(r) + "\n" for r in rows[1:]))
    with pytest.raises(LimacotInputError, match=r"twice.jsonl:line 4: field 'id': expected each prompt id once; "
                                                r"'p1' is also on line 1") as caught:
        judge_pairwise(a, [twice], tmp_path / "J", JudgeConfig(min_coverage=0), judge=ScriptedJudge(content_judge))
    assert caught.value.reason == "duplicate_id"
    numeric = tmp_path / "numeric.jsonl"  # 7 and "7" are the same prompt id
    numeric.write_text("".join(json.dumps({"id": pid, "prompt": "Q?", "answer": "x"}) + "\n" for pid in (7, "7")))
    with pytest.raises(LimacotInputError, match=r"numeric.jsonl:line 2: field 'id'.*'7' is also on line 1"):
        judge_pairwise(numeric, [a], tmp_path / "J", JudgeConfig(), judge=ScriptedJudge(content_judge))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"id": "p2", "prompt": "Q?", "answer": None}) + "\n")
    with pytest.raises(LimacotInputError, match=r"broken.jsonl:line 2: field 'answer': expected the answer's text"):
        judge_pairwise(a, [broken], tmp_path / "J", JudgeConfig(), judge=ScriptedJudge(content_judge))


def test_a_b_run_missing_prompts_of_a_is_refused_unless_asked_and_its_coverage_reported(runs, tmp_path):
    a, b = runs
    part = write_generations(tmp_path / "part", {**{p: B[p] for p in ("p1", "p2", "p3", "p4")}, "p9": "extra"})
    judge = ScriptedJudge(content_judge)
    with pytest.raises(LimacotInputError, match=r"part/generations.jsonl answers 4 of the 6 prompts of A \(66.7%; "
                                                r"missing ids: p5, p6\)\. Expected every prompt of A.*--min-coverage"):
        judge_pairwise(a, [b, part], tmp_path / "J", JudgeConfig(), judge=judge)
    with pytest.raises(LimacotInputError, match=r"answers 4 of the 6.*Expected at least 70.0% of A's prompts"):
        judge_pairwise(a, [b, part], tmp_path / "J", JudgeConfig(min_coverage=0.7), judge=judge)
    with pytest.raises(LimacotInputError, match="answers 4 of the 6"):
        dry_run(a, [part], JudgeConfig(judge="openai:gpt-4o"), token_counter="embedded")
    assert judge.calls == 0 and not (tmp_path / "J").exists()  # refused before any call
    summary = judge_pairwise(a, [b, part], tmp_path / "J", JudgeConfig(min_coverage=0.6), judge=judge)
    full, partial = summary["runs"]
    assert full["coverage"] == {"a_prompts": 6, "b_prompts": 6, "judged": 6, "missing": 0, "not_in_a": 0}
    assert partial["coverage"] == {"a_prompts": 6, "b_prompts": 5, "judged": 4, "missing": 2, "not_in_a": 1}
    assert partial["n"] == 4 and summary["min_coverage"] == 0.6
    table = (tmp_path / "J" / "table.md").read_text()
    assert "| 1 | 6/6 |" in table and "| 0 | 4/6 |" in table
    assert "Coverage: part: judged on 4 of A's 6 prompts (2 missing in part, 1 of its own not in A)" in table
    with pytest.raises(ValidationError, match="min_coverage"):
        JudgeConfig(min_coverage=1.5)


def test_dry_run_counts_calls_and_tokens_without_calling(runs, tmp_path):
    from limacot.judge.cache import request_key
    from limacot.judge.local import LocalJudge
    from limacot.models.loading import load_tokenizer

    a, b = runs
    model = save_tiny_chat_model(tmp_path / "tiny")
    config = JudgeConfig(judge=str(model))
    estimate = dry_run(a, [b], config, out=tmp_path / "J")
    assert (estimate["pairs"], estimate["requests"], estimate["cached"], estimate["calls_to_make"]) == (6, 12, 0, 12)
    tokenizer = load_tokenizer(str(model))
    texts = [judge_messages(f"Question {p}?", *answers, "auto")[0]["content"]
             for p in A for answers in ((A[p], B[p]), (B[p], A[p]))]
    expected = sum(3 + 4 + len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert estimate["input_tokens"] == estimate["input_tokens_all_requests"] == expected
    one = judge_messages("Question p1?", "bad", "good", "auto")
    assert estimate["max_output_tokens"] == 0 and not estimate["token_counter_is_estimate"]  # choice: no decoding
    key = request_key(LocalJudge(str(model)).identity(), one)  # pretend one request was answered before
    (tmp_path / "J").mkdir()
    (tmp_path / "J" / "judge-cache.jsonl").write_text(json.dumps({"key": key, "text": "tie"}) + "\n")
    assert dry_run(a, [b], config, out=tmp_path / "J")["calls_to_make"] == 11
    api = dry_run(a, [b], JudgeConfig(judge="openai:gpt-4o"), token_counter=str(model))
    assert api["calls_to_make"] == 12 and not api["token_counter_is_estimate"]
    assert api["max_output_tokens"] == 12 * 256 and api["input_tokens"] == expected
