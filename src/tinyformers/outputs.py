"""Model outputs: one object readable as attributes, as a dict, or as a tuple.

Like ``transformers.ModelOutput``: fields that are ``None`` are left out of the dict view, so ``for key in out``
yields only what the model produced, and ``out[0]`` is the first produced field.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

import torch


class ModelOutput(OrderedDict):
    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                super().__setitem__(f.name, value)

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(key)
        return self.to_tuple()[key]

    def __setattr__(self, name, value):
        if name in self.keys() and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __reduce__(self):
        return self.__class__, tuple(getattr(self, f.name) for f in fields(self))

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self[k] for k in self.keys())


@dataclass(repr=False)
class BaseModelOutput(ModelOutput):
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass(repr=False)
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass(repr=False)
class SequenceClassifierOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass(repr=False)
class TokenClassifierOutput(SequenceClassifierOutput):
    pass


@dataclass(repr=False)
class MaskedLMOutput(SequenceClassifierOutput):
    pass


@dataclass(repr=False)
class CausalLMOutputWithPast(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: Any = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# The encoder-decoder outputs are their main fields followed by what both report about the encoder and the
# decoder. A dataclass lists the fields of its last base first, so the main fields come from the last base.
@dataclass(repr=False)
class _EncoderDecoderFields(ModelOutput):
    past_key_values: Any = None
    decoder_hidden_states: tuple[torch.Tensor, ...] | None = None
    decoder_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None
    encoder_last_hidden_state: torch.Tensor | None = None
    encoder_hidden_states: tuple[torch.Tensor, ...] | None = None
    encoder_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass(repr=False)
class _LastHiddenState(ModelOutput):
    last_hidden_state: torch.Tensor | None = None


@dataclass(repr=False)
class _LossAndLogits(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


@dataclass(repr=False)
class Seq2SeqModelOutput(_EncoderDecoderFields, _LastHiddenState):
    pass


@dataclass(repr=False)
class Seq2SeqLMOutput(_EncoderDecoderFields, _LossAndLogits):
    pass
