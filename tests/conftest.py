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
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty, offline Hugging Face cache (huggingface_hub reads these at call time)."""
    import huggingface_hub.constants as hub

    cache = tmp_path / "hub"
    cache.mkdir()
    for name, value in (("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture()
def one_torch_thread():
    """Run with one torch thread: on 2 shared cores OpenMP spinning makes tiny matmuls up to
    100x slower with 2 threads. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- a tiny `limacot run` study (tests/run/) ------------------------------------------

STUDY_LIMA = [{"conversations": [f"Question {i} about apples?", f"Answer {i}: apples are red."], "source": "s"}
              for i in range(8)]
STUDY_COT = [{"source": f"사과 {i}개와 2개는?", "rationale": f"{i}+2={i + 2}", "target": str(i + 2)} for i in range(8)]
STUDY = {"name": "tiny", "backbones": {"tiny": "tiny"}, "data": "data.yaml", "variants": ["base", "lima", "lima+cot"],
         "sizes": [4], "seeds": [0], "train": {"preset": "train.yaml"},
         "eval": {"tasks": ["kobest_copa"], "num_fewshot": 1, "limit": 4,
                  "data_dir": str(REPO / "examples" / "eval_data")},
         "judge": {"prompts": "prompts.jsonl", "judge": "tiny", "max_new_tokens": 4, "greedy": True},
         "comparisons": [["base", "lima"], ["lima", "lima+cot"]]}


def write_study(folder: Path, name: str = "study.yaml", **changes) -> Path:
    """A study YAML in `folder` (beside the files of `tiny_study`): STUDY with `changes` on top."""
    import yaml

    path = folder / name
    path.write_text(yaml.safe_dump({**STUDY, **changes}, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture()
def tiny_study(tmp_path, tiny_model) -> Path:
    """A folder with study.yaml (STUDY) and what it names: the tiny random LLaMA as backbone and
    judge (with a chat template), a data build config with two variants of size 4, a one-epoch
    train preset, two judge prompts."""
    import json

    import yaml

    from limacot.data.templates import get_template

    tokenizer = build_tiny_tokenizer()  # a fresh one: the chat template below must not leak into other tests
    tokenizer.chat_template = get_template("chatml").jinja.replace("<|im_start|>", "<s>").replace("<|im_end|>", "</s>")
    tiny_model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    for name, rows in (("lima.jsonl", STUDY_LIMA), ("cot.jsonl", STUDY_COT)):
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "Hello?"}\n{"prompt": "사과?"}\n', encoding="utf-8")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({
        "sources": {"lima": {"path": "lima.jsonl"}, "kocot": {"path": "cot.jsonl"}},
        "variants": {"lima": {"mix": {"lima": "all"}}, "lima+cot": {"mix": {"lima": "all", "kocot": "all"}}},
        "sizes": [4]}))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({
        "epochs": 1, "save_window": [1, 1], "effective_batch_size": 2, "per_device_batch_size": 2,
        "max_length": 64, "report_to": [], "deterministic": True}))
    write_study(tmp_path)
    return tmp_path


def table(db: Path, name: str, drop=()) -> list[tuple]:
    """Every row of table `name` of a results store (without the `drop` columns), sorted."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(f"SELECT * FROM {name}")]
    return sorted((tuple((k, v) for k, v in r.items() if k not in drop) for r in rows), key=repr)


# --- API servers on 127.0.0.1 (tests/judge, tests/generate) ------------------------------


@pytest.fixture()
def server_factory():
    """make(script, default, reply) -> a started `fault_server.FaultServer` (a scripted
    /v1/chat/completions server), each closed after the test."""
    from fault_server import FaultServer

    servers = []

    def make(*args, **kwargs):
        servers.append(FaultServer(*args, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()
