"""Special tokens for training: the template's tokens, a pad distinct from EOS, and their
embeddings.

New tokens (LIMA's `<EOT>`, chatml's markers on LLaMA, a pad token) get embedding rows
(and output rows, when not tied) set to the MEAN of the existing rows, so they start as
an "average token" instead of noise. Tokens the template uses that exist but were never
trained (LLaMA-3's base model has near-zero rows for `<|start_header_id|>`, `<|eot_id|>`
and the reserved tokens) are detected by their row norm and initialised the same way,
with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from limacot.data.templates import ChatTemplate, prepare_tokenizer

log = logging.getLogger(__name__)
PAD_TOKEN = "<|pad|>"
UNTRAINED_NORM_RATIO = 1e-3  # a row this much smaller than the median row norm counts as untrained


@dataclass
class TokenSetup:
    added: list[str] = field(default_factory=list)          # new tokens (new ids)
    reinitialised: list[str] = field(default_factory=list)  # existing but untrained tokens
    trainable_ids: list[int] = field(default_factory=list)  # rows that must train even under LoRA


def _output_matrix(model) -> torch.Tensor | None:
    out = model.get_output_embeddings()
    if out is None or out.weight is model.get_input_embeddings().weight:
        return None
    return out.weight


def _untrained_ids(matrix: torch.Tensor, ids: list[int]) -> list[int]:
    norms = matrix.detach().float().norm(dim=-1)
    threshold = UNTRAINED_NORM_RATIO * norms.median().item()
    return [i for i in ids if norms[i].item() < threshold]


@torch.no_grad()
def _set_rows_to_mean(matrix: torch.Tensor, ids: list[int], reference_rows: int) -> None:
    keep = torch.ones(reference_rows, dtype=torch.bool)
    keep[[i for i in ids if i < reference_rows]] = False
    matrix[ids] = matrix[:reference_rows][keep].float().mean(dim=0).to(matrix.dtype)


def setup_special_tokens(model, tokenizer, template: ChatTemplate) -> TokenSetup:
    """Add the template's tokens and a pad token (if missing or equal to EOS), resize the
    embeddings, and initialise new and untrained rows at the mean. Mutates both objects."""
    setup = TokenSetup(added=list(prepare_tokenizer(tokenizer, template)))
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        if PAD_TOKEN not in setup.added:
            setup.added.append(PAD_TOKEN)
    old_rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old_rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    new_ids = [tokenizer.convert_tokens_to_ids(t) for t in setup.added]
    template_ids = sorted({tokenizer.convert_tokens_to_ids(t) for t in (*template.special_tokens, template.eot)
                           if t} - set(new_ids))
    untrained = _untrained_ids(model.get_input_embeddings().weight[:old_rows], template_ids)
    setup.reinitialised = tokenizer.convert_ids_to_tokens(untrained)
    if untrained:
        log.warning("template tokens %s have untrained (near-zero) embeddings in this model; initialising them "
                    "at the mean embedding like new tokens", setup.reinitialised)
    init_ids = sorted(set(new_ids) | set(untrained))
    for matrix in (model.get_input_embeddings().weight, _output_matrix(model)):
        if matrix is not None and init_ids:
            _set_rows_to_mean(matrix, init_ids, min(old_rows, matrix.shape[0]))
    model.config.pad_token_id = tokenizer.pad_token_id
    eot_id = tokenizer.convert_tokens_to_ids(template.eot) if template.eot else None
    stop = [i for i in (eot_id, tokenizer.eos_token_id) if i is not None]
    model.generation_config.eos_token_id = list(dict.fromkeys(stop))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    setup.trainable_ids = sorted(set(init_ids) | ({eot_id} if eot_id is not None else set()))
    return setup
