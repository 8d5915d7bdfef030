"""Full fine-tuning, LoRA and QLoRA (PEFT), with the special-token rows always trainable.

LoRA freezes the embeddings, but a new end-of-turn token starts as an average embedding
and must be learnt, or the model never learns to stop. PEFT's `trainable_token_indices`
trains exactly those rows (input embedding and, when untied, the output head) and saves
them with the adapter.
"""

from __future__ import annotations

from limacot.errors import LimacotInputError
from limacot.train.config import TrainConfig


def load_quantized_model(spec: str):
    """A 4-bit NF4 model for QLoRA: CUDA and bitsandbytes only (exit 2 with the reason otherwise)."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise LimacotInputError("method 'qlora' needs a CUDA GPU (bitsandbytes 4-bit kernels); this machine has "
                                "none. Use --method lora or --method full on CPU.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise LimacotInputError("method 'qlora' needs bitsandbytes: pip install bitsandbytes")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from limacot.models import checkpoint_path

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.bfloat16)
    return AutoModelForCausalLM.from_pretrained(checkpoint_path(spec), quantization_config=quantization,
                                                use_safetensors=True, dtype=torch.bfloat16)


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
    return get_peft_model(model, lora)


def merge_adapter(adapter_dir, out_dir) -> None:
    """Merge LoRA adapters (and trained token rows) into the base weights; save to `out_dir`."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(adapter_dir)
    model.merge_and_unload().save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out_dir)
