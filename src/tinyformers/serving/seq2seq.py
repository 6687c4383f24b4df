"""The server's cache rows for an encoder-decoder model (T5): each row also holds its request's encoder output.

A request's prompt is the text to encode. When it joins, the encoder runs on it once and every decoder layer's
cross-attention keys and values are projected into that request's row of buffers ``[rows, heads, max_source,
head_dim]`` allocated at start (``max_source`` is the server's context, the same bound as the decoder's); the
decoder starts from the start token, as ``generate`` does (the answer is what follows it). Both go through the
encoder-decoder protocol of ``generation.seq2seq`` (``encode``, ``allocate_cache``), so nothing here is T5's.

The decoder's own keys and values live on ``SlotCache``'s shared timeline like a causal model's. T5's position
bias depends only on the distance between query and key, so a row that joined later sees the bias a one-row
``generate`` would, once the timeline before its start is masked (``key_mask``). A step attends over the longest
running prompt; the padding of shorter ones is masked (none when all are as long, as in ``generate``). Requests
that join together (``scheduler.prefill_groups``, by prompt length, so this padding stays bounded there too) run
their start tokens in one decoder forward; each prompt is encoded alone, exactly as ``generate`` on it.
"""

from __future__ import annotations

import torch

from ..generation.prepare import resolve_config
from ..generation.seq2seq import EncoderDecoderCache
from .slots import CacheView, SlotCache


class EncoderDecoderSlots(SlotCache):
    default_length = 512  # T5 has no position limit; it was trained on 512-token inputs

    def __init__(self, model, rows: int, max_length: int):
        gc, _ = resolve_config(model, None, {})
        start = gc.decoder_start_token_id if gc.decoder_start_token_id is not None else gc.bos_token_id
        if start is None:
            raise ValueError(
                "this encoder-decoder model has no decoder_start_token_id (the decoder's first token); set it "
                "in the model's config.json (0 for T5)"
            )
        self.model, self.start_token = model, start
        super().__init__(model, rows, max_length)
        self.source_mask = torch.zeros(rows, max_length, dtype=torch.bool, device=self.keys[0].device)
        self.source_lengths = [0] * rows  # each row's prompt tokens

    def _allocate(self, model, rows: int, max_length: int) -> EncoderDecoderCache:
        # Any encoder output of the right width, dtype and device gives buffers of the right shapes: each request
        # overwrites its row's first prompt-length positions, and a step never reads a row beyond them unmasked.
        one = model.encode(torch.zeros((1, 1), dtype=torch.long, device=model.device), None)
        full = model.allocate_cache(rows, max_length, one.expand(rows, max_length, -1), None)
        self.cross_kv, self.self_attention_mask = full.cross_kv, full.self_attention_mask
        return full

    def warm_up(self, model) -> None:
        """Nothing: a decoder forward needs a request's encoded prompt in its row."""

    def decoder_prompt(self, prompt_ids: list[int]) -> list[int]:
        return [self.start_token]

    def room(self, prompt_ids: list[int]) -> int:
        return self.limit - 1  # the start token takes one decoder position

    def check_fits(self, prompt_ids: list[int], new_tokens: int) -> None:
        if len(prompt_ids) > self.limit:
            raise ValueError(
                f"the prompt has {len(prompt_ids)} tokens but this server takes prompts of at most {self.limit} "
                "tokens (--max-context); shorten the prompt"
            )
        if new_tokens > self.room(prompt_ids):
            raise ValueError(
                f"max_tokens is {new_tokens} but answers here have at most {self.room(prompt_ids)} tokens "
                f"(--max-context {self.limit}, less the decoder's start token); lower max_tokens"
            )

    def prefill_view(
        self, prompt_lengths: list[int], prompts: list[list[int]] | None = None, new_tokens: int | None = None
    ) -> CacheView:
        view = super().prefill_view(prompt_lengths, new_tokens=new_tokens)
        first = self.running - len(prompt_lengths)
        for row, prompt in enumerate(prompts, first):
            self._encode(row, prompt)
        return self._conditioned(view, first, self.running)

    def _encode(self, row: int, prompt: list[int]) -> None:
        """Run the encoder on ``prompt`` alone (as ``generate`` on it would) into ``row``'s cross-attention."""
        n = len(prompt)
        ids = torch.tensor([prompt], dtype=torch.long, device=self.keys[0].device)
        encoded = self.model.allocate_cache(1, 1, self.model.encode(ids, None), None)  # projects them once
        for (keys, values), (k, v) in zip(self.cross_kv, encoded.cross_kv):
            keys[row, :, :n], values[row, :, :n] = k[0], v[0]
        self.source_mask[row] = False
        self.source_mask[row, :n] = True
        self.source_lengths[row] = n

    def step_view(self) -> CacheView:
        return self._conditioned(super().step_view(), 0, self.running)

    def release(self, row: int) -> int | None:
        moved = super().release(row)
        if moved is not None:
            n = self.source_lengths[moved]
            for keys, values in self.cross_kv:
                keys[row, :, :n], values[row, :, :n] = keys[moved, :, :n], values[moved, :, :n]
            self.source_mask[row] = self.source_mask[moved]
            self.source_lengths[row] = n
        return moved

    def _conditioned(self, view: CacheView, first: int, end: int) -> CacheView:
        """``view`` with what the decoder's cross-attention reads for rows ``first:end``: their keys and values
        up to the longest prompt among them, and which of those positions are padding."""
        lengths = self.source_lengths[first:end]
        longest = max(lengths)
        view.cross_kv = [(k[first:end, :, :longest], v[first:end, :, :longest]) for k, v in self.cross_kv]
        same = min(lengths) == longest
        view.encoder_mask = None if same else self.source_mask[first:end, None, None, :longest]
        view.self_attention_mask = self.self_attention_mask
        return view
