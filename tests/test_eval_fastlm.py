"""The fast backend returns what lm-eval's hf backend returns (tiny random LLaMA, fp32)."""

from __future__ import annotations

import random

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from limacot.eval.fastlm import FastHFLM, _resolve_pretrained, common_prefix_len, prefix_blocks

WORDS = "hello world the quick brown fox 안녕하세요 오늘 날씨가 좋습니다 정답은 answer is 42 .".split()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def sharp_model(tiny_model):
    """The tiny LLaMA with larger weights, so logits (and attention) are far from uniform."""
    with torch.no_grad():
        for parameter in tiny_model.parameters():
            parameter.mul_(8)
    return tiny_model.eval()


def _requests(seed: int = 0, docs: int = 8, shared_words: int = 40):
    rng = random.Random(seed)
    shared = " ".join(rng.choice(WORDS) for _ in range(shared_words))
    pairs = []
    for d in range(docs):
        head = shared + " " if d % 2 == 0 else ""
        ctx = head + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 25)))
        for _ in range(rng.randint(1, 4)):
            pairs.append((ctx, " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))))
        pairs.append((ctx, " 42"))  # a one-token continuation too
    pairs.append(("", " hello world"))  # empty context: lm-eval scores it after the prefix token
    return [Instance("loglikelihood", {}, pair, i, ("t", i, 1)) for i, pair in enumerate(pairs)]


def _both(model, tokenizer, max_length=2048, **fast_kwargs):
    hf = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1, max_length=max_length)
    fast = FastHFLM(pretrained=model, tokenizer=tokenizer, max_length=max_length, **fast_kwargs)
    return hf, fast


@pytest.mark.parametrize("batch_size, prefix_min, cache_tokens", [(1, 8, 16384), (3, 8, 16384), (2, 0, 16384),
                                                                  (3, 8, 1)])
def test_loglikelihoods_equal_hf(sharp_model, tiny_tokenizer, batch_size, prefix_min, cache_tokens):
    hf, fast = _both(sharp_model, tiny_tokenizer, batch_size=batch_size, prefix_min_tokens=prefix_min, max_rows=3,
                     max_cache_tokens=cache_tokens)
    requests = _requests()
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    got = fast.loglikelihood(requests, disable_tqdm=True)
    assert len(got) == len(expected)
    for (ll_hf, greedy_hf), (ll_fast, greedy_fast) in zip(expected, got):
        assert ll_fast == pytest.approx(ll_hf, abs=1e-4, rel=1e-6)
        assert greedy_fast == greedy_hf
    stats = fast.stats
    assert stats.fallback_requests == 0 and stats.contexts == len({r.args[0] for r in requests})
    if prefix_min:
        assert stats.prefix_blocks >= 1 and stats.prefix_tokens_saved > 0
    else:
        assert stats.prefix_blocks == 0


def test_multiple_choice_argmax_equal_and_greedy_flags(tiny_model, tiny_tokenizer):
    hf, fast = _both(tiny_model.eval(), tiny_tokenizer, batch_size=2)
    requests = _requests(seed=5)
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    got = fast.loglikelihood(requests, disable_tqdm=True)
    assert max(abs(a[0] - b[0]) for a, b in zip(expected, got)) < 1e-4
    assert [a[1] for a in expected] == [b[1] for b in got]


def test_overlong_requests_fall_back_to_hf_truncation(sharp_model, tiny_tokenizer):
    hf, fast = _both(sharp_model, tiny_tokenizer, max_length=48, batch_size=2)
    requests = _requests(seed=2, shared_words=60)
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    got = fast.loglikelihood(requests, disable_tqdm=True)
    assert fast.stats.fallback_requests > 0 and fast.stats.contexts > 0
    for a, b in zip(expected, got):
        assert b[0] == pytest.approx(a[0], abs=1e-4, rel=1e-6) and a[1] == b[1]


def test_sliding_window_models_use_the_hf_path(tiny_model, tiny_tokenizer):
    tiny_model.config.sliding_window = 16
    tiny_model.config.use_sliding_window = True
    hf, fast = _both(tiny_model.eval(), tiny_tokenizer)
    requests = _requests(seed=1, docs=3)
    assert fast.loglikelihood(requests, disable_tqdm=True) == hf.loglikelihood(requests, disable_tqdm=True)
    assert fast.stats.contexts == 0


def test_progress_hook_counts_every_request(tiny_model, tiny_tokenizer):
    _, fast = _both(tiny_model.eval(), tiny_tokenizer)
    seen = []
    fast.on_progress = seen.append
    requests = _requests(seed=4, docs=4)
    fast.loglikelihood(requests, disable_tqdm=True)
    assert sum(seen) == len(requests)


def test_prefix_blocks():
    ctxs = [(1, 2, 3, 4, 9), (1, 2, 3, 4, 8), (7, 7)]
    assert prefix_blocks(ctxs, 2) == [(4, [0, 1]), (0, [2])]
    assert prefix_blocks(ctxs, 0) == [(0, [0]), (0, [1]), (0, [2])]
    # a shared prefix never swallows a whole context: each member keeps one token of its own
    assert prefix_blocks([(1, 2, 3), (1, 2, 3, 4)], 1) == [(2, [0, 1])]
    # a member that would cut the run's prefix by more than half starts a new run
    long = tuple(range(100))
    ctxs = [long + (1,), long + (2,), long[:20] + (5,), long[:20] + (6,)]
    assert prefix_blocks(ctxs, 8) == [(100, [0, 1]), (20, [2, 3])]


def test_common_prefix_len():
    assert common_prefix_len((1, 2, 3), (1, 2, 4), 10) == 2
    assert common_prefix_len((1, 2, 3), (1, 2, 3, 4), 10) == 3
    assert common_prefix_len((1, 2, 3), (1, 2, 3), 2) == 2
    assert common_prefix_len((5,), (6,), 10) == 0


def test_model_specs_resolve_for_plain_lm_eval():
    assert _resolve_pretrained("hf:org/name") == ("org/name", None)
    assert _resolve_pretrained("hf:org/name@v2") == ("org/name", "v2")
    assert _resolve_pretrained("EleutherAI/pythia-70m") == ("EleutherAI/pythia-70m", None)
