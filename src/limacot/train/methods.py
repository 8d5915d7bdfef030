"""Full fine-tuning, LoRA and QLoRA (PEFT), with the special-token rows always trainable.

LoRA freezes the embeddings, but a new end-of-turn token starts as an average embedding
and must be learnt, or the model never learns to stop. PEFT's `trainable_token_indices`
trains exactly those rows (input embedding and, when untied, the output head) and saves
them with the adapter.

Precision (`dtype: auto`, see `training_compute`): full fine-tuning keeps float32 weights
(mixed precision is the `precision` setting); LoRA keeps the frozen base in bfloat16 on a
GPU (float16 on GPUs without bf16) and float32 on CPU, where bf16 matmuls are slow; QLoRA
stores it in 4-bit NF4 and computes in bfloat16. An explicit `dtype` wins. The trained
LoRA weights and token rows are float32 whatever the base's dtype.
"""

from __future__ import annotations

import dataclasses

import torch

from limacot.models.compute import Compute, ComputeOptions, resolve_compute
from limacot.errors import LimacotInputError
from limacot.models.loading import checkpoint_path, load_model, load_tokenizer
from limacot.train.config import TrainConfig

AUTO_DTYPE = {"full": "float32", "lora": None, "qlora": "bfloat16"}  # None: limacot.models.compute's auto


def training_compute(config: TrainConfig) -> Compute:
    """Device, dtype and attention of the backbone to train (`dtype: auto` per method, see above)."""
    return resolve_compute(config, dtype_default=AUTO_DTYPE[config.method])


def load_backbone(config: TrainConfig, compute: Compute):
    """The model to train, in `compute`'s dtype and attention. It loads on CPU and the Trainer
    places it (DeepSpeed and FSDP shard it from there), except QLoRA's, which bitsandbytes
    quantizes onto its GPU while loading."""
    if config.method == "qlora":
        return load_quantized_model(config.model, compute)
    return load_model(config.model, dataclasses.replace(compute, device=torch.device("cpu")))


def load_quantized_model(spec: str, compute: Compute):
    """A 4-bit NF4 model for QLoRA computing in `compute.dtype`, on `compute.device`: CUDA and
    bitsandbytes only (exit 2 with the reason otherwise)."""
    import importlib.util

    if compute.device.type != "cuda":
        raise LimacotInputError(f"method 'qlora' needs a CUDA GPU (bitsandbytes 4-bit kernels); the device here is "
                                f"{compute.device}. Use --method lora or --method full on CPU.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise LimacotInputError("method 'qlora' needs bitsandbytes: pip install bitsandbytes")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=compute.dtype)
    return AutoModelForCausalLM.from_pretrained(checkpoint_path(spec), quantization_config=quantization,
                                                use_safetensors=True, device_map={"": compute.device},
                                                **compute.load_kwargs())


def apply_method(model, config: TrainConfig, trainable_token_ids: list[int]):
    """Return the model to train: itself (full) or a PEFT LoRA model (lora/qlora)."""
    if config.method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    token_rows = {"embed_tokens": trainable_token_ids}
    output = model.get_output_embeddings()
    if output is not None and output.weight is not model.get_input_embeddings().weight:
        token_rows["lm_head"] = trainable_token_ids
    lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=config.lora.target_modules, task_type="CAUSAL_LM",
                      trainable_token_indices=token_rows if trainable_token_ids else None)
    return get_peft_model(model, lora, autocast_adapter_dtype=True)  # float32 adapters on a bf16/fp16 base


def merge_adapter(adapter_dir, out_dir, dtype=torch.float32) -> None:
    """Merge LoRA adapters (and trained token rows) into the base weights, in float32 on CPU;
    save to `out_dir` in `dtype` (the dtype the base trained in), with the tokenizer."""
    model = load_model(str(adapter_dir), ComputeOptions(device="cpu", dtype="float32"))
    model.to(dtype).save_pretrained(out_dir, safe_serialization=True)
    load_tokenizer(str(adapter_dir)).save_pretrained(out_dir)
