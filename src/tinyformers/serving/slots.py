"""The server's KV cache: ``max_batch`` rows of preallocated keys/values that requests take and give back.

Every running request owns one row. Rows share one timeline (the cache's ``length``): a request's keys end at
the current position and start wherever its prompt began, and the positions before that are masked as padding,
exactly as a left-padded prompt in ``generate``. So a decoding step over the running rows is an ordinary
``StaticKVCache`` step (the model, eager or compiled, sees nothing new), while each row keeps its own position
ids. Running rows are always the first ``running`` rows: a finished request's row is refilled with the last one.

The timeline only grows while requests run, and a step attends over all of it, the dead positions before the
oldest running row's first key included. So every row is shifted left by the start of the oldest one when that
dead prefix is longer than what lies after it (and at least ``COMPACT_AFTER`` positions), or when the timeline
reaches the end of the buffers: one copy of the live positions instead of attending over the dead ones at every
step. A prompt longer than the timeline shifts the rows right first.

Encoder-decoder models keep more per row (their encoder output): ``seq2seq.EncoderDecoderSlots`` extends this
class through the hooks below (``_allocate``, ``decoder_prompt``, ``check_fits``, ``room``).
"""

from __future__ import annotations

import torch

from ..generation import StaticKVCache

# Dead positions a timeline keeps before it is compacted early (fewer cost less to attend over than to move).
COMPACT_AFTER = 32


