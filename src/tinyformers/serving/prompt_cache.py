"""Keys and values of recent prompts, reused by later prompts that start the same way.

Chat prompts share long beginnings: a chat template's system prompt, the earlier turns of a conversation, a
question asked again. A prompt's keys and values at a position depend only on the tokens up to it, so a new
prompt whose first ``n`` tokens are a stored prompt's needs only its other tokens run; the first ``n`` positions
are copied into its cache row (``scheduler.Scheduler._prefill``). llama.cpp's server (``cache_prompt``), vLLM
(prefix caching) and transformers' continuous batching (block sharing) do the same. Results equal a full prefill
up to float rounding, as batching prompts together already does: the products run over other row counts.

Entries are whole prompts, dropped least recently used first once they hold more than ``max_bytes``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

# Per layer: keys and values of one prompt, each [kv_heads, prompt_length, head_dim].
PromptKV = list[tuple[torch.Tensor, torch.Tensor]]


def common_start(a: tuple[int, ...], b: list[int], limit: int) -> int:
    """How many first tokens ``a`` and ``b`` share, up to ``limit``."""
    n = 0
    for x, y in zip(a, b[:limit]):
        if x != y:
            break
        n += 1
    return n


def nbytes(kv: PromptKV) -> int:
    return sum(k.nbytes + v.nbytes for k, v in kv)


class PromptCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], PromptKV] = OrderedDict()
        self.bytes = 0

    def match(self, prompt_ids: list[int], limit: int) -> tuple[int, PromptKV | None]:
        """The most first tokens of ``prompt_ids`` (at most ``limit``) a stored prompt shares, and its keys and
        values (None when none shares any)."""
        if limit <= 0:
            return 0, None
        best, found = 0, None
        for ids in self.entries:
            n = common_start(ids, prompt_ids, limit)
            if n > best:
                best, found = n, ids
        if found is None:
            return 0, None
        self.entries.move_to_end(found)
        return best, self.entries[found]

    def __contains__(self, prompt_ids: list[int]) -> bool:
        return tuple(prompt_ids) in self.entries

    def store(self, prompt_ids: list[int], kv: PromptKV) -> None:
        """Keep ``kv`` for ``prompt_ids`` (not yet stored: check ``in`` before copying it out)."""
        key = tuple(prompt_ids)
        size = nbytes(kv)
        if size > self.max_bytes:
            return
        self.entries[key] = kv
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= nbytes(dropped)
