"""A local model as judge: constrained choice (default) and free generation."""

from __future__ import annotations

import json

import pytest

from limacot.judge.clients import HttpOptions
from limacot.judge.judges import make_judge
from limacot.judge.local import OPTIONS, PREFIX, LocalJudge, _common_prefix, _option_logprobs
from limacot.judge.pairwise import JudgeConfig, judge_pairwise
from limacot.judge.verdicts import parse_verdict
from test_judge_support import save_tiny_chat_model, save_verdict_model, write_generations


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_chat_model(tmp_path_factory.mktemp("judge") / "tiny", seed=4)


def reference_logprob(model, ids, start, end) -> float:
    """The same sum, one unpadded sequence at a time, all logits: what the batched version must equal."""
    import torch

    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
    return float(sum(logprobs[j - 1, ids[j]] for j in range(start, end)))


def test_batched_option_scores_equal_one_by_one(tiny_dir):
    """Prompts of different lengths (left padding), options of different lengths (right padding),
    the prompt's KV cache shared by the options: every score equals the plain full forward pass."""
    from limacot.models.loading import load_model, load_tokenizer

    model, tokenizer = load_model(str(tiny_dir)), load_tokenizer(str(tiny_dir))
    texts = ["Short prompt " + PREFIX, "A much longer prompt with more words in it, 사과 3개 " + PREFIX]
    prefixes, suffixes, alone = [], [], []
    for text in texts:
        ids = [tokenizer(text + option + '"', add_special_tokens=False)["input_ids"] for option in OPTIONS]
        shared = _common_prefix(ids)
        assert 0 < shared < min(len(row) for row in ids) and len({len(row) for row in ids}) > 1
        prefixes.append(ids[0][:shared])
        suffixes.append([row[shared:] for row in ids])
        alone.append([reference_logprob(model, row, shared, len(row)) for row in ids])
    batched = _option_logprobs(model, prefixes, suffixes, tokenizer)
    assert batched[0] == pytest.approx(alone[0], abs=1e-4) and batched[1] == pytest.approx(alone[1], abs=1e-4)
    assert _common_prefix([[1, 2, 3], [1, 2, 4], [1, 5]]) == 1


def test_choice_mode_always_gives_a_readable_verdict_with_its_logprobs(tiny_dir, tmp_path):
    judge = make_judge(str(tiny_dir))
    assert isinstance(judge, LocalJudge) and judge.identity()["mode"] == "choice"
    prompts = {"p1": "What is 2+2?", "p2": "사과 3개와 2개는 몇 개?", "p3": "Hello"}
    a = write_generations(tmp_path / "A", {"p1": "4", "p2": "5개", "p3": "Hi!"}, prompts)
    b = write_generations(tmp_path / "B", {"p1": "Five", "p2": "다섯 개입니다.", "p3": "Hello there."}, prompts)
    summary = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(judge=str(tiny_dir), concurrency=2))
    run = summary["runs"][0]
    assert run["n"] == 3 and run["unparseable"] == 0 and run["decided"] == 3 and run["ci95"] is not None
    for line in (tmp_path / "J" / "records.jsonl").read_text().splitlines():
        for order in json.loads(line)["orders"].values():
            scores = order["usage"]["choice_logprobs"]
            assert set(scores) == set(OPTIONS) and order["verdict"] == max(scores, key=scores.get)
            assert parse_verdict(order["raw"]).how == "json"
    assert summary["calls"]["made"] == 6


def test_generate_mode_reads_free_text(tmp_path):
    judge_dir = save_verdict_model(tmp_path / "judge", "Verdict: 2")
    judge = make_judge(str(judge_dir), HttpOptions(json_mode="off", max_tokens=12))
    assert judge.identity()["mode"] == "generate" and judge.identity() != make_judge(str(judge_dir)).identity()
    replies = {}
    judge.complete_all([[{"role": "user", "content": "Which is better?"}]] * 3,
                       lambda i, reply: replies.__setitem__(i, reply.text), concurrency=2)
    assert replies == {0: "Verdict: 2", 1: "Verdict: 2", 2: "Verdict: 2"}
