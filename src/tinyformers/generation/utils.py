"""``generate``: greedy, sampling and beam search over any decoder that speaks the protocol below.

The model protocol (all a decoder needs to provide; this package never looks at the model's type):

* ``model.allocate_cache(batch_size, max_length) -> StaticKVCache`` — preallocated keys/values for every layer.
* ``model.next_token_logits(input_ids, position_ids, cache) -> Tensor[batch, vocab]`` — run the new tokens
  ``input_ids [batch, n]`` at ``position_ids [batch, n]`` through the model, writing their keys/values into
  ``cache`` (after ``cache.length`` positions, masked by ``cache.attention_mask``) and return the logits of the
  last position only.
* ``model.config`` — for ``max_position_embeddings`` (the longest sequence, if the model has a limit) and the
  special token ids; ``model.generation_config`` — the defaults from the model folder (may be absent).

The first call (prefill) feeds the whole prompt; each later call feeds one token per row. The loop ends when
every row is finished (eos token or stop string) or ``max_length`` is reached.

A row that finishes leaves the batch: its place in the output is padded with ``pad_token_id`` (what
transformers returns) and later steps run the model on the running rows only, after
``cache.reorder(running_rows)`` compacted the cache. Finished rows stay in the batch, fed the pad token as in
transformers, when every row's scores are requested (``output_scores``/``output_logits``), when the model sets
``model.fixed_batch_decoding = True`` (e.g. a compiled step whose shapes must not change), or when the cache
overrides ``reorder`` without declaring ``reorder_can_drop_rows = True`` (see ``can_drop_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..outputs import ModelOutput
from .cache import StaticKVCache
from .config import GENERATION_CONFIG_NAME, GenerationConfig
from .logits_process import LogitsProcessor, apply_processors, build_processors
from .sampling import pick_tokens
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


@torch.inference_mode()
def generate(
    model,
    input_ids=None,
    attention_mask=None,
    generation_config=None,
    streamer=None,
    tokenizer=None,
    **kwargs,
):
    """Continue each row of ``input_ids``; returns ids ``[rows, prompt + new]`` (or an output object with
    ``return_dict_in_generate=True``). Keyword arguments are ``GenerationConfig`` fields (``max_new_tokens``,
    ``do_sample``, ``num_beams``, ``stop_strings``, ...); anything else is a ``TypeError``, and a transformers
    option that is not implemented a ``ValueError``. ``tokenizer`` is needed only for ``stop_strings``."""
    if getattr(model.config, "is_encoder_decoder", False):  # encode once; the loops below run the decoder
        from .seq2seq import start_decoding

        model, input_ids, attention_mask = start_decoding(
            model, input_ids, attention_mask, generation_config, kwargs
        )
    p = prepare(model, input_ids, attention_mask, generation_config, kwargs, tokenizer)
    if p.max_length == p.input_ids.shape[1]:  # max_new_tokens=0
        return p.input_ids
    if p.gc.num_beams > 1:
        if streamer is not None:
            raise ValueError(
                "streamer cannot be used with beam search (beams change until the end); use num_beams=1"
            )
        if p.gc.stop_strings is not None:
            raise ValueError("stop_strings is not supported with beam search here; use num_beams=1")
        from .beam_search import beam_search

        return beam_search(model, p)
    return sample(model, p, streamer)


def sample(model, p: Prepared, streamer=None):
    """Greedy (argmax) or multinomial sampling, one token per row per step.

    A step costs the model call plus ~8 small tensor ops (processors, argmax, writing the token, the stop check
    and its one host sync); inputs are slices of ``RunningBatch``'s preallocated buffers."""
    gc = p.gc
    rows, prompt = p.input_ids.shape
    keep_scores = gc.return_dict_in_generate and gc.output_scores
    keep_logits = gc.return_dict_in_generate and gc.output_logits
    scores_seen, logits_seen = [], []
    cache = model.allocate_cache(rows, p.max_length)
    cache.set_padding(p.attention_mask)
    # Finished rows can leave the batch only where transformers pads them (an eos is set) and nobody wants
    # their per-step scores.
    drop_finished = p.eos is not None and not (keep_scores or keep_logits) and can_drop_rows(model, cache)
    batch = RunningBatch(p, drop_finished)
    if streamer is not None:
        streamer.put(p.input_ids.cpu())

    logits = model.next_token_logits(p.input_ids, p.position_ids, cache)
    length = prompt
    while True:
        if logits.dtype != torch.float32:  # .float() on float32 is still an op call (~2 us a step)
            logits = logits.float()
        if keep_logits:  # processors may change scores in place: keep the model's own logits apart
            logits_seen.append(logits)
            logits = logits.clone()
        scores = apply_processors(p.processors, batch.ids[:, :length], logits)
        if keep_scores:
            scores_seen.append(scores)
        token = batch.next_tokens(scores, gc.do_sample)
        batch.ids[:, length] = token
        length += 1
        if streamer is not None:
            streamer.put(batch.all_rows(token).cpu())
        if p.stops is not None:
            done = p.stops.done(batch.ids[:, :length], token)
            if batch.finish(done, cache, p.processors):
                break
        if length == p.max_length:
            break
        # Slices of preallocated buffers: the step creates no input tensors of its own.
        step = length - 1 - prompt
        logits = model.next_token_logits(
            batch.ids[:, length - 1 : length], batch.positions[:, step : step + 1], cache
        )
    if streamer is not None:
        streamer.end()
    sequences = batch.output()[:, :length]
    if not gc.return_dict_in_generate:
        return sequences
    return GenerateDecoderOnlyOutput(
        sequences=sequences,
        scores=tuple(scores_seen) if keep_scores else None,
        logits=tuple(logits_seen) if keep_logits else None,
        past_key_values=cache,
    )


