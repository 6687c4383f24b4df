"""What every decoding loop shares: the arguments of ``generate`` worked out once (``prepare`` -> ``Prepared``)
and the output objects the loops return with ``return_dict_in_generate=True``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..outputs import ModelOutput
from .config import GenerationConfig
from .logits_process import LogitsProcessor, build_processors
from .stopping import StopConditions, StopStrings


@dataclass(repr=False)
class GenerateDecoderOnlyOutput(ModelOutput):
    sequences: torch.Tensor | None = None
    scores: tuple[torch.Tensor, ...] | None = None
    logits: tuple[torch.Tensor, ...] | None = None
    past_key_values: Any = None


@dataclass(repr=False)
class GenerateBeamDecoderOnlyOutput(ModelOutput):
    sequences: torch.Tensor | None = None
    sequences_scores: torch.Tensor | None = None
    scores: tuple[torch.Tensor, ...] | None = None
    logits: tuple[torch.Tensor, ...] | None = None
    beam_indices: torch.Tensor | None = None
    past_key_values: Any = None


@dataclass
class Prepared:
    """Everything the decoding loops share, worked out once from the arguments."""

    gc: GenerationConfig
    input_ids: torch.Tensor  # [rows, prompt], rows = batch * max(num_beams, num_return_sequences)
    attention_mask: torch.Tensor | None  # None when nothing is padded
    position_ids: torch.Tensor
    max_length: int
    eos: torch.Tensor | None  # 1-D
    pad: int | None
    processors: list[LogitsProcessor]
    stops: StopConditions | None  # None when no row can finish before max_length


def resolve_config(
    model, generation_config: GenerationConfig | None, kwargs: dict
) -> tuple[GenerationConfig, bool]:
    """kwargs > ``generation_config`` > ``model.generation_config`` > defaults; also whether max_length was left default."""
    gc = getattr(model, "generation_config", None) or GenerationConfig.from_model_config(model.config)
    gc.warn_unsupported()
    if generation_config is not None:
        generation_config.check_supported()
        gc = generation_config.merged_over(gc)
    gc = GenerationConfig().merged_over(gc).update(**kwargs)
    default_max_length = gc.max_length is None
    gc = gc.with_defaults()
    gc.validate()
    return gc, default_max_length


def prepare(model, input_ids, attention_mask, generation_config, kwargs, tokenizer=None) -> Prepared:
    gc, default_max_length = resolve_config(model, generation_config, kwargs)
    if input_ids is None:
        input_ids = torch.empty((1, 0), dtype=torch.long, device=model.device)
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(
            "input_ids must be a [batch, seq_len] tensor of token ids (use ids[None] for one sequence)"
        )
    if input_ids.shape[1] == 0:  # empty prompts: each row starts from bos (attention_mask says nothing)
        input_ids = torch.full((len(input_ids), 1), bos_id(gc), dtype=torch.long, device=input_ids.device)
        attention_mask = None
    eos = gc.eos_token_id
    eos = (
        None
        if eos is None
        else torch.tensor([eos] if isinstance(eos, int) else list(eos), device=input_ids.device)
    )
    pad = gc.pad_token_id if gc.pad_token_id is not None else (int(eos[0]) if eos is not None else None)
    if attention_mask is None and pad is not None and (eos is None or pad not in eos.tolist()):
        attention_mask = (
            input_ids != pad
        ).long()  # infer padding, as transformers does, when pad is unambiguous
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {list(attention_mask.shape)} but input_ids {list(input_ids.shape)}; "
                "pass the mask the tokenizer returned with these ids"
            )
        input_ids, attention_mask = left_aligned(input_ids, attention_mask, gc)
        if bool(attention_mask.all()):
            attention_mask = None
        elif pad is None:
            raise ValueError(
                "a padded batch needs a pad token to fill finished rows; pass pad_token_id=... "
                "(e.g. tokenizer.eos_token_id) or set model.generation_config.pad_token_id"
            )

    prompt = input_ids.shape[1]
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and prompt > limit:
        raise ValueError(
            f"the prompt has {prompt} tokens but the model takes at most {limit}; truncate the prompt "
            "(tokenize with truncation=True, max_length=...)"
        )
    if gc.max_new_tokens is not None:
        max_length = prompt + gc.max_new_tokens
    elif default_max_length:  # as transformers: 20 new tokens by default, within the model's limit
        max_length = min(prompt + gc.max_length, limit) if limit else prompt + gc.max_length
    else:
        max_length = gc.max_length
        if prompt >= max_length:
            raise ValueError(
                f"the prompt has {prompt} tokens but max_length is {max_length}; "
                "pass max_new_tokens=... (tokens to add) instead of max_length"
            )
    if limit is not None and max_length > limit:
        raise ValueError(
            f"prompt ({prompt} tokens) + new tokens ({max_length - prompt}) exceed the model's {limit} positions; "
            "lower max_new_tokens or shorten the prompt"
        )

    expand = max(gc.num_beams, gc.num_return_sequences)
    if expand > 1:
        input_ids = input_ids.repeat_interleave(expand, dim=0)
        attention_mask = (
            attention_mask.repeat_interleave(expand, dim=0) if attention_mask is not None else None
        )
    if attention_mask is not None:
        position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
        pad_skip = (attention_mask != 0).int().argmax(1)  # where each row's real tokens start
    else:
        position_ids = torch.arange(prompt, device=input_ids.device).expand_as(input_ids)
        pad_skip = None
    if gc.min_new_tokens is not None:  # as transformers: min_length then covers both
        gc.min_length = prompt + gc.min_new_tokens
    processors = build_processors(gc, prompt, max_length, eos, pad_skip)
    stop_strings = None
    if gc.stop_strings is not None:
        if tokenizer is None:
            raise ValueError(
                "stop_strings needs the model's tokenizer to read the generated text; "
                "pass generate(..., stop_strings=[...], tokenizer=tokenizer)"
            )
        stop_strings = StopStrings(gc.stop_strings, tokenizer)
    stops = StopConditions(eos, stop_strings) if eos is not None or stop_strings is not None else None
    return Prepared(gc, input_ids, attention_mask, position_ids, max_length, eos, pad, processors, stops)


def bos_id(gc: GenerationConfig) -> int:
    if gc.bos_token_id is None:
        raise ValueError(
            "an empty prompt starts from the model's bos token, but this model has none (no bos_token_id in "
            "its config); give a prompt"
        )
    return gc.bos_token_id


def left_aligned(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, gc: GenerationConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's real tokens moved to its end, in order, and its padding to its start; a row with no real
    token gets the bos token last (an empty prompt, as ``input_ids=None``).

    Every loop appends a row's next token after the last column, so a right-padded row (what a tokenizer with
    ``padding_side="right"`` returns) would continue after its padding: transformers does that, with a
    warning, and the continuation is wrong. Here it is the continuation of the row left-padded — the same
    ids — and the returned sequences hold the prompt as it ran, padding first."""
    mask = attention_mask.long()
    if bool((mask[:, 1:] >= mask[:, :-1]).all()):  # already left-padded (or not padded at all)
        aligned_ids, aligned_mask = input_ids, mask
    else:
        order = mask.sort(dim=1, stable=True).indices  # padding (0) first, each part kept in order
        aligned_ids, aligned_mask = input_ids.gather(1, order), mask.gather(1, order)
    empty = aligned_mask[:, -1] == 0
    if bool(empty.any()):
        aligned_ids, aligned_mask = aligned_ids.clone(), aligned_mask.clone()
        aligned_ids[empty, -1] = bos_id(gc)
        aligned_mask[empty, -1] = 1
    return aligned_ids, aligned_mask.to(attention_mask.dtype)
