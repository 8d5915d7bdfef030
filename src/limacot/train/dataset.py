"""Training examples: any data file -> rendered (input_ids, labels) rows, and the batches.

Batches are padding-free: transformers' `DataCollatorWithFlattening` concatenates the
examples of a micro-batch into one row and restarts `position_ids` at 0 for each example;
transformers turns those position ids into a block-diagonal causal mask (or flash-attention
varlen on GPU), so no token attends across examples and no compute is spent on padding:

    examples [a1 a2 a3], [b1 b2]  ->  input_ids    [[a1 a2 a3 b1 b2]]
                                      position_ids [[0  1  2  0  1 ]]
                                      labels       [[-100 a2 a3 -100 b2]]  (first token of each
                                      example is never a target: nothing before it to predict from)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from limacot.data.sources import read_records
from limacot.data.templates import ChatTemplate, render_many


@dataclass
class TrainingData:
    dataset: object          # datasets.Dataset with input_ids, labels
    records: int             # conversations read
    dropped: Counter         # by reason (no_trained_tokens) plus truncation counts
    tokens: int              # all tokens
    trained_tokens: int      # tokens with a label


def load_training_data(path: str, tokenizer, template: ChatTemplate, max_length: int, *,
                       data_format: str | None = None, columns: dict | None = None,
                       cot_style: str = "ko") -> TrainingData:
    """Read `path` with the data readers and render every conversation with `template`."""
    import datasets

    report = read_records(path, format=data_format, columns=columns or None, cot_style=cot_style)
    examples, counts = render_many(report.records, tokenizer, template, max_length=max_length)
    rows = {"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]}
    return TrainingData(
        dataset=datasets.Dataset.from_dict(rows),
        records=len(report.records),
        dropped=counts,
        tokens=sum(len(e.input_ids) for e in examples),
        trained_tokens=sum(sum(label != -100 for label in e.labels) for e in examples),
    )


def padding_free_collator():
    """The micro-batch collator (see the module docstring)."""
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)


def disable_forward_cache(model) -> None:
    """Training forwards must not build a KV cache: transformers recognises packed examples
    (position ids restarting at 0) and masks attention between them only when there is no
    cache, so with `use_cache=True` packed examples would attend to each other.
    `generate()` still caches (it follows the generation config)."""
    model.config.use_cache = False
