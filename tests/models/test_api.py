"""The OpenAI-compatible client's pieces that need no server: specs, the reply cache, token estimates
(the transport itself is tested against scripted and real servers in tests/judge and tests/generate)."""

from __future__ import annotations

import math

import pytest

from limacot.errors import LimacotInputError, register_secret
from limacot.models.api import (ReplyCache, chat_endpoint, estimate_request_tokens, estimate_tokens, is_api_spec,
                                parse_api_spec)


def test_api_specs_and_endpoints():
    assert is_api_spec("openai:gpt-4o") and not is_api_spec("hf:org/name") and not is_api_spec("answers.jsonl")
    assert parse_api_spec("openai:org/model@http://127.0.0.1:8000") == ("openai", "org/model", "http://127.0.0.1:8000")
    assert parse_api_spec("runs/x/final") == ("local", "runs/x/final", None)
    with pytest.raises(LimacotInputError, match="reference 'openai:': expected openai:MODEL"):
        parse_api_spec("openai:", "reference")
    assert chat_endpoint("http://h:1", "reference") == "http://h:1/v1/chat/completions"
    with pytest.raises(LimacotInputError, match="reference base URL: put no credentials"):
        chat_endpoint("http://u:p@h/v1", "reference")


def test_token_estimates_count_characters_and_hangul():
    assert estimate_tokens("What is the capital of France?") == math.ceil(30 / 4) == 8
    assert estimate_tokens("한국의 수도는?") == math.ceil(6 * 0.8 + 2 / 4) == 6
    assert estimate_tokens("") == 0
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    assert estimate_request_tokens(messages) == 3 + (4 + 3) + (4 + 1)


def test_reply_cache_keeps_finish_reasons_and_never_a_secret(tmp_path):
    secret = "plain-secret-value-123456"
    register_secret(secret)
    cache = ReplyCache(tmp_path / "cache.jsonl")
    cache.put("k1", f"echo {secret}", {"prompt_tokens": 3, "note": secret}, "length")
    cache.put("k2", "no reason", None)
    cache.close()
    text = (tmp_path / "cache.jsonl").read_text()
    assert secret not in text and '"finish_reason"' in text.splitlines()[0] and "finish_reason" not in text.splitlines()[1]
    again = ReplyCache(tmp_path / "cache.jsonl")
    assert again.get("k1") == {"key": "k1", "text": "echo ***", "usage": {"prompt_tokens": 3, "note": "***"},
                               "finish_reason": "length"}
    assert again.get("k2") == {"key": "k2", "text": "no reason", "usage": None} and len(again) == 2
