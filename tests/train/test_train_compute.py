"""Training's compute settings (device, dtype per method, attention, CLI flags), batched dev
answers, and a LoRA run's adapter `final/` as a model spec for the next stage. Tiny random LLaMA."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from limacot.cli import app
from limacot.models.loading import load_model, load_tokenizer
from limacot.train import recipe, selection
from limacot.train.config import TrainConfig, resolve_train_config
from limacot.train.methods import training_compute
from limacot.train.recipe import train
from limacot.train.trainer import training_arguments

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = [{"conversations": [f"Question {i} about apples?", f"Answer {i}: apples are red and sweet."]} for i in range(8)]
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
TRAINED = ("lora_", "trainable_tokens_delta")  # what LoRA trains: adapters and the special-token rows


@pytest.fixture()
def tiny_dir(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path / "tiny")
    tiny_tokenizer.save_pretrained(tmp_path / "tiny")
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in SMALL), encoding="utf-8")
    return str(tmp_path / "tiny")


def config(tiny_dir, **overrides) -> TrainConfig:
    base = dict(model=tiny_dir, data=str(tiny_dir).replace("tiny", "train.jsonl"), epochs=2, save_window=(1, 2),
                effective_batch_size=4, per_device_batch_size=2, max_length=64, report_to=[], dev_max_new_tokens=4,
                deterministic=True, learning_rate=1e-2, min_learning_rate=1e-3)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture()
def spies(monkeypatch):
    """Records the model `apply_method` returns (the one trained) and the dev-answer batches."""
    seen = {"trained": None, "batches": []}
    apply_method, answer_batch = recipe.apply_method, selection.answer_batch

    def trained(model, cfg, ids):
        seen["trained"] = apply_method(model, cfg, ids)
        return seen["trained"]

    def batch(model, tokenizer, conversations, settings, **kwargs):
        seen["batches"].append({"size": len(conversations), "dtype": model.dtype, "seeds": kwargs["seeds"]})
        return answer_batch(model, tokenizer, conversations, settings, **kwargs)

    monkeypatch.setattr(recipe, "apply_method", trained)
    monkeypatch.setattr(selection, "answer_batch", batch)
    return seen


def test_dtype_auto_depends_on_the_method_and_an_explicit_dtype_wins(tiny_dir):
    on_cpu = {method: training_compute(config(tiny_dir, method=method)).dtype for method in ("full", "lora", "qlora")}
    assert on_cpu == {"full": torch.float32, "lora": torch.float32, "qlora": torch.bfloat16}
    assert training_compute(config(tiny_dir, method="lora", dtype="bf16")).dtype == torch.bfloat16
    assert training_compute(config(tiny_dir, method="full", dtype="float16")).dtype == torch.float16


def test_device_cpu_trains_on_cpu_where_there_is_a_gpu(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = resolve_train_config(config(tiny_dir, device="cpu"))
    args = training_arguments(cfg, training_compute(cfg), tmp_path / "trainer", has_dev=False)
    assert args.use_cpu and not args.dataloader_pin_memory and not args.bf16


def test_lora_on_a_bf16_base_on_cpu_from_the_cli(tiny_dir, tmp_path, spies):
    """--dtype bf16 --device cpu --attn eager: the frozen base is bf16, the adapters and <EOT>
    rows train in fp32, attention is eager, and the dev answers run on the bf16 model."""
    (tmp_path / "lora.yaml").write_text(yaml.safe_dump(config(tiny_dir, method="lora", lora=LORA, dev_prompts=["Hi"])
                                                       .model_dump(mode="json", exclude_unset=True)), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "lora.yaml"), "--out", str(tmp_path / "run"),
                                      "--dtype", "bf16", "--device", "cpu", "--attn", "eager"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((tmp_path / "run" / "config.resolved.yaml").read_text(encoding="utf-8"))
    assert (resolved["device"], resolved["dtype"], resolved["attn_implementation"]) == ("cpu", "bfloat16", "eager")
    model = spies["trained"]
    params = dict(model.named_parameters())
    trained = {n for n, p in params.items() if p.requires_grad}
    assert trained == {n for n in params if any(t in n for t in TRAINED)}
    assert any("trainable_tokens_delta" in n for n in trained) and any("lora_A" in n for n in trained)
    assert all(params[n].dtype == torch.float32 for n in trained)
    assert all(p.dtype == torch.bfloat16 for n, p in params.items() if n not in trained)
    assert model.config._attn_implementation == "eager"
    assert [b["dtype"] for b in spies["batches"]] == [torch.bfloat16, torch.bfloat16]  # epochs 1 and 2
    assert (tmp_path / "run" / "final" / "adapter_model.safetensors").exists()


def test_dev_answers_do_not_depend_on_the_batch_size(tiny_dir, tmp_path, spies):
    prompts = ["Hello", "What is the capital of France?", "사과 3개?", "Say hi"]
    for size in (1, 3):
        train(config(tiny_dir, epochs=1, save_window=(1, 1), dev_prompts=prompts, dev_max_new_tokens=8,
                     dev_batch_size=size), tmp_path / f"b{size}", progress=False)
    assert [b["size"] for b in spies["batches"]] == [1, 1, 1, 1, 3, 1]
    assert [b["seeds"] for b in spies["batches"][4:]] == [[0, 1, 2], [3]]
    answers = [(tmp_path / f"b{size}" / "dev_generations" / "epoch-1.jsonl").read_text(encoding="utf-8")
               for size in (1, 3)]
    assert answers[0] == answers[1] and len(answers[0].splitlines()) == 4


def test_lora_final_adapter_loads_as_a_model_spec(tiny_dir, tmp_path):
    """A LoRA run's final/ (the adapter, not merged) loads with load_model: its logits are the
    base + adapter's, the <EOT> rows trained through trainable_token_indices are in, and it
    stops at <EOT>."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    train(config(tiny_dir, method="lora", lora=LORA), tmp_path / "run", progress=False)
    final = tmp_path / "run" / "final"
    assert (final / "adapter_config.json").exists() and not (final / "config.json").exists()
    tokenizer = load_tokenizer(str(final))
    eot = tokenizer.convert_tokens_to_ids("<EOT>")
    loaded = load_model(str(final), dtype="float32")
    stops = loaded.generation_config.eos_token_id
    assert eot in (stops if isinstance(stops, list) else [stops])  # the trained stop token, not just the base's EOS

    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    base.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    reference = PeftModel.from_pretrained(base, str(final)).eval()  # adapters applied on the fly, not merged
    ids = torch.tensor([tokenizer("Question 1 about apples?<EOT>Answer", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, reference(ids).logits, atol=1e-5)

    saved = load_file(str(final / "adapter_model.safetensors"))
    for layer, weights in (("model.embed_tokens", loaded.get_input_embeddings().weight),
                           ("lm_head", loaded.get_output_embeddings().weight)):
        start = saved[f"base_model.model.{layer}.token_adapter.base_layer.weight"][eot]  # the mean, frozen
        row = saved[f"base_model.model.{layer}.token_adapter.trainable_tokens_delta"][0]  # PEFT keeps the new row
        assert (row - start).abs().max() > 1e-3, layer  # it trained
        assert torch.allclose(weights[eot], row, atol=1e-6), layer
