"""One device/dtype/attention setting for every stage: resolution, errors, and the bf16 path on CPU
through generate, eval and the local judge."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from typer.testing import CliRunner

from limacot.models import compute
from limacot.cli import app
from limacot.models.compute import ComputeOptions, resolve_compute
from limacot.errors import LimacotInputError
from limacot.models.loading import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_auto_is_fp32_on_cpu_and_names_are_normalised():
    resolved = resolve_compute(ComputeOptions())
    assert resolved.device == torch.device("cpu") and resolved.dtype == torch.float32
    assert resolved.attn_implementation == "sdpa"
    assert ComputeOptions(dtype="bf16").dtype == "bfloat16" and ComputeOptions(dtype="FP16").dtype == "float16"
    assert resolve_compute(ComputeOptions(dtype="bf16")).dtype == torch.bfloat16
    assert resolve_compute(ComputeOptions(), dtype_default="bfloat16").dtype == torch.bfloat16


def test_auto_dtype_on_cuda_follows_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert compute.auto_dtype_name(torch.device("cuda", 0)) == "float16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert compute.auto_dtype_name(torch.device("cuda", 0)) == "bfloat16"


@pytest.mark.parametrize("field, value", [("device", "gpu"), ("device", "cuda:x"), ("dtype", "float8"),
                                          ("attn_implementation", "flash")])
def test_bad_values_are_rejected(field, value):
    with pytest.raises(ValueError, match="expected"):
        ComputeOptions(**{field: value})


def test_missing_gpu_is_an_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(LimacotInputError, match=r"device 'cuda:1': torch sees no CUDA GPU"):
        resolve_compute(ComputeOptions(device="cuda:1"))


def test_flash_attention_falls_back_to_sdpa_once_with_the_reason(caplog):
    compute._fallback_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="limacot.models.compute"):
        for _ in range(3):
            assert resolve_compute(ComputeOptions(attn_implementation="flash_attention_2")).attn_implementation == "sdpa"
    notes = [r.getMessage() for r in caplog.records if "flash_attention_2" in r.getMessage()]
    assert notes == ["attn_implementation flash_attention_2: it needs a CUDA device; using sdpa instead"]


@pytest.fixture()
def chat_dir(tmp_path, tiny_tokenizer):
    import copy

    from conftest import build_tiny_llama

    from limacot.data.templates import get_template, prepare_tokenizer

    tokenizer = copy.deepcopy(tiny_tokenizer)
    prepare_tokenizer(tokenizer, "chatml")
    tokenizer.chat_template = get_template("chatml").jinja
    model = build_tiny_llama(len(tokenizer))
    model.save_pretrained(tmp_path / "chat")
    tokenizer.save_pretrained(tmp_path / "chat")
    return tmp_path / "chat"


def test_load_model_places_and_types_by_the_options(chat_dir):
    model = load_model(str(chat_dir), ComputeOptions(dtype="bfloat16", attn_implementation="eager"))
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu"
    assert model.config._attn_implementation == "eager"
    assert load_model(str(chat_dir)).dtype == torch.float32


def test_generate_and_judge_cli_run_in_bf16_on_cpu(chat_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Hello world {i}"}) + "\n" for i in range(3)))
    runs = {}
    for dtype in ("bf16", "float32"):
        out = tmp_path / f"G-{dtype}"
        result = CliRunner().invoke(app, ["generate", "--model", str(chat_dir), "--prompts", str(prompts), "--out",
                                          str(out), "--max-new-tokens", "5", "--greedy", "--dtype", dtype,
                                          "--device", "cpu", "--json"])
        assert result.exit_code == 0, result.output
        runs[dtype] = out
    bad = CliRunner().invoke(app, ["generate", "--model", str(chat_dir), "--prompts", str(prompts), "--out",
                                   str(tmp_path / "x"), "--dtype", "float8"])
    assert bad.exit_code == 2 and "dtype" in bad.output
    calls = []
    for dtype in ("bfloat16", "float32", "bfloat16"):
        judged = CliRunner().invoke(app, ["judge", "--a", str(runs["float32"]), "--b", str(runs["bf16"]), "--judge",
                                          str(chat_dir), "--dtype", dtype, "--out", str(tmp_path / "J"), "--json"])
        assert judged.exit_code == 0, judged.output
        calls.append(json.loads(judged.stdout)["calls"]["made"])
    assert calls[0] == calls[1] > 0 and calls[2] == 0  # the judge cache keys replies by the judge dtype
