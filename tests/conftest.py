"""Shared fixtures: a tiny tokenizer and a tiny random LLaMA built in code, and the
path to the real public data (tests marked `shared_data` skip with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the network: hub lookups fail fast instead of retrying for half a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LIMACOT_SHARED_DATA", REPO.parent / "shared" / "data"))

_CORPUS = [
    "Hello world. The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "안녕하세요. 오늘 날씨가 좋습니다. 따라서 정답은 3입니다.",
    "민수는 사과 3개를 가지고 있었고 2개를 더 샀습니다. 모두 몇 개입니까?",
    "So the answer is 42. Let's think step by step.",
    "user assistant system [INST] [/INST] <<SYS>> <</SYS>>",
] * 4


def build_tiny_tokenizer():
    """A byte-level BPE tokenizer (about 400 tokens) trained in memory: handles any UTF-8 text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build_tiny_llama(vocab_size: int, seed: int = 0):
    """A 2-layer random LLaMA (hidden 32): loads in milliseconds, runs anywhere."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2)
    return LlamaForCausalLM(config)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture()
def tiny_model(tiny_tokenizer):
    return build_tiny_llama(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data folder; tests using it must also be marked `shared_data`."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real public data not found at {SHARED_DATA} (set LIMACOT_SHARED_DATA to its path)")
    return SHARED_DATA


@pytest.fixture()
def one_torch_thread():
    """Run with one torch thread: on 2 shared cores OpenMP spinning makes tiny matmuls up to
    100x slower with 2 threads. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
