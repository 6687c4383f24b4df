"""Data collators: turn a list of examples (dicts) into one batch of tensors, as transformers' collators do.

- ``default_data_collator``: examples already of equal length (stacks them);
- ``DataCollatorWithPadding``: pads ``input_ids``/``attention_mask``/... to the longest example (classification);
- ``DataCollatorForLanguageModeling``: masked-LM masking (``mlm=True``) or causal-LM labels (``mlm=False``);
- ``DataCollatorForSeq2Seq``: pads inputs and ``labels`` (with -100) separately.

Every collator renames ``label``/``label_ids`` to ``labels``, the name the heads take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100  # label value the losses skip


def _as_tensor(values: list) -> torch.Tensor:
    if isinstance(values[0], torch.Tensor):
        return torch.stack(values)
    return torch.tensor(values)


def _split_labels(features: list[Mapping]) -> tuple[list[dict], list | None]:
    """Copy the examples without their label, and return the labels (``label``, ``label_ids`` or ``labels``)."""
    examples, labels = [], []
    for feature in features:
        if not isinstance(feature, Mapping):
            raise TypeError(
                f"a collator takes examples as dicts of column -> value, got {type(feature).__name__}; "
                "return dicts from the dataset"
            )
        example = dict(feature)
        for name in ("labels", "label", "label_ids"):
            if name in example:
                labels.append(example.pop(name))
                break
        examples.append(example)
    if labels and len(labels) != len(examples):
        raise ValueError("some examples in this batch have a label and others not; give every example one")
    return examples, labels or None


def default_data_collator(features: list[Mapping]) -> dict[str, torch.Tensor]:
    """Stack examples whose fields already have equal shapes (no padding)."""
    examples, labels = _split_labels(features)
    batch = {}
    for key in examples[0]:
        values = [example[key] for example in examples]
        if values[0] is None or isinstance(values[0], str):
            continue
        try:
            batch[key] = _as_tensor(values)
        except (ValueError, RuntimeError) as error:
            raise ValueError(
                f"column '{key}' has examples of different lengths, which default_data_collator cannot stack; "
                "pass data_collator=DataCollatorWithPadding(tokenizer) (or give the Trainer a processing_class)"
            ) from error
    if labels is not None:
        batch["labels"] = _as_tensor(labels)
    return batch


def _pad_rows(rows: list[list[int]], length: int, value: int, left: bool) -> list[list[int]]:
    return [
        [value] * (length - len(row)) + row if left else row + [value] * (length - len(row)) for row in rows
    ]


def _padded_length(rows: list, pad_to_multiple_of: int | None, max_length: int | None = None) -> int:
    length = max_length or max(len(row) for row in rows)
    if pad_to_multiple_of and length % pad_to_multiple_of:
        length += pad_to_multiple_of - length % pad_to_multiple_of
    return length


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, torch.Tensor) else value


@dataclass
class DataCollatorWithPadding:
    """Pads every example to the longest in the batch with the tokenizer's pad token (``padding="max_length"``
    and ``max_length`` pad to a fixed length instead)."""

    tokenizer: Any
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def _pad(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        examples = [{key: _plain(value) for key, value in example.items()} for example in examples]
        return dict(
            self.tokenizer.pad(
                examples,
                padding=self.padding,
                max_length=self.max_length,
                pad_to_multiple_of=self.pad_to_multiple_of,
                return_tensors="pt",
            )
        )

    def __call__(self, features: list[Mapping]) -> dict[str, torch.Tensor]:
        examples, labels = _split_labels(features)
        batch = self._pad(examples)
        if labels is not None:
            batch["labels"] = _as_tensor([_plain(label) for label in labels])
        return batch


@dataclass
class DataCollatorForLanguageModeling(DataCollatorWithPadding):
    """Masked-LM batches (``mlm=True``: 15 % of the non-special tokens are predicted; of those 80 % become
    ``[MASK]``, 10 % a random token, 10 % stay) or causal-LM batches (``mlm=False``: labels are the input ids).

    Causal labels are -100 where ``attention_mask`` is 0. transformers masks every token equal to the pad id
    instead, so where pad = eos (GPT-2, many Llama fine-tunes) it also stops the model learning to end a text."""

    mlm: bool = True
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    seed: int | None = None

    def __post_init__(self):
        if self.mlm and getattr(self.tokenizer, "mask_token_id", None) is None:
            raise ValueError(
                "masked language modeling needs a tokenizer with a mask token; this one has none "
                "(pass mlm=False to train a causal LM)"
            )
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError("mask_replace_prob + random_replace_prob must be at most 1")
        self.generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None

    def __call__(self, features: list[Mapping]) -> dict[str, torch.Tensor]:
        examples, _ = _split_labels(features)  # labels are made here, from the inputs
        special = [example.pop("special_tokens_mask", None) for example in examples]
        batch = self._pad(examples)
        ids = batch["input_ids"]
        attention = batch.get("attention_mask", torch.ones_like(ids))
        if not self.mlm:
            batch["labels"] = ids.masked_fill(attention == 0, IGNORE_INDEX)
            return batch
        batch["input_ids"], batch["labels"] = self.mask_tokens(ids, attention, special)
        return batch

    def _special_mask(self, ids: torch.Tensor, attention: torch.Tensor, given: list) -> torch.Tensor:
        if all(mask is not None for mask in given):
            left = getattr(self.tokenizer, "padding_side", "right") == "left"
            rows = _pad_rows([list(mask) for mask in given], ids.shape[1], 1, left)
            return torch.tensor(rows, dtype=torch.bool) | (attention == 0)
        special_ids = torch.tensor(sorted(set(self.tokenizer.all_special_ids)))
        return torch.isin(ids, special_ids) | (attention == 0)

    def mask_tokens(self, ids: torch.Tensor, attention: torch.Tensor, special: list):
        labels = ids.clone()
        probability = torch.full(ids.shape, self.mlm_probability)
        probability.masked_fill_(self._special_mask(ids, attention, special), 0.0)
        masked = torch.bernoulli(probability, generator=self.generator).bool()
        labels[~masked] = IGNORE_INDEX
        ids = ids.clone()
        replaced = torch.bernoulli(
            torch.full(ids.shape, self.mask_replace_prob), generator=self.generator
        ).bool()
        replaced &= masked
        ids[replaced] = self.tokenizer.mask_token_id
        if self.random_replace_prob:  # of the rest, this share (of all masked tokens) becomes a random token
            share = (
                self.random_replace_prob / (1 - self.mask_replace_prob) if self.mask_replace_prob < 1 else 0.0
            )
            randomised = torch.bernoulli(torch.full(ids.shape, share), generator=self.generator).bool()
            randomised &= masked & ~replaced
            words = torch.randint(len(self.tokenizer), ids.shape, dtype=ids.dtype, generator=self.generator)
            ids[randomised] = words[randomised]
        return ids, labels


@dataclass
class DataCollatorForSeq2Seq(DataCollatorWithPadding):
    """Pads the encoder inputs with the pad token and ``labels`` with -100 (so padding is not learned). The
    model builds ``decoder_input_ids`` from the labels (shifted right), as transformers' T5 does."""

    model: Any = None
    label_pad_token_id: int = IGNORE_INDEX

    def __call__(self, features: list[Mapping]) -> dict[str, torch.Tensor]:
        examples, labels = _split_labels(features)
        batch = self._pad(examples)
        if labels is not None:
            rows = [list(_plain(label)) for label in labels]
            length = _padded_length(
                rows, self.pad_to_multiple_of, self.max_length if self.padding == "max_length" else None
            )
            left = getattr(self.tokenizer, "padding_side", "right") == "left"
            batch["labels"] = torch.tensor(_pad_rows(rows, length, self.label_pad_token_id, left))
            prepare = getattr(self.model, "prepare_decoder_input_ids_from_labels", None)
            if prepare is not None:
                batch["decoder_input_ids"] = prepare(labels=batch["labels"])
        return batch
