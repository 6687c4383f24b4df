"""Encoder-decoder generation: encode the input once, then run the shared decoding loops of ``generate``.

``generate`` calls ``start_decoding`` when ``model.config.is_encoder_decoder`` is set. It runs the encoder and
returns a ``ConditionedDecoder`` (the decoder bound to that encoder output, speaking the decoder-only protocol)
with the decoder's first ids (``decoder_start_token_id``, as transformers, so outputs start with it). Greedy,
sampling and beam search then work unchanged: beams and samples repeat each input's encoder rows.

The model protocol, on top of ``config.is_encoder_decoder = True``:

* ``model.encode(input_ids, attention_mask) -> Tensor[batch, source, hidden]`` — the encoder's output.
* ``model.allocate_cache(rows, max_length, encoder_states, encoder_mask) -> EncoderDecoderCache`` — the decoder's
  self-attention cache plus each layer's cross-attention keys/values, projected once from the encoder output
  (``rows`` is a multiple of the batch: each input's rows are consecutive).
* ``model.next_token_logits(decoder_ids, position_ids, cache)`` — as for a decoder-only model.
"""

from __future__ import annotations

import torch

from .cache import StaticKVCache
from .prepare import resolve_config


class EncoderDecoderCache(StaticKVCache):
    """The decoder's self-attention cache, plus what stays fixed while decoding one batch: per layer the
    cross-attention keys and values ``[rows, heads, source, head_dim]``, the encoder padding mask
    (``[rows, 1, 1, source]`` bool, None when nothing is padded) and, for models with a position bias, the
    additive self-attention mask of every (query, key) pair up to ``max_length``, which each step slices."""

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        max_length: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        *,
        cross_kv: list[tuple[torch.Tensor, torch.Tensor]],
        encoder_mask: torch.Tensor | None = None,
        self_attention_mask: torch.Tensor | None = None,
        rows_per_input: int = 1,
    ):
        super().__init__(num_layers, batch_size, num_heads, max_length, head_dim, dtype, device)
        self.cross_kv = cross_kv
        self.encoder_mask = encoder_mask
        self.self_attention_mask = self_attention_mask
        self.rows_per_input = rows_per_input

    def reorder(self, rows: torch.Tensor) -> None:
        """Row ``i`` becomes the old row ``rows[i]`` (beams following their parents, or fewer rows when finished
        rows leave the batch). The encoder side moves only when some row takes another input's place: beam
        search moves rows among the beams of one input, whose encoder rows are equal."""
        super().reorder(rows)
        group, old_rows = self.rows_per_input, self.cross_kv[0][0].shape[0] if self.cross_kv else 0
        same_inputs = len(rows) == old_rows and torch.equal(
            rows // group, torch.arange(len(rows), device=rows.device) // group
        )
        if same_inputs:
            return
        self.cross_kv = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.cross_kv]
        if self.encoder_mask is not None:
            self.encoder_mask = self.encoder_mask.index_select(0, rows)
        self.rows_per_input = 1  # rows no longer come in equal groups


class ConditionedDecoder:
    """The decoder of an encoder-decoder ``model`` bound to one encoded batch, seen by the decoding loops as a
    decoder-only model."""

    def __init__(self, model, encoder_states: torch.Tensor, encoder_mask: torch.Tensor | None):
        self.model, self.encoder_states, self.encoder_mask = model, encoder_states, encoder_mask
        self.config = model.config
        self.generation_config = getattr(model, "generation_config", None)

    @property
    def device(self) -> torch.device:
        return self.encoder_states.device

    def allocate_cache(self, rows: int, max_length: int) -> EncoderDecoderCache:
        return self.model.allocate_cache(rows, max_length, self.encoder_states, self.encoder_mask)

    def next_token_logits(self, input_ids, position_ids, cache: EncoderDecoderCache) -> torch.Tensor:
        return self.model.next_token_logits(input_ids, position_ids, cache)


def start_decoding(model, input_ids, attention_mask, generation_config, kwargs: dict):
    """Encode ``input_ids`` once; return ``(decoder, decoder_ids, decoder_mask)`` for the decoding loops.

    ``kwargs`` may hold ``decoder_input_ids`` (a start of the output to continue); it is taken out of it.
    """
    decoder_ids = kwargs.pop("decoder_input_ids", None)
    if input_ids is None or not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(
            "an encoder-decoder model needs input_ids, a [batch, seq_len] tensor of the text to encode; "
            "pass tokenizer(text, return_tensors='pt').input_ids"
        )
    gc, _ = resolve_config(model, generation_config, dict(kwargs))
    if attention_mask is None:
        attention_mask = encoder_padding(input_ids, gc.pad_token_id, gc.eos_token_id)
    elif attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask has shape {list(attention_mask.shape)} but input_ids {list(input_ids.shape)}; "
            "pass the mask the tokenizer returned with these ids"
        )
    start = gc.decoder_start_token_id if gc.decoder_start_token_id is not None else gc.bos_token_id
    if start is None:
        raise ValueError(
            "generate() on an encoder-decoder model needs decoder_start_token_id (the decoder's first token); "
            "pass decoder_start_token_id=... (0 for T5) or set it in the model's config"
        )
    encoder_states = model.encode(input_ids, attention_mask)
    first = torch.full((input_ids.shape[0], 1), start, dtype=torch.long, device=input_ids.device)
    if decoder_ids is None:
        decoder_ids = first
    elif not bool((decoder_ids[:, 0] == start).all()):  # as transformers: the start token is prepended
        decoder_ids = torch.cat((first, decoder_ids), dim=1)
    # Decoder ids are never padding (the start token is often the pad id): say so, or it would be inferred.
    return (
        ConditionedDecoder(model, encoder_states, attention_mask),
        decoder_ids,
        torch.ones_like(decoder_ids),
    )


def encoder_padding(input_ids: torch.Tensor, pad: int | None, eos) -> torch.Tensor | None:
    """The mask transformers infers for encoder inputs: pad tokens are padding, unless pad is also an eos."""
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    if pad is None or pad in eos:
        return None
    mask = (input_ids != pad).long()
    return None if bool(mask.all()) else mask
