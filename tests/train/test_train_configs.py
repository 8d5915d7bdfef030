"""Every shipped training preset and accelerate config loads and validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from limacot.io.yaml_config import load_config
from limacot.train.config import TrainConfig, resolve_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted((CONFIGS / "train").glob("*.yaml"))
ACCELERATE = sorted((CONFIGS / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_train_preset_resolves(path):
    config = resolve_train_config(load_config(path, TrainConfig).model_copy(update={"data": "train.jsonl"}))
    assert config.epochs and config.learning_rate and config.template
    if config.dev_prompts:
        assert Path(config.dev_prompts).is_file()
    if config.accelerate_config:
        assert Path(config.accelerate_config).is_file()


def test_presets_cover_the_study():
    names = {p.stem for p in PRESETS}
    assert {"demo", "lima-llama2-7b", "lima-llama3-8b", "lima-llama3-8b-lora", "lima-llama3-8b-qlora"} <= names


@pytest.mark.parametrize("path", ACCELERATE, ids=[p.stem for p in ACCELERATE])
def test_accelerate_config_loads(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.distributed_type in {"DEEPSPEED", "FSDP"} and config.mixed_precision == "bf16"
    if config.distributed_type == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3
    else:
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
        assert config.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"


def test_dev_prompts_file_has_50_prompts():
    import json

    lines = (CONFIGS / "train" / "dev_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50 and all(json.loads(line)["prompt"].strip() for line in lines)


def test_lima_batch_is_64_for_the_7b_8b_presets():
    """LIMA: "32 examples (64 for smaller models)"; the study's backbones are 7B/8B."""
    from limacot.train.config import recipe_defaults

    assert recipe_defaults()["lima"]["effective_batch_size"] == 64
    for path in (p for p in PRESETS if p.stem.startswith("lima-")):
        config = resolve_train_config(load_config(path, TrainConfig).model_copy(update={"data": "train.jsonl"}))
        assert config.effective_batch_size == 64, path.name
