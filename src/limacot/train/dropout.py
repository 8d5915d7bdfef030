"""LIMA's residual dropout for LLaMA-family decoder layers.

Where it acts, in each decoder layer of `model.model.layers` (transformers' LlamaDecoderLayer
and the same layout in Mistral/Qwen2/SmolLM):

    h = x + Dropout_p(SelfAttn(Norm(x)))      <- on the attention block's output
    y = h + Dropout_p(MLP(Norm(h)))           <- on the MLP block's output

i.e. on each residual branch before the residual add, never on the residual stream itself.
The rate rises linearly with depth: layer i of L gets p = p_d * i / (L - 1), so 0.0 at the
bottom layer and p_d at the top (LIMA: p_d = 0.2, 0.3 for 65B). It is applied by forward
hooks on `layer.self_attn` and `layer.mlp`, so it follows `model.train()` / `model.eval()`
(off at eval time) and survives PEFT wrapping; nothing is saved with the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a (possibly PEFT-wrapped) causal LM with LLaMA's layout."""
    for module in model.modules():
        layers = getattr(module, "layers", None)
        if isinstance(layers, nn.ModuleList) and layers and hasattr(layers[0], "self_attn") \
                and hasattr(layers[0], "mlp"):
            return layers
    raise ValueError(f"{type(model).__name__}: no LLaMA-style decoder layers (layers[i].self_attn/.mlp) found; "
                     "residual dropout supports LLaMA-family models only (set residual_dropout: 0)")


def layer_rates(num_layers: int, top_rate: float) -> list[float]:
    """[0.0, ..., top_rate], linear in depth; a single layer gets top_rate."""
    if num_layers == 1:
        return [top_rate]
    return [top_rate * i / (num_layers - 1) for i in range(num_layers)]


def _branch_dropout(rate: float):
    def hook(module: nn.Module, args, output):
        if not module.training or rate == 0.0:
            return output
        if isinstance(output, tuple):  # self_attn returns (attn_output, attn_weights)
            return (F.dropout(output[0], rate, training=True),) + tuple(output[1:])
        return F.dropout(output, rate, training=True)
    return hook


def add_residual_dropout(model: nn.Module, top_rate: float) -> list[torch.utils.hooks.RemovableHandle]:
    """Install the hooks (see module docstring); returns their handles (`.remove()` undoes)."""
    if top_rate == 0.0:
        return []
    handles = []
    layers = decoder_layers(model)
    for layer, rate in zip(layers, layer_rates(len(layers), top_rate)):
        handles.append(layer.self_attn.register_forward_hook(_branch_dropout(rate)))
        handles.append(layer.mlp.register_forward_hook(_branch_dropout(rate)))
    return handles
