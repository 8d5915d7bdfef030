"""Can this model's loglikelihoods be scored on a key/value cache, and under which argument name?

The fast backend (`limacot.eval.fastlm`) passes the cache under the name the model's forward
takes (`limacot.models.forward_args.cache_keyword`; behind a PEFT wrapper, the base model's). A wrapper can hide that
signature, and a model drops an argument name it does not know without a word: every
continuation would then be scored without its context. So nothing is trusted by name:
`check_cache_scoring` scores a few short requests both ways before the first fast request:

    context: the phrase P once,  continuation: P again (a model reading its context predicts it)
    hf path, one full forward          -> ll_hf      fast path, on the cache -> ll_fast
    hf path, context cut to one token  -> ll_free    (what a model ignoring the cache would score)

    fast path used only if |ll_fast - ll_hf| <= PROBE_TOLERANCE and <= |ll_free - ll_hf| / 4
"""

from __future__ import annotations

import torch
from lm_eval.models.huggingface import HFLM

# Scored twice in a row: a model that reads its context predicts the repeat far better than one
# that sees a single token of it, so a lost context shows as a large difference.
PROBE_PHRASE = "Probe: 7 3 9 1 apples, 4 8 2 pears and 5 6 plums;"

# Allowed |ll_fast - ll_hf| per probe request: per_token * continuation tokens + rel * |ll_hf|.
# fp32: float noise (the backends agree within 1e-4 per request on real tasks). bf16/fp16 keep 8
# (11) significant bits, and lm-eval rounds each log-prob and their sum to that dtype, so a
# cached pass (different kernels, different summation order) moves each token by up to a few
# hundredths and the sum by about 1%.
PROBE_TOLERANCE = {"fp32": (1e-4, 1e-5), "half": (0.05, 1e-2)}


def check_cache_scoring(lm) -> str | None:
    """None when `lm`'s fast path scores the probe requests as HFLM does, else why not.

    `lm` is a `FastHFLM`. Two contexts share a prefix (run as its own pass: prefix sharing is on
    for the probe) and each has continuations of two lengths, so every step of the fast path is
    exercised: prefix cache, context pass on it, padded continuation rows on copies of it.
    """
    phrase = list(lm.tok_encode(PROBE_PHRASE, add_special_tokens=False))[:16]
    phrase = (phrase * 4)[:max(len(phrase), 4)]  # a tokenizer that packs the phrase into few tokens
    tokens, half = phrase + phrase, len(phrase)
    # no two requests join to the same tokens: lm-eval's hf path groups requests by context +
    # continuation[:-1] and can score such a pair wrong (cf. its issue #2984)
    requests = [(None, tokens[:half], tokens[half:]), (None, tokens[:half], tokens[half:half + 2]),
                (None, tokens[:half + 1], tokens[half + 1:-1]), (None, tokens[:half + 1], tokens[half + 1:half + 3])]
    context_free = [(None, ctx[-1:], cont) for _, ctx, cont in requests]
    expected = HFLM._loglikelihood_tokens(lm, requests + context_free, disable_tqdm=True,
                                          override_bs=2 * len(requests))
    reference = [ll for ll, _ in expected[:len(requests)]]
    free = [ll for ll, _ in expected[len(requests):]]
    try:
        answers = dict(lm._score_fast(requests, list(range(len(requests))), lambda n: None, prefix_min=1))
    except Exception as exc:  # noqa: BLE001 (whatever fails here rules the fast path out)
        return f"scoring on a cache failed: {type(exc).__name__}: {exc}"
    dtype = lm.mixed_precision_dtype or _compute_dtype(lm.model)
    per_token, rel = PROBE_TOLERANCE["fp32" if dtype in (torch.float32, torch.float64) else "half"]
    errors = [abs(answers[i][0] - ll) for i, ll in enumerate(reference)]
    allowed = [per_token * len(cont) + rel * abs(ll) for (_, _, cont), ll in zip(requests, reference)]
    context = max(abs(f - ll) for f, ll in zip(free, reference))
    if any(e > a for e, a in zip(errors, allowed)) or max(errors) > context / 4:
        return (f"probe scores on the cache are off by up to {max(errors):.3g} from a full forward's; "
                f"dropping the context moves them by up to {context:.3g}")
    return None


def _compute_dtype(model) -> torch.dtype:
    """The first floating-point parameter's dtype (a quantized model's norms are in its compute dtype)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


# --- what a model's forward takes ---------------------------------------------------------

def has_sliding_window(config) -> bool:
    """Whether any layer attends to a window only (or the config cannot tell): not served fast."""
    if config is None:
        return True
    layer_types = getattr(config, "layer_types", None) or []
    if any(t != "full_attention" for t in layer_types):
        return True
    if getattr(config, "use_sliding_window", True) is False:
        return False
    return getattr(config, "sliding_window", None) is not None
