"""T5's side of encoder-decoder generation (the protocol of ``tinyformers.generation.seq2seq``).

The encoder runs once per input (``T5PreTrainedModel.encode``); then every step runs the decoder over one new
token. For those steps the decoder's keys and values go in a static cache, its cross-attention keys and values
are projected once, the position bias + causal mask of every step is one table sliced per step, and the decoder's
matrices are stored in the layout that one-row products run fastest on. ``compile_decoding()`` runs each step as
one compiled graph, as for decoder-only models (``models/compiled.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..generation import GenerationMixin
from ..generation.seq2seq import EncoderDecoderCache
from .compiled import CompiledDecodeStep, SlotCache, SpeedOptions, written_positions
from .inner_product import decoding_step
from .layers import decode_layout, padding_mask
from .t5_layers import additive_mask


def decode_step(model, input_ids, keys, values, key_mask, slot, self_attention_mask, cross_kv, encoder_mask):
    """One token per row through T5's decoder and head; the function ``torch.compile`` traces. As the causal
    step, it attends over the positions written so far (``key_mask``'s columns, ``written_positions``): the
    step's row of the bias + causal table, cut to them."""
    written = key_mask.shape[1]
    bias = self_attention_mask.index_select(2, slot)[..., :written]
    mask = additive_mask(bias, key_mask[:, None, None, :])
    cache = SlotCache(keys, values, slot, written)
    x = model.decoder.run(model.shared(input_ids), mask, cache, cross_kv, encoder_mask)
    return model.lm_logits(x[:, -1])


class CompiledT5Step(CompiledDecodeStep):
    """T5's decoding steps through the compiled ``decode_step`` (``compile_decoding()``); the cache comes from
    ``T5Decoding.allocate_cache``, one bucket long."""

    function = staticmethod(decode_step)

    def inputs(self, input_ids, position_ids, cache: EncoderDecoderCache, key_mask, slot) -> tuple:
        # the table's columns for the cache's positions (a server's cache views can be shorter than the table)
        mask = cache.self_attention_mask[..., : cache.max_length]
        key_mask = written_positions(key_mask, cache)
        return input_ids, cache.keys, cache.values, key_mask, slot, mask, cache.cross_kv, cache.encoder_mask


class T5Decoding(SpeedOptions, GenerationMixin):
    """Mixin for T5 with an LM head (``decoder``, ``shared``, ``lm_head`` and ``lm_logits``): ``generate``, and
    the speed options of ``SpeedOptions`` (the compiled step covers the decoder; the encoder runs once per input
    and stays eager)."""

    compiled_step_type = CompiledT5Step

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)  # every dtype or device change (.to, loading) re-picks the layout
        self.decoding_layout()
        return self

    def decoding_layout(self) -> None:
        # With MKL (Intel's CPUs, or a torch without oneDNN), one-row products with a matrix stored [in, out] are
        # faster where it widens its input and slower where it narrows it, so only the widening ones move
        # (benchmarks/README.md); oneDNN and the compiled matvec stream [out, in] rows (``decode_layout`` keeps
        # those). The encoder, run once per input over many rows, keeps transformers' layout and stays
        # bit-identical to it.
        decoder, head = getattr(self, "decoder", None), getattr(self, "lm_head", None)
        matrices = [m for m in decoder.modules() if isinstance(m, nn.Linear)] if decoder is not None else []
        if isinstance(head, nn.Linear) and head.weight is not self.shared.weight:  # a tied head stays rows
            matrices.append(head)
        for module in matrices:
            if module.out_features > module.in_features or module.compiled_matvec:
                decode_layout(module)

    def allocate_cache(self, rows: int, max_length: int, encoder_states, encoder_mask) -> EncoderDecoderCache:
        """Decoder caches for ``rows`` sequences of up to ``max_length`` tokens, each encoder row serving
        ``rows // batch`` consecutive sequences (beams, samples)."""
        if self._compiled_step is not None:
            max_length = self._compiled_step.bucket(max_length)
        per_input = rows // encoder_states.shape[0]
        cross_kv = [
            tuple(t.repeat_interleave(per_input, 0) for t in block.cross.project(encoder_states))
            for block in self.decoder.blocks
        ]
        # Bias + causal mask for every (query, key) pair up to max_length: each step slices its rows.
        causal = torch.ones(max_length, max_length, dtype=torch.bool, device=encoder_states.device).tril()
        encoder_mask = padding_mask(encoder_mask)
        c, dtype, device = self.config, encoder_states.dtype, encoder_states.device
        return EncoderDecoderCache(
            *(c.num_decoder_layers, rows, c.num_heads, max_length, c.d_kv, dtype, device),
            cross_kv=cross_kv,
            encoder_mask=None if encoder_mask is None else encoder_mask.repeat_interleave(per_input, 0),
            self_attention_mask=additive_mask(self.decoder.position_bias(max_length), causal),
            rows_per_input=per_input,
        )

    @decoding_step
    def next_token_logits(self, input_ids, position_ids, cache: EncoderDecoderCache) -> torch.Tensor:
        if self._compiled_step is not None and input_ids.shape[1] == 1:
            return self._compiled_step(input_ids, position_ids, cache)
        # Positions enter through the relative bias, sliced from the table by the cache length.
        start, end = cache.length, cache.length + input_ids.shape[1]
        mask = cache.self_attention_mask[:, :, start:end, :end]
        if cache.key_mask is not None:  # rows that start later on a shared timeline (the server's cache rows)
            mask = additive_mask(mask, cache.key_mask[:, None, None, :end])
        x = self.decoder.run(self.shared(input_ids), mask, cache, cache.cross_kv, cache.encoder_mask)
        return self.lm_logits(x[:, -1])
