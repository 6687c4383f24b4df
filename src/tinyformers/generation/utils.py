"""``generate``: greedy, sampling and beam search over any decoder that speaks the protocol below.

The model protocol (all a decoder needs to provide; this package never looks at the model's type):

* ``model.allocate_cache(batch_size, max_length) -> StaticKVCache`` — preallocated keys/values for every layer.
* ``model.next_token_logits(input_ids, position_ids, cache) -> Tensor[batch, vocab]`` — run the new tokens
  ``input_ids [batch, n]`` at ``position_ids [batch, n]`` through the model, writing their keys/values into
  ``cache`` (after ``cache.length`` positions, masked by ``cache.attention_mask``) and return the logits of the
  last position only.
* ``model.config`` — for ``max_position_embeddings`` (the longest sequence, if the model has a limit) and the
  special token ids; ``model.generation_config`` — the defaults from the model folder (may be absent).

The first call (prefill) feeds the whole prompt; each later call feeds one token per row. Finished rows are
fed the pad token, as in transformers, and the loop ends when every row is finished or ``max_length`` is reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..outputs import ModelOutput
from .config import GENERATION_CONFIG_NAME, GenerationConfig
from .logits_process import apply_processors, build_processors


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
    processors: list


def resolve_config(
    model, generation_config: GenerationConfig | None, kwargs: dict
) -> tuple[GenerationConfig, bool]:
    """kwargs > ``generation_config`` > ``model.generation_config`` > defaults; also whether max_length was left default."""
    gc = getattr(model, "generation_config", None) or GenerationConfig.from_model_config(model.config)
    if generation_config is not None:
        gc = generation_config.merged_over(gc)
    gc = GenerationConfig().merged_over(gc).update(**kwargs)
    default_max_length = gc.max_length is None
    gc = gc.with_defaults()
    gc.validate()
    return gc, default_max_length


def prepare(model, input_ids, attention_mask, generation_config, kwargs) -> Prepared:
    gc, default_max_length = resolve_config(model, generation_config, kwargs)
    if input_ids is None:
        if gc.bos_token_id is None:
            raise ValueError("generate() needs input_ids, or a bos_token_id to start from; pass input_ids")
        input_ids = torch.full((1, 1), gc.bos_token_id, dtype=torch.long, device=model.device)
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(
            "input_ids must be a [batch, seq_len] tensor of token ids (use ids[None] for one sequence)"
        )
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
    if gc.min_new_tokens is not None:
        gc.min_length = prompt + gc.min_new_tokens
    processors = build_processors(gc, prompt, eos, pad_skip)
    return Prepared(gc, input_ids, attention_mask, position_ids, max_length, eos, pad, processors)


@torch.inference_mode()
def generate(model, input_ids=None, attention_mask=None, generation_config=None, streamer=None, **kwargs):
    """Continue each row of ``input_ids``; returns ids ``[rows, prompt + new]`` (or an output object with
    ``return_dict_in_generate=True``). Keyword arguments are ``GenerationConfig`` fields (``max_new_tokens``,
    ``do_sample``, ``num_beams``, ...); anything else is a ``TypeError``."""
    p = prepare(model, input_ids, attention_mask, generation_config, kwargs)
    if p.max_length == p.input_ids.shape[1]:  # max_new_tokens=0
        return p.input_ids
    if p.gc.num_beams > 1:
        if streamer is not None:
            raise ValueError(
                "streamer cannot be used with beam search (beams change until the end); use num_beams=1"
            )
        from .beam_search import beam_search

        return beam_search(model, p)
    return sample(model, p, streamer)


def sample(model, p: Prepared, streamer=None):
    """Greedy (argmax) or multinomial sampling, one token per row per step."""
    gc, eos = p.gc, p.eos
    rows, prompt = p.input_ids.shape
    if streamer is not None:
        streamer.put(p.input_ids.cpu())
    sequences = torch.empty((rows, p.max_length), dtype=torch.long, device=p.input_ids.device)
    sequences[:, :prompt] = p.input_ids
    keep_scores = gc.return_dict_in_generate and gc.output_scores
    keep_logits = gc.return_dict_in_generate and gc.output_logits
    scores_seen, logits_seen = [], []
    unfinished = torch.ones(rows, dtype=torch.bool, device=sequences.device)

    cache = model.allocate_cache(rows, p.max_length)
    cache.set_padding(p.attention_mask)
    logits = model.next_token_logits(p.input_ids, p.position_ids, cache)
    next_position = p.position_ids[:, -1:] + 1
    length = prompt
    while True:
        logits = logits.float()
        scores = apply_processors(p.processors, sequences[:, :length], logits)
        if keep_scores:
            scores_seen.append(scores)
        if keep_logits:
            logits_seen.append(logits)
        if gc.do_sample:
            token = torch.multinomial(scores.softmax(-1), num_samples=1).squeeze(1)
        else:
            token = scores.argmax(-1)
        if eos is not None:
            token = torch.where(unfinished, token, p.pad)  # finished rows get padding
        sequences[:, length] = token
        length += 1
        if streamer is not None:
            streamer.put(token.cpu())
        if eos is not None:
            unfinished &= ~torch.isin(token, eos)
            if not bool(unfinished.any()):
                break
        if length == p.max_length:
            break
        logits = model.next_token_logits(token[:, None], next_position, cache)
        next_position += 1
    if streamer is not None:
        streamer.end()
    sequences = sequences[:, :length]
    if not gc.return_dict_in_generate:
        return sequences
    return GenerateDecoderOnlyOutput(
        sequences=sequences,
        scores=tuple(scores_seen) if keep_scores else None,
        logits=tuple(logits_seen) if keep_logits else None,
        past_key_values=cache,
    )


class GenerationMixin:
    """``model.generate(...)`` for models that implement the protocol above; delegates to ``generate``.

    ``generation_config`` holds the model's own defaults: read from the folder's ``generation_config.json`` by
    ``from_pretrained``, else derived from the config's token ids; ``save_pretrained`` writes it back.
    """

    _generation_config: GenerationConfig | None = None

    @property
    def generation_config(self) -> GenerationConfig:
        if self._generation_config is None:
            self._generation_config = GenerationConfig.from_model_config(self.config)
        return self._generation_config

    @generation_config.setter
    def generation_config(self, value: GenerationConfig | None) -> None:
        self._generation_config = value

    def load_generation_config(self, directory) -> None:
        """Called by ``from_pretrained`` with the model folder: take its ``generation_config.json`` if present."""
        if (directory / GENERATION_CONFIG_NAME).is_file():
            self.generation_config = GenerationConfig.from_pretrained(directory)

    def generate(self, input_ids=None, attention_mask=None, generation_config=None, streamer=None, **kwargs):
        return generate(self, input_ids, attention_mask, generation_config, streamer, **kwargs)
