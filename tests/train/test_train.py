"""The LIMA recipe on the tiny random LLaMA: run layout, the correctness items of the issue
(assistant-only loss, stopping, pad/EOS, untrained rows, accumulation, packing, determinism,
residual dropout, schedule), LoRA, and input errors."""

from __future__ import annotations

import copy
import json
import logging

import pytest
import torch

from limacot.data.templates import get_template, render_conversation, resolve_template
from limacot.errors import LimacotInputError
from limacot.train.config import TrainConfig
from limacot.train.dataset import disable_forward_cache, padding_free_collator
from limacot.train.dropout import add_residual_dropout, decoder_layers, layer_rates
from limacot.train.recipe import train
from limacot.train.tokens import setup_special_tokens

ONE = [{"conversations": ["Say hi", "Hello there friend"], "source": "demo"}]
SMALL = [{"conversations": [f"Question {i} about apples?", f"Answer {i}: apples are red and sweet."],
          "source": ["a", "b"][i % 2]} for i in range(8)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture()
def tiny_dir(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path / "tiny")
    tiny_tokenizer.save_pretrained(tmp_path / "tiny")
    return str(tmp_path / "tiny")


def config(tiny_dir, data, **overrides) -> TrainConfig:
    base = dict(model=tiny_dir, data=data, epochs=2, save_window=(1, 2), effective_batch_size=4,
                per_device_batch_size=2, max_length=64, report_to=[], dev_max_new_tokens=4, deterministic=True)
    return TrainConfig(**{**base, **overrides})


def weights(path):
    from safetensors.torch import load_file
    return load_file(str(path / "model.safetensors"))


def test_run_layout_and_final_loads_with_plain_transformers(tmp_path, tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_jsonl(tmp_path / "train.jsonl", SMALL)
    result = train(config(tiny_dir, data, dev_prompts=["Hello", "사과?"]), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in ("config.resolved.yaml", "metrics.jsonl", "selection.json", "summary.json",
                 "checkpoints/epoch-1", "checkpoints/epoch-2", "dev_generations/epoch-1.jsonl", "final"):
        assert (run / name).exists(), name
    assert result.selection["chosen_epoch"] == 2 and "last" in result.selection["reason"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 5))
    assert all({"loss", "learning_rate", "grad_norm", "tokens_per_second"} <= set(r) for r in rows)
    assert len((run / "dev_generations" / "epoch-2.jsonl").read_text().splitlines()) == 2
    model = AutoModelForCausalLM.from_pretrained(run / "final")
    tokenizer = AutoTokenizer.from_pretrained(run / "final")
    assert tokenizer.chat_template == resolve_template("lima", tokenizer).jinja
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
                                             tokenize=False)
    assert rendered.endswith("Q<EOT>A<EOT>")
    assert model.config.vocab_size == len(tokenizer) and tokenizer.pad_token != tokenizer.eos_token


def test_schedule_decays_linearly_to_min_lr(tmp_path, tiny_dir):
    data = write_jsonl(tmp_path / "train.jsonl", SMALL)
    train(config(tiny_dir, data, epochs=4, save_window=(4, 4), learning_rate=1e-3, min_learning_rate=1e-4,
                 effective_batch_size=2, per_device_batch_size=1), tmp_path / "run", progress=False)
    lrs = [json.loads(line)["learning_rate"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lrs[0] == pytest.approx(1e-3)
    steps = len(lrs)
    expected = [1e-4 + (1e-3 - 1e-4) * (1 - s / steps) for s in range(steps)]
    assert lrs == pytest.approx(expected, rel=1e-4)


def test_model_learns_to_stop(tmp_path, tiny_dir):
    """Loss on the answer and its <EOT>: the trained model's greedy answer ends with <EOT>."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_jsonl(tmp_path / "one.jsonl", ONE)
    train(config(tiny_dir, data, epochs=60, save_window=(60, 60), effective_batch_size=1, per_device_batch_size=1,
                 learning_rate=1e-2, min_learning_rate=1e-3, residual_dropout=0.0, weight_decay=0.0),
          tmp_path / "run", progress=False)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run" / "final")
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Say hi"}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=20, do_sample=False)[0, ids.shape[1]:].tolist()
    eot = tokenizer.convert_tokens_to_ids("<EOT>")
    assert eot in out and tokenizer.decode(out[:out.index(eot)]).strip() == "Hello there friend"


def test_labels_cover_assistant_and_eot_only(tiny_tokenizer, tiny_model):
    tokenizer = copy.deepcopy(tiny_tokenizer)
    setup_special_tokens(tiny_model, tokenizer, get_template("lima"))
    example = render_conversation([{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hello"}],
                                  tokenizer, "lima")
    trained = [i for i, label in zip(example.input_ids, example.labels) if label != -100]
    assert tokenizer.decode(trained) == "Hello<EOT>"


def test_pad_distinct_from_eos_and_untrained_rows_reinitialised(tiny_tokenizer, tiny_model, caplog):
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.add_special_tokens({"additional_special_tokens": ["<EOT>"]})  # present but never trained
    tiny_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    eot = tokenizer.convert_tokens_to_ids("<EOT>")
    with torch.no_grad():
        tiny_model.get_input_embeddings().weight[eot] = 0.0
    with caplog.at_level(logging.WARNING):
        setup = setup_special_tokens(tiny_model, tokenizer, get_template("lima"))
    assert tokenizer.pad_token_id != tokenizer.eos_token_id and setup.added == ["<|pad|>"]
    assert setup.reinitialised == ["<EOT>"] and "untrained" in caplog.text
    embeddings = tiny_model.get_input_embeddings().weight
    mean = embeddings[:eot].mean(dim=0)
    assert torch.allclose(embeddings[eot], mean, atol=1e-6)
    assert torch.allclose(tiny_model.get_output_embeddings().weight[tokenizer.pad_token_id],
                          tiny_model.get_output_embeddings().weight[:eot].mean(dim=0), atol=1e-6)


def test_packed_losses_equal_unpacked(tiny_tokenizer, tiny_model):
    """Padding-free micro-batches: no attention across examples, per-example losses unchanged."""
    tokenizer = copy.deepcopy(tiny_tokenizer)
    setup_special_tokens(tiny_model, tokenizer, get_template("lima"))
    examples = [render_conversation([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                    tokenizer, "lima") for q, a in
                [("Hello world", "The quick brown fox."), ("사과 3개?", "따라서 정답은 3입니다."), ("Hi", "So the answer is 42.")]]
    batch = padding_free_collator()([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    disable_forward_cache(tiny_model)
    tiny_model.eval()
    with torch.no_grad():
        logits = tiny_model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        start = 0
        for e in examples:
            alone = tiny_model(input_ids=torch.tensor([e.input_ids])).logits[0]
            assert torch.allclose(logits[start:start + len(e.input_ids)], alone, atol=1e-4)
            start += len(e.input_ids)


def test_residual_dropout_rates_and_eval_mode(tiny_model):
    assert layer_rates(4, 0.2) == pytest.approx([0.0, 0.2 / 3, 0.4 / 3, 0.2])
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    tiny_model.eval()
    with torch.no_grad():
        before = tiny_model(ids).logits
    handles = add_residual_dropout(tiny_model, 0.5)
    assert len(handles) == 2 * len(decoder_layers(tiny_model))
    with torch.no_grad():
        assert torch.equal(tiny_model(ids).logits, before)  # off at eval time
        tiny_model.train()
        torch.manual_seed(0)
        assert not torch.allclose(tiny_model(ids).logits, before)
    for handle in handles:
        handle.remove()


def test_gradient_accumulation_normalises_by_trained_tokens(tmp_path, tiny_dir):
    """Accumulation 4 x batch 2 and one batch of 8: same loss and gradients (1e-5)."""
    from transformers import TrainerCallback

    grads = {}

    class Capture(TrainerCallback):
        def __init__(self, key):
            self.key = key

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            grads[self.key] = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}

    from limacot.train import recipe as recipe_module

    rows = [{"conversations": ["q" * (1 + i), "answer " * (1 + 3 * i)], "source": "s"} for i in range(8)]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    original = recipe_module.LimaTrainer.__init__
    for key, per_device in (("accumulated", 2), ("single", 8)):
        def patched(self, *args, _key=key, **kwargs):
            kwargs["callbacks"] = kwargs["callbacks"] + [Capture(_key)]
            original(self, *args, **kwargs)
        recipe_module.LimaTrainer.__init__ = patched
        try:
            train(config(tiny_dir, data, epochs=1, save_window=(1, 1), max_steps=1, effective_batch_size=8,
                         per_device_batch_size=per_device, residual_dropout=0.0), tmp_path / key, progress=False)
        finally:
            recipe_module.LimaTrainer.__init__ = original
    loss = [json.loads((tmp_path / k / "metrics.jsonl").read_text().splitlines()[0])["loss"]
            for k in ("accumulated", "single")]
    assert loss[0] == pytest.approx(loss[1], abs=1e-5)
    assert grads["accumulated"].keys() == grads["single"].keys()
    for name, grad in grads["single"].items():
        assert torch.allclose(grads["accumulated"][name], grad, atol=1e-5), name


def test_deterministic_same_seed_same_weights(tmp_path, tiny_dir):
    data = write_jsonl(tmp_path / "train.jsonl", SMALL)
    for name in ("a", "b"):
        train(config(tiny_dir, data), tmp_path / name, progress=False)
    a, b = weights(tmp_path / "a" / "final"), weights(tmp_path / "b" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_lora_trains_token_rows_and_merges(tmp_path, tiny_dir):
    from transformers import AutoModelForCausalLM

    data = write_jsonl(tmp_path / "train.jsonl", SMALL)
    result = train(config(tiny_dir, data, method="lora", merge=True, lora={"r": 4, "alpha": 8,
                                                                            "target_modules": ["q_proj", "v_proj"]}),
                   tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoints" / "epoch-2" / "adapter_config.json").exists()
    assert result.selection["merged"] is True
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final")
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    embeddings = merged.get_input_embeddings().weight
    assert embeddings.shape[0] == base.get_input_embeddings().weight.shape[0] + 1  # <EOT>, the last row
    assert not torch.allclose(embeddings[-1], embeddings[:-1].mean(dim=0), atol=1e-6)  # it trained
    assert torch.equal(embeddings[:-1], base.get_input_embeddings().weight)  # LoRA left the rest alone


def test_input_errors(tmp_path, tiny_dir):
    data = write_jsonl(tmp_path / "train.jsonl", SMALL)
    with pytest.raises(LimacotInputError, match="not a multiple"):
        train(config(tiny_dir, data, effective_batch_size=3), tmp_path / "r1", progress=False)
    with pytest.raises(LimacotInputError, match="CUDA"):
        train(config(tiny_dir, data, method="qlora"), tmp_path / "r2", progress=False)
    train(config(tiny_dir, data, epochs=1, save_window=(1, 1)), tmp_path / "r3", progress=False)
    with pytest.raises(LimacotInputError, match="--resume"):
        train(config(tiny_dir, data, epochs=1, save_window=(1, 1)), tmp_path / "r3", progress=False)
    with pytest.raises(LimacotInputError, match="different config"):
        train(config(tiny_dir, data, epochs=1, save_window=(1, 1), seed=5), tmp_path / "r3", resume=True,
              progress=False)
