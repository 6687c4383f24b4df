"""Greedy (argmax) and multinomial sampling: one token per row per step, for any decoder speaking the protocol
of ``utils.py``.

A row that finishes leaves the batch: its place in the output is padded with ``pad_token_id`` (what
transformers returns) and later steps run the model on the running rows only, after
``cache.reorder(running_rows)`` compacted the cache. Finished rows stay in the batch, fed the pad token as in
transformers, when every row's scores are requested (``output_scores``/``output_logits``), when the model sets
``model.fixed_batch_decoding = True`` (e.g. a compiled step whose shapes must not change), or when the cache
overrides ``reorder`` without declaring ``reorder_can_drop_rows = True`` (see ``can_drop_rows``).
"""

from __future__ import annotations

import torch

from .cache import StaticKVCache
from .logits_process import LogitsProcessor, apply_processors
from .prepare import GenerateDecoderOnlyOutput, Prepared


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
        if logits.dtype != torch.float32:  # .float() on float32 is still an op call, every step
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


def pick_tokens(
    scores: torch.Tensor, do_sample: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[rows, vocab]`` processed scores -> ``[rows]`` token ids: argmax, or one multinomial draw per row.
    Also the server's scheduler's choice, so both decode alike; ``generator`` gives a request its own random
    stream (a seeded request is reproducible whatever else runs beside it)."""
    if not do_sample:
        return scores.argmax(-1)
    return torch.multinomial(scores.softmax(-1), num_samples=1, generator=generator).squeeze(1)


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
