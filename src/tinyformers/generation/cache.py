"""A static key/value cache: one preallocated ``[batch, heads, max_length, head_dim]`` buffer per layer.

Decoding writes each step's keys and values in place (slice assignment) and attends over a view of the filled
prefix, so a step allocates no cache memory and concatenates nothing. The cache also carries the padding mask
of the keys (left-padded prompts) and builds the one attention mask every layer of a step shares.
"""

from __future__ import annotations

import torch


def causal_mask(key_mask: torch.Tensor, start: int) -> torch.Tensor:
    """Boolean ``[batch, 1, queries, keys]`` SDPA mask: causal AND real key, for queries at ``start`` onwards.

    ``key_mask`` is ``[batch, keys]`` (True = real token). A pad query also sees itself, so no softmax row is
    empty: an empty row gives NaN, and NaN keys/values written to a cache would poison every later step.
    """
    keys = key_mask.shape[1]
    query_pos = torch.arange(start, keys, device=key_mask.device)[:, None]
    key_pos = torch.arange(keys, device=key_mask.device)[None, :]
    return (key_mask[:, None, None, :] & (key_pos <= query_pos)) | (key_pos == query_pos)


class StaticKVCache:
    """Keys and values of every layer for up to ``max_length`` positions, plus which key positions are padding.

    ``length`` counts the positions written so far (prompt + generated). A model's attention layer calls
    ``update(layer, k, v)`` with the new positions' keys and values and gets back the whole filled prefix; the
    model calls ``advance(n)`` once all layers have written ``n`` new positions.
    """

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        max_length: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ):
        shape = (batch_size, num_heads, max_length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.max_length = max_length
        self.length = 0
        # [batch, max_length] bool, True where a key is a real token; None while nothing is padded (the fast path).
        self.key_mask: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0]

    def get_seq_length(self) -> int:
        return self.length

    def set_padding(self, attention_mask: torch.Tensor | None) -> None:
        """Record the prompt's padding (1 = token, 0 = pad); later positions count as real tokens."""
        if attention_mask is None or bool(attention_mask.all()):
            self.key_mask = None
            return
        self.key_mask = torch.ones(
            self.batch_size, self.max_length, dtype=torch.bool, device=attention_mask.device
        )
        self.key_mask[:, : attention_mask.shape[1]] = attention_mask.bool()

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_length:
            raise ValueError(
                f"the KV cache holds {self.max_length} positions but {end} were requested; "
                "allocate a longer cache (allocate_cache(batch, max_length))"
            )
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def attention_mask(self, new_tokens: int) -> tuple[torch.Tensor | None, bool]:
        """The SDPA mask for ``new_tokens`` queries over the filled prefix, as ``(mask, is_causal)``.

        Without padding a prefill is plain causal attention and a one-token step needs no mask at all, which
        lets SDPA pick its fastest kernel; with padding the mask is ``causal_mask``.
        """
        end = self.length + new_tokens
        if self.key_mask is None:
            if new_tokens > 1 and self.length > 0:  # a chunk after a prefix: causal from its own offset
                return causal_mask(torch.ones(self.batch_size, end, dtype=torch.bool), self.length), False
            return None, new_tokens > 1
        if new_tokens == 1:
            return self.key_mask[:, None, None, :end], False
        return causal_mask(self.key_mask[:, :end], self.length), False

    def reorder(self, rows: torch.Tensor) -> None:
        """Row ``i`` of the cache becomes the old row ``rows[i]``: beams following their parents, or, with fewer
        rows, the running rows of a batch whose finished rows left it. Only the filled prefix moves, within
        the same buffers (the batch shrinks to a view of their first rows)."""
        n, kept, first = self.length, len(rows), 0
        if kept < self.batch_size:  # rows before the first one that moves are in place already: copy the rest
            moved = (rows != torch.arange(kept, device=rows.device)).nonzero()
            first = int(moved[0]) if len(moved) else kept
        for buffers in (self.keys, self.values):
            for i, t in enumerate(buffers):
                if first < kept:
                    t[first:kept, :, :n] = t[:, :, :n].index_select(0, rows[first:])
                buffers[i] = t[:kept]
        if self.key_mask is not None:
            self.key_mask = self.key_mask.index_select(0, rows)
