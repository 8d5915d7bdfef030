"""The fast backend returns what lm-eval's hf backend returns (tiny random LLaMA; fp32, bf16,
behind PEFT), refuses a model that does not read its cache, and logs where requests went.

Tolerances, fast vs hf per request: fp32 1e-4 absolute (float noise: the two paths sum the same
log-probs in a different order); bf16 0.05 + 1% of the value: bf16 keeps 8 significant bits and
lm-eval rounds each log-prob and their sum to bf16 (a sum near -500 is a multiple of 2 or 4).
Multiple-choice predictions (hence acc and acc_norm) must be identical in both."""

from __future__ import annotations

import logging
import random

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from limacot.eval.fastlm import FastHFLM, _resolve_pretrained, common_prefix_len, prefix_blocks

TOLERANCE = {torch.float32: {"abs": 1e-4, "rel": 1e-6}, torch.bfloat16: {"abs": 0.05, "rel": 1e-2}}

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


def _multiple_choice(seed: int = 0, docs: int = 8, choices: int = 4):
    """lm-eval's requests for `docs` multiple-choice docs (one per choice, the doc's context each)."""
    rng = random.Random(seed)
    requests = []
    for d in range(docs):
        ctx = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40)))
        for _ in range(choices):
            cont = " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
            requests.append(Instance("loglikelihood", {}, (ctx, cont), len(requests), ("t", d, 1)))
    return requests


def _predictions(answers, requests, choices: int = 4):
    """Per doc, what lm-eval's acc and acc_norm pick: argmax of ll and of ll / len(choice text)."""
    picks = []
    for start in range(0, len(requests), choices):
        lls = [answers[i][0] for i in range(start, start + choices)]
        lengths = [len(requests[i].args[1]) for i in range(start, start + choices)]
        picks.append((max(range(choices), key=lambda c: lls[c]), max(range(choices), key=lambda c: lls[c] / lengths[c])))
    return picks


class Adapter(torch.nn.Module):
    """A hand-written wrapper: its forward names `logits_to_keep` but ignores it (logits for every
    position come back), takes **kwargs and passes on only the keywords in `passes`."""

    def __init__(self, inner, passes=()):
        super().__init__()
        self.inner, self.config, self.passes = inner, inner.config, passes

    @property
    def device(self):
        return self.inner.device

    def tie_weights(self):
        pass

    def forward(self, input_ids=None, logits_to_keep=0, **kwargs):
        return self.inner(input_ids=input_ids, **{k: v for k, v in kwargs.items() if k in self.passes})


def _fastlm_records(caplog, level=logging.INFO):
    return [r for r in caplog.records if r.name == "limacot.eval.fastlm" and r.levelno == level]


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


def test_sliding_window_models_use_the_hf_path(tiny_model, tiny_tokenizer, caplog):
    tiny_model.config.sliding_window = 16
    tiny_model.config.use_sliding_window = True
    hf, fast = _both(tiny_model.eval(), tiny_tokenizer)
    requests = _requests(seed=1, docs=3)
    with caplog.at_level(logging.INFO, logger="limacot.eval.fastlm"):
        assert fast.loglikelihood(requests, disable_tqdm=True) == hf.loglikelihood(requests, disable_tqdm=True)
    assert fast.stats.contexts == 0 and fast.stats.refused == "sliding-window attention"
    assert len(_fastlm_records(caplog, logging.WARNING)) == 1
    assert [r.getMessage() for r in _fastlm_records(caplog)] == [
        f"limacot-fast loglikelihood: {len(requests)} requests, 0 scored on shared KV caches, "
        f"{len(requests)} on the hf path (sliding-window attention: {len(requests)})"]


@pytest.mark.parametrize("dtype, lora", [(torch.float32, True), (torch.bfloat16, False), (torch.bfloat16, True)])
def test_peft_and_bf16_models_score_as_hf(sharp_model, tiny_tokenizer, dtype, lora):
    """On the fast path (not refused), within TOLERANCE[dtype], identical acc/acc_norm picks."""
    from peft import LoraConfig, get_peft_model  # only this test needs peft

    model = sharp_model.to(dtype)
    if lora:  # random B (not zeros): the adapter changes every score
        config = LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        model = get_peft_model(model, config).eval()
    hf, fast = _both(model, tiny_tokenizer, batch_size=3, prefix_min_tokens=8, max_rows=3)
    if lora:  # read from the base model's forward, not guessed: the PEFT forward names neither
        assert fast._cache_kw == "cache" and fast._keeps_logits
    requests = _multiple_choice(seed=7)
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    got = fast.loglikelihood(requests, disable_tqdm=True)
    assert fast.stats.refused is None and fast.stats.contexts == 8 and fast.stats.fallback_requests == 0
    for (ll_hf, greedy_hf), (ll_fast, greedy_fast) in zip(expected, got):
        assert ll_fast == pytest.approx(ll_hf, **TOLERANCE[dtype]) and greedy_fast == greedy_hf
    assert _predictions(got, requests) == _predictions(expected, requests)


