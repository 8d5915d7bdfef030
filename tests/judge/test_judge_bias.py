"""The LIMA-comparable table and the judge's biases, measured on scripted judges with known
biases: one that always answers "1", one that always prefers the longer answer, and a fair one
that prefers the better answer by a hidden quality unrelated to length."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from limacot.judge.bias import length_bias, length_x, position_bias
from limacot.judge.config import JudgeConfig
from limacot.judge.pairwise import judge_pairwise
from limacot.judge.protocol import preference_table, single_order
from test_judge_support import ScriptedJudge, write_generations

PROMPTS = 200


def balanced_runs(tmp_path, n: int = PROMPTS, seed: int = 7, b_longer: float = 0.5):
    """A and B answer n prompts, in pairs of prompts with the same two lengths (20-600
    characters, never equal): B's answer is the longer one in both prompts of the first
    `b_longer` share of the pairs, in one of the two in the rest (b_longer=0.5: the length
    ratios are symmetric). Each answer carries a hidden quality [q0]..[q9] drawn independently
    of its length."""
    rng = np.random.default_rng(seed)
    a, b = {}, {}
    both = round((2 * b_longer - 1) * n / 2) if b_longer > 0.5 else 0
    for i in range(0, n, 2):
        short, long = sorted(rng.choice(np.arange(20, 600), size=2, replace=False))
        for j, (len_a, len_b) in enumerate(((long, short), (short, long))):
            if i // 2 < both:
                len_a, len_b = short, long
            qa, qb = rng.integers(0, 10, size=2)
            a[f"p{i + j:03d}"], b[f"p{i + j:03d}"] = _answer(qa, len_a), _answer(qb, len_b)
    return write_generations(tmp_path / "A", a), write_generations(tmp_path / "B", b)


def _answer(quality: int, length: int) -> str:
    head = f"[q{quality}] "
    return head + "w" * (length - len(head))


def _quality(answer: str) -> int:
    return int(re.match(r"\[q(\d)\]", answer).group(1))


def first_judge(prompt, one, two):
    return '{"verdict": "1"}'


def longer_judge(prompt, one, two):
    return '{"verdict": "1"}' if len(one) > len(two) else '{"verdict": "2"}'


def noisy_length_judge(prompt, one, two):
    """Prefers the longer answer with probability expit(2 * log2 length ratio), decided by a hash
    of the prompt so both orders agree: logit P(B preferred) = 2 x, 50% at equal lengths."""
    ratio = np.log2((max(len(one), len(two)) + 1) / (min(len(one), len(two)) + 1))
    draw = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) / 16 ** 8
    longer_first = len(one) > len(two)
    prefer_longer = draw < 1 / (1 + np.exp(-2 * ratio))
    return '{"verdict": "%s"}' % ("1" if longer_first == prefer_longer else "2")


def fair_judge(prompt, one, two):
    q1, q2 = _quality(one), _quality(two)
    return '{"verdict": "tie"}' if q1 == q2 else '{"verdict": "%s"}' % ("1" if q1 > q2 else "2")


def judged(tmp_path, decide, name="J", b_longer=0.5, **settings):
    a, b = balanced_runs(tmp_path, b_longer=b_longer)
    config = JudgeConfig(resamples=settings.pop("resamples", 500), **settings)
    summary = judge_pairwise(a, [b], tmp_path / name, config, judge=ScriptedJudge(decide))
    records = [json.loads(line) for line in (tmp_path / name / "records.jsonl").read_text().splitlines()]
    return summary["runs"][0], records


def test_a_judge_that_always_answers_1(tmp_path):
    """Position bias 1.0, every prompt flips, both-orders "equal or better" 100%, but the
    single-order rate is the share of prompts whose drawn order showed B first: about half."""
    run, records = judged(tmp_path, first_judge)
    assert run["b_equal_or_better"] == 1.0 and run["flipped"] == PROMPTS
    assert run["flip_rate"] == 1.0 and run["flip_rate_ci95"] == [1.0, 1.0]
    assert run["b_win_half_tie"] == 0.5
    bias = run["position_bias"]
    assert (bias["share_first"], bias["ci95"], bias["decisive"], bias["prompts"]) == (1.0, [1.0, 1.0], 400, 200)
    single = run["single_order"]
    b_first = sum(r["single_order"] == "ba" for r in records)
    assert single["shown_first"] == {"a": PROMPTS - b_first, "b": b_first}
    assert (single["win"], single["tie"], single["loss"]) == (b_first, 0, PROMPTS - b_first)
    assert single["b_equal_or_better"] == pytest.approx(b_first / PROMPTS)
    assert 0.4 <= single["b_equal_or_better"] <= 0.6
    lo, hi = single["ci95"]
    assert lo < single["b_equal_or_better"] < hi and hi - lo < 0.2
    length = run["length_bias"]  # every prompt a tie: nothing for length to explain
    assert length["slope"] == pytest.approx(0, abs=1e-6) and length["p_value"] == pytest.approx(1)
    table = (tmp_path / "J" / "table.md").read_text()
    assert f"| B | {b_first} | 0 | {PROMPTS - b_first} | {100 * b_first / PROMPTS:.1f}% |" in table
    assert "| B | 100.0% | [100.0%, 100.0%] | 400 |" in table
    for chart in ("preference.png", "position-bias.png", "length-bias.png"):
        assert (tmp_path / "J" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_judge_that_prefers_the_longer_answer(tmp_path):
    """Consistent in both orders (no flips, no position bias) and decided by length alone: the
    fit finds a large positive slope, and at equal lengths the prediction is about 50%."""
    run, _ = judged(tmp_path, longer_judge)
    assert run["flipped"] == 0 and run["position_bias"]["share_first"] == pytest.approx(0.5)
    length = run["length_bias"]
    assert length["n"] == PROMPTS and length["raw_rate"] == 0.5  # B longer in half the prompts
    assert length["slope"] > 1 and length["p_value"] < 0.01 and length["slope_ci95"][0] > 0
    assert length["lc_rate"] == pytest.approx(0.5, abs=0.01)  # symmetric lengths: the curve crosses 50% at 1x
    lo, hi = length["lc_ci95"]
    assert lo <= length["lc_rate"] <= hi
    assert length["converged"] and length["note"] is None
    xs = [b[0] for b in length["bins"]]
    ys = [b[1] for b in length["bins"]]
    assert xs == sorted(xs) and ys[0] == 0.0 and ys[-1] == 1.0 and sum(b[2] for b in length["bins"]) == PROMPTS


def test_length_control_removes_what_length_earned(tmp_path):
    """A judge swayed by length (true logit 2 x, 50% at equal lengths) comparing a B that is
    longer in 3 of 4 prompts: the raw rate is well above 50%, the length-controlled one near it."""
    run, _ = judged(tmp_path, noisy_length_judge, b_longer=0.75)
    length = run["length_bias"]
    assert length["raw_rate"] > 0.62 and length["p_value"] < 0.01
    assert length["slope_ci95"][0] < 2 < length["slope_ci95"][1]
    lo, hi = length["lc_ci95"]
    assert lo < 0.5 < hi and length["lc_rate"] == pytest.approx(0.5, abs=0.1)
    assert length["raw_rate"] - length["lc_rate"] > 0.1


def test_a_fair_judge_shows_no_length_bias(tmp_path):
    """Preferring by a hidden quality unrelated to length: slope not significant, the
    length-controlled rate close to the raw one, position share near 50%."""
    run, records = judged(tmp_path, fair_judge)
    length = run["length_bias"]
    assert length["p_value"] > 0.05 and length["slope_ci95"][0] < 0 < length["slope_ci95"][1]
    assert length["lc_rate"] == pytest.approx(length["raw_rate"], abs=0.05)
    assert length["raw_rate"] == pytest.approx(run["b_win_half_tie"])
    assert run["flipped"] == 0 and run["position_bias"]["share_first"] == pytest.approx(0.5, abs=0.1)
    # consistent in both orders: the single-order table equals the both-orders one
    single = run["single_order"]
    assert (single["win"], single["tie"], single["loss"]) == (run["win"], run["tie"], run["loss"])
    expected_wins = sum(_quality(r["answer_b"]) > _quality(r["answer_a"]) for r in records)
    assert run["win"] == expected_wins


def test_single_order_is_seeded_per_prompt_and_stable_when_prompts_are_added():
    first = {pid: single_order(0, pid) for pid in (f"p{i}" for i in range(100))}
    more = {pid: single_order(0, pid) for pid in (f"p{i}" for i in range(300))}
    assert all(more[pid] == order for pid, order in first.items())
    assert 35 <= sum(order == "ab" for order in first.values()) <= 65
    other_seed = {pid: single_order(1, pid) for pid in first}
    assert other_seed != first and set(other_seed.values()) == {"ab", "ba"}


def test_the_seed_draws_the_orders_and_rereads_the_cache(tmp_path):
    run0, records0 = judged(tmp_path, first_judge, "J", cache=str(tmp_path / "cache.jsonl"))
    judge = ScriptedJudge(first_judge)
    a, b = tmp_path / "A", tmp_path / "B"
    summary = judge_pairwise(a, [b], tmp_path / "K", JudgeConfig(resamples=500, seed=5,
                                                                  cache=str(tmp_path / "cache.jsonl")), judge=judge)
    records5 = [json.loads(line) for line in (tmp_path / "K" / "records.jsonl").read_text().splitlines()]
    assert judge.calls == 0  # the single-order table is read from the verdicts already judged
    assert [r["single_order"] for r in records5] == [single_order(5, r["id"]) for r in records5]
    assert [r["single_order"] for r in records5] != [r["single_order"] for r in records0]
    b_first = sum(r["single_order"] == "ba" for r in records5)
    assert summary["runs"][0]["single_order"]["win"] == b_first


def _record(pid, ab, ba, answer_a="aa", answer_b="bb", order="ab"):
    """A record as `judged_record` writes it, from the two positional verdicts."""
    from limacot.judge.protocol import combine, preferred

    orders = {o: {"verdict": v, "prefers": preferred(o, v)} for o, v in (("ab", ab), ("ba", ba))}
    prefers = (orders["ab"]["prefers"], orders["ba"]["prefers"])
    return {"id": pid, "answer_a": answer_a, "answer_b": answer_b, "outcome": combine(*prefers),
            "flipped": set(prefers) == {"a", "b"}, "single_order": order, "orders": orders}


def test_position_bias_counts_every_decisive_verdict_and_resamples_prompts():
    records = [_record("p1", "1", "1"), _record("p2", "2", "1"), _record("p3", "tie", "1"),
               _record("p4", None, "2"), _record("p5", "tie", "tie")]
    bias = position_bias(records, resamples=200)
    # decisive: p1 two firsts, p2 second + first, p3 first, p4 second -> 4 of 6 first-shown
    assert (bias["first"], bias["decisive"], bias["prompts"]) == (4, 6, 4)
    assert bias["share_first"] == pytest.approx(4 / 6)
    assert 0 <= bias["ci95"][0] <= 4 / 6 <= bias["ci95"][1] <= 1
    assert position_bias([_record("p1", "tie", None)])["share_first"] is None


def test_preference_table_counts_single_order_half_ties_and_flips():
    records = [_record("p1", "2", "1", order="ab"),   # B better in both orders: win; single (ab) win
               _record("p2", "1", "1", order="ab"),   # flip: tie both orders; single ab says A
               _record("p3", "1", "1", order="ba"),   # flip; single ba says B
               _record("p4", "1", "2", order="ba"),   # A better in both: loss
               _record("p5", None, "2", order="ab")]  # unparseable both; single ab unreadable
    table = preference_table(records, resamples=200)
    single = table["single_order"]
    assert (single["win"], single["tie"], single["loss"], single["unparseable"]) == (2, 0, 2, 1)
    assert single["b_equal_or_better"] == 0.5 and single["shown_first"] == {"a": 3, "b": 2}
    assert table["b_win_half_tie"] == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    assert table["flip_rate"] == pytest.approx(2 / 4)


def test_length_x_is_the_log2_character_ratio_and_too_little_data_is_said():
    assert length_x("abc", "abcdefg") == pytest.approx(1.0)  # (7 + 1) / (3 + 1)
    assert length_x("  ab  ", "ab") == 0.0  # outer whitespace does not count
    assert length_x("", "x") == pytest.approx(1.0)
    few = length_bias([_record("p1", "2", "1"), _record("p2", "1", "2")])
    assert few["slope"] is None and few["note"] == "no fit: 2 decided prompts"
    same = length_bias([_record(f"p{i}", "2", "1") for i in range(5)])
    assert same["slope"] is None and "same ratio" in same["note"] and same["raw_rate"] == 1.0


def test_a_run_too_small_for_the_length_fit_says_so_in_the_table(tmp_path):
    a = write_generations(tmp_path / "A", {"p1": "short", "p2": "a much longer answer"})
    b = write_generations(tmp_path / "B", {"p1": "a much longer answer", "p2": "short"})
    summary = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(resamples=50), judge=ScriptedJudge(longer_judge))
    assert summary["runs"][0]["length_bias"]["slope"] is None
    table = (tmp_path / "J" / "table.md").read_text()
    assert "| B | 50.0% | [50.0%, 50.0%] | 4 | n/a | n/a | n/a | 50.0% | n/a | n/a |" in table
    assert "Length fit, B: no fit: 2 decided prompts." in table