class CacheView(StaticKVCache):
    """A ``StaticKVCache`` over buffers that belong to someone else (views of ``SlotCache``'s)."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], key_mask: torch.Tensor | None):
        self.keys, self.values, self.key_mask = keys, values, key_mask
        self.max_length = keys[0].shape[2]
        self.length = 0


class SlotCache:
    """``rows`` cache rows of ``max_length`` positions, allocated once; the first ``running`` are in use."""

    default_length = 2048  # positions per row for a model without a limit of its own

    def __init__(self, model, rows: int, max_length: int):
        full = self._allocate(model, rows, max_length)
        self.limit = max_length  # what requests may use (the buffers may be longer)
        self.keys, self.values = full.keys, full.values
        self.max_length = full.max_length  # a compiled model may round it up to its bucket size
        self.key_mask = torch.ones(rows, self.max_length, dtype=torch.bool, device=self.keys[0].device)
        self.starts = [0] * rows  # where each row's first key sits on the timeline
        self.length = 0  # the shared timeline: positions written so far
        self.running = 0

    def _allocate(self, model, rows: int, max_length: int) -> StaticKVCache:
        return model.allocate_cache(rows, max_length)

    @property
    def rows(self) -> int:
        return self.keys[0].shape[0]

    def warm_up(self, model) -> None:
        """One throwaway forward of two 16-token prompts into rows 0 and 1 (nothing runs yet, so nothing is
        overwritten): the first batch of requests then does not pay what a model prepares on its first batched
        forward of many rows (its float32 matrices packed for them, ``models.inner_product``: ~300 ms for
        SmolLM2). Several positions run the eager forward, also under ``--compile``."""
        positions = min(16, self.max_length)
        if self.rows < 2 or positions < 2:
            return
        view = CacheView([k[:2] for k in self.keys], [v[:2] for v in self.values], None)
        ids = torch.zeros((2, positions), dtype=torch.long, device=self.keys[0].device)
        with torch.inference_mode():
            model.next_token_logits(ids, torch.arange(positions, device=ids.device).expand(2, -1), view)

    def decoder_prompt(self, prompt_ids: list[int]) -> list[int]:
        """The ids the decoder starts from: a causal model continues the prompt itself."""
        return prompt_ids

    def room(self, prompt_ids: list[int]) -> int:
        """How many tokens a request with this prompt may generate."""
        return self.limit - len(prompt_ids)

    def check_fits(self, prompt_ids: list[int], new_tokens: int) -> None:
        """Raise ``ValueError`` naming the numbers when the prompt and ``new_tokens`` do not fit a row."""
        if new_tokens > self.room(prompt_ids):
            raise ValueError(
                f"the prompt has {len(prompt_ids)} tokens and max_tokens is {new_tokens}, "
                f"{len(prompt_ids) + new_tokens} in all, but this server's context is "
                f"{self.limit} tokens; lower max_tokens or shorten the prompt"
            )

    def prefill_view(
        self, prompt_lengths: list[int], prompts: list[list[int]] | None = None, new_tokens: int | None = None
    ) -> CacheView:
        """Take the next free rows for prompts of ``prompt_lengths`` tokens, each ending at the current position,
        and return a cache that sees only those rows' stretch of the timeline, as a left-padded ``generate``
        prefill of those prompts (a single prompt: no mask, plain causal attention). ``prompts`` (the requests'
        prompts) matter only to models that condition a row on its prompt (``seq2seq.EncoderDecoderSlots``).

        ``new_tokens`` (default: the longest prompt) is how many last positions the forward runs: the view counts
        the positions before them as written, and rows hold reused keys and values there (``place_prefixes``).
        """
        rows, longest = len(prompt_lengths), max(prompt_lengths)
        first = self.take(prompt_lengths)
        taken, span = slice(first, first + rows), slice(self.length - longest, self.length)
        keys = [k[taken, :, span] for k in self.keys]
        values = [v[taken, :, span] for v in self.values]
        padded = min(prompt_lengths) < longest
        view = CacheView(keys, values, self.key_mask[taken, span] if padded else None)
        view.length = longest - (new_tokens or longest)
        return view

    def take(self, prompt_lengths: list[int]) -> int:
        """Take the next free rows for prompts of ``prompt_lengths`` positions that end at the current position;
        returns the first of them."""
        rows, longest = len(prompt_lengths), max(prompt_lengths)
        if self.running + rows > self.rows:
            raise RuntimeError(f"{rows} cache rows asked for, {self.rows - self.running} free")
        if longest > self.length:
            self._shift(longest - self.length)
        first = self.running
        for row, length in enumerate(prompt_lengths, first):
            self.starts[row] = start = self.length - length
            self.key_mask[row] = True
            self.key_mask[row, :start] = False
        self.running += rows
        return first

    def place_prefixes(
        self, prefixes: list[tuple[int, list[tuple[torch.Tensor, torch.Tensor]], int]]
    ) -> None:
        """For each ``(row, kv, n)``: copy the first ``n`` positions of a prompt's keys and values (``prompt_kv``)
        to the start of ``row``."""
        targets, sources = [], []
        for row, kv, n in prefixes:
            span = slice(self.starts[row], self.starts[row] + n)
            targets += [t[row, :, span] for t in (*self.keys, *self.values)]
            sources += [k[:, :n] for k, _ in kv] + [v[:, :n] for _, v in kv]
        if targets:  # one foreach copy: a wave's hundreds of small copies cost more to dispatch than to run
            torch._foreach_copy_(targets, sources)

    def prompt_kv(self, row: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A copy of the keys and values of the ``length``-token prompt that starts ``row``."""
        span = slice(self.starts[row], self.starts[row] + length)
        return [(k[row, :, span].clone(), v[row, :, span].clone()) for k, v in zip(self.keys, self.values)]

    def step_view(self) -> CacheView:
        """The running rows as one batch at the current position, with room for one more token."""
        n = self.running
        dead = min(self.starts[:n])
        if self.length == self.max_length or dead >= max(COMPACT_AFTER, self.length - dead):
            self._shift(-dead)
        view = CacheView([k[:n] for k in self.keys], [v[:n] for v in self.values], None)
        view.max_length, view.length = self.max_length, self.length
        if any(self.starts[:n]):  # some row starts later than the timeline: mask what lies before it
            view.key_mask = self.key_mask[:n]
        return view

    def advance(self) -> None:
        self.length += 1

    def release(self, row: int) -> int | None:
        """Free ``row``; the last running row moves into it. Returns the row that moved (None if none did)."""
        last = self.running - 1
        self.running = last
        if self.running == 0:
            self.length = 0  # nothing runs: the timeline starts over
        if row == last:
            return None
        n = self.length
        buffers = (*self.keys, *self.values)
        torch._foreach_copy_([t[row, :, :n] for t in buffers], [t[last, :, :n] for t in buffers])
        self.key_mask[row] = self.key_mask[last]
        self.starts[row] = self.starts[last]
        return last

    def _shift(self, by: int) -> None:
        """Move every running row ``by`` positions along the timeline (left when negative)."""
        n, length = self.running, self.length
        if n and length:
            src = slice(max(0, -by), length)
            dst = slice(max(0, by), length + by)
            for buffers in (self.keys, self.values):
                for t in buffers:
                    t[:n, :, dst] = t[:n, :, src].clone()
            self.key_mask[:n, dst] = self.key_mask[:n, src].clone()
            self.key_mask[:n, length + by :] = True
            if by > 0:
                self.key_mask[:n, :by] = False
        for i in range(n):
            self.starts[i] += by
        self.length += by