def _assert_refused_once(hf, fast, caplog, requests):
    """`fast` scores `requests` as `hf` does, all through HFLM, after exactly one warning."""
    with caplog.at_level(logging.INFO, logger="limacot.eval.fastlm"):
        got = fast.loglikelihood(requests, disable_tqdm=True) + fast.loglikelihood(requests[:3], disable_tqdm=True)
    expected = hf.loglikelihood(requests, disable_tqdm=True) + hf.loglikelihood(requests[:3], disable_tqdm=True)
    for (ll_hf, greedy_hf), (ll_fast, greedy_fast) in zip(expected, got):
        assert ll_fast == pytest.approx(ll_hf, **TOLERANCE[torch.float32]) and greedy_fast == greedy_hf
    assert fast.stats.contexts == 0 and fast.stats.fallback_reasons == {"failed the cache probe": len(got)}
    warnings = _fastlm_records(caplog, logging.WARNING)
    assert len(warnings) == 1 and "failed the cache probe" in warnings[0].getMessage()
    assert fast.stats.refused.startswith("failed the cache probe: ")


def test_a_wrapper_that_ignores_the_cache_is_refused(sharp_model, tiny_tokenizer, caplog):
    """It takes the cache in **kwargs and drops it, so no signature tells; the probe sees
    context-free scores."""
    hf, fast = _both(Adapter(sharp_model), tiny_tokenizer, batch_size=2)
    _assert_refused_once(hf, fast, caplog, _requests(seed=3, docs=4))


def test_a_wrapper_that_ignores_logits_to_keep_is_scored_right(sharp_model, tiny_tokenizer):
    """Logits for every position come back: the fast path reads them as such (not refused)."""
    adapter = Adapter(sharp_model, passes=("attention_mask", "position_ids", "cache", "use_cache"))
    hf, fast = _both(adapter, tiny_tokenizer, batch_size=3, prefix_min_tokens=8)
    requests = _requests(seed=6)
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    got = fast.loglikelihood(requests, disable_tqdm=True)
    assert fast._keeps_logits and fast.stats.refused is None and fast.stats.contexts > 0
    for (ll_hf, greedy_hf), (ll_fast, greedy_fast) in zip(expected, got):
        assert ll_fast == pytest.approx(ll_hf, **TOLERANCE[torch.float32]) and greedy_fast == greedy_hf


def test_a_wrong_cache_argument_name_is_refused(sharp_model, tiny_tokenizer, caplog):
    """transformers drops an unknown keyword into **kwargs without a word: a wrong guess is caught."""
    hf, fast = _both(sharp_model, tiny_tokenizer, batch_size=2)
    fast._cache_kw = "past_key_value"  # singular: not a name the model knows
    _assert_refused_once(hf, fast, caplog, _requests(seed=3, docs=4))


def test_one_summary_line_per_call_says_where_requests_went(sharp_model, tiny_tokenizer, caplog):
    _, fast = _both(sharp_model, tiny_tokenizer, max_length=48, batch_size=2)
    requests = _requests(seed=2, shared_words=60)
    texts = [Instance("loglikelihood_rolling", {}, (" ".join(WORDS * 3),), i) for i in range(2)]
    with caplog.at_level(logging.INFO, logger="limacot.eval.fastlm"):
        fast.loglikelihood(requests, disable_tqdm=True)
        fast.loglikelihood_rolling(texts, disable_tqdm=True)
    long, windows = fast.stats.fallback_reasons["longer than max_length"], fast.stats.fallback_reasons["rolling windows"]
    assert 0 < long < len(requests) and windows > len(texts)
    assert [r.getMessage() for r in _fastlm_records(caplog)] == [
        f"limacot-fast loglikelihood: {len(requests)} requests, {len(requests) - long} scored on shared KV caches, "
        f"{long} on the hf path (longer than max_length: {long})",
        f"limacot-fast loglikelihood_rolling: 2 requests in {windows} windows, 0 scored on shared KV caches, "
        f"{windows} on the hf path (rolling windows: {windows})"]
    assert not _fastlm_records(caplog, logging.WARNING)


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


def test_an_eval_says_once_how_many_requests_went_to_the_hf_path(caplog):
    from collections import Counter

    from limacot.eval.fastlm import FastStats
    from limacot.eval.harness import _say_fallbacks

    with caplog.at_level(logging.WARNING, logger="limacot.eval.harness"):
        _say_fallbacks(FastStats(continuations=5))  # nothing fell back: nothing to say
        _say_fallbacks(FastStats(continuations=5, fallback_requests=4,
                                 fallback_reasons=Counter({"rolling windows": 3, "longer than max_length": 1})))
    assert [r.getMessage() for r in caplog.records] == [
        "limacot-fast: 4 requests were scored on lm-eval's hf path (same scores, slower) (longer than max_length: 1, "
        "rolling windows: 3); 5 on shared KV caches"]