def can_drop_rows(model, cache) -> bool:
    """Whether finished rows may leave the batch: not if the model needs a fixed batch
    (``model.fixed_batch_decoding``), nor for a cache class that overrides ``reorder`` (it may hold more per-row
    state, written for beams that keep the batch size) unless it says ``reorder_can_drop_rows = True``."""
    if getattr(model, "fixed_batch_decoding", False):
        return False
    return type(cache).reorder is StaticKVCache.reorder or getattr(cache, "reorder_can_drop_rows", False)


class RunningBatch:
    """The rows still being generated: their ids, their position ids and where they go in the output.

    ``out`` [rows, max_length] is the result, preallocated with the prompt and ``pad_token_id`` after it, so a
    row that stops early is already padded. While every row runs, ``ids`` *is* ``out`` and ``rows`` is None:
    a step indexes nothing. When rows finish with ``drop_finished``, ``ids`` becomes a compact copy of the
    running rows (``rows`` says where each belongs in ``out``), the cache and the processors' row state follow,
    and later steps compute only those rows. Without ``drop_finished``, finished rows stay, fed the pad token.
    """

    def __init__(self, p: Prepared, drop_finished: bool):
        total, prompt = p.input_ids.shape
        device = p.input_ids.device
        self.out = torch.full((total, p.max_length), p.pad if p.pad is not None else 0, device=device)
        self.out[:, :prompt] = p.input_ids
        self.ids = self.out
        # The position id of every step, made once: a step slices a column instead of computing one.
        self.positions = p.position_ids[:, -1:] + torch.arange(1, p.max_length - prompt + 1, device=device)
        self.rows: torch.Tensor | None = None
        self.total, self.pad, self.drop_finished = total, p.pad, drop_finished
        # When finished rows stay: which rows still run, and whether finished ones are fed padding (as
        # transformers: only when an eos is set; a row stopped by a stop string alone keeps generating).
        self.unfinished = torch.ones(total, dtype=torch.bool, device=device)
        self.pad_finished = p.eos is not None

    def next_tokens(self, scores: torch.Tensor, do_sample: bool) -> torch.Tensor:
        if not do_sample or self.rows is None:
            token = pick_tokens(scores, do_sample)
        else:
            token = sample_running_rows(scores.softmax(-1), self.rows, self.total)
        if self.pad_finished and not self.drop_finished:
            token = torch.where(self.unfinished, token, self.pad)
        return token

    def all_rows(self, token: torch.Tensor) -> torch.Tensor:
        """This step's token of every row of the batch (pad for the rows that left it), e.g. for a streamer."""
        if self.rows is None:
            return token
        column = torch.full((self.total,), self.pad, dtype=token.dtype, device=token.device)
        return column.index_copy_(0, self.rows, token)

    def finish(self, done: torch.Tensor, cache, processors: list[LogitsProcessor]) -> bool:
        """Retire the rows ``done`` marks; True when no row is left running."""
        if not self.drop_finished:
            self.unfinished &= ~done
            return not bool(self.unfinished.any())
        if not bool(done.any()):  # the one host sync of a step: whether anything finished
            return False
        if bool(done.all()):
            return True
        self._drop(done, cache, processors)
        return False

    def _drop(self, done: torch.Tensor, cache, processors: list[LogitsProcessor]) -> None:
        # A few copies once per finishing event, against a full row of model work saved at every later step.
        keep = (~done).nonzero().squeeze(1)
        if self.rows is None:  # ids was the output itself: the finished rows are already in place
            self.rows = keep
        else:
            self.out[self.rows[done]] = self.ids[done]
            self.rows = self.rows[keep]
        self.ids = self.ids[keep]
        self.positions = self.positions[keep]
        cache.reorder(keep)
        for processor in processors:
            processor.select_rows(keep)

    def output(self) -> torch.Tensor:
        if self.rows is not None:
            self.out[self.rows] = self.ids
        return self.out


def sample_running_rows(probs: torch.Tensor, rows: torch.Tensor, total: int) -> torch.Tensor:
    """``torch.multinomial(probs, 1)`` for the running ``rows`` of a ``total``-row batch, drawing the random
    numbers a draw for the whole batch would: transformers samples its finished rows too, and following its
    random stream keeps the sampled ids identical. (One multinomial sample is ``argmax(probs / noise)`` with
    one Exp(1) draw per entry — that is how torch computes it.)"""
    noise = probs.new_empty((total, probs.shape[1])).exponential_(1)
    return (probs / noise.index_select(0, rows)).argmax(-1)


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

    def generate(
        self,
        input_ids=None,
        attention_mask=None,
        generation_config=None,
        streamer=None,
        tokenizer=None,
        **kwargs,
    ):
        return generate(self, input_ids, attention_mask, generation_config, streamer, tokenizer, **kwargs)
