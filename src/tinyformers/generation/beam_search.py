"""Beam search, vectorised over the batch as transformers (>= 4.50) does it, so the same beams win.

Per batch item we keep ``num_beams`` running hypotheses and the ``num_beams`` best finished ones. Each step
scores every (beam, token) continuation by accumulated log-probability, keeps the best
``beams_to_keep = max(2, 1 + #eos) * num_beams`` of them, moves those that hit a stop (eos or max length) into the
finished set (score divided by ``generated_length ** length_penalty``) and continues with the best unfinished
ones. The cache rows are then reordered to follow their beams.
"""

from __future__ import annotations

import torch

from .logits_process import apply_processors
from .prepare import GenerateBeamDecoderOnlyOutput, Prepared

NEG = -1.0e9  # "impossible" score, added rather than masked so ordering among the rest is unchanged


def gather_beams(tensor: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Pick beams along dim 1: ``tensor [batch, beams, ...]`` by ``indices [batch, k]``."""
    while indices.dim() < tensor.dim():
        indices = indices.unsqueeze(-1)
    return torch.take_along_dim(tensor, indices, dim=1)


def beam_search(model, p: Prepared):
    gc, eos = p.gc, p.eos
    rows, prompt = p.input_ids.shape
    num_beams, max_length, length_penalty, early_stopping = (
        gc.num_beams,
        p.max_length,
        gc.length_penalty,
        gc.early_stopping,
    )
    batch = rows // num_beams
    device = p.input_ids.device
    beams_to_keep = max(2, 1 + (len(eos) if eos is not None else 0)) * num_beams
    is_top_beam = torch.arange(beams_to_keep, device=device) < num_beams

    # transformers' filler for unused positions: pad (unless it is id 0) or the first eos; -1 without eos.
    fill = (p.pad or int(eos[0])) if eos is not None else -1
    running = torch.full((batch, num_beams, max_length), fill, dtype=torch.long, device=device)
    running[:, :, :prompt] = p.input_ids.view(batch, num_beams, prompt)
    finished = running.clone()
    running_scores = torch.zeros((batch, num_beams), device=device)
    running_scores[:, 1:] = NEG  # all beams start identical: only the first may expand at step one
    finished_scores = torch.full((batch, num_beams), NEG, device=device)
    is_finished = torch.zeros((batch, num_beams), dtype=torch.bool, device=device)
    improvable = torch.ones((batch, 1), dtype=torch.bool, device=device)
    running_indices = torch.full(
        (batch, num_beams, max_length - prompt), -1, dtype=torch.int32, device=device
    )
    finished_indices = running_indices.clone()
    keep_scores = gc.return_dict_in_generate and gc.output_scores
    keep_logits = gc.return_dict_in_generate and gc.output_logits
    scores_seen, logits_seen = [], []
    batch_offset = torch.arange(batch, device=device).view(-1, 1) * num_beams

    cache = model.allocate_cache(rows, max_length)
    cache.set_padding(p.attention_mask)
    logits = model.next_token_logits(p.input_ids, p.position_ids, cache)
    next_position = p.position_ids[:, -1:] + 1
    flat_running, length = p.input_ids, prompt
    while True:
        logits = logits.float()
        log_probs = apply_processors(p.processors, flat_running, torch.log_softmax(logits, -1))
        if keep_scores:
            scores_seen.append(log_probs)
        if keep_logits:
            logits_seen.append(logits)
        log_probs = (log_probs.view(batch, num_beams, -1) + running_scores[:, :, None]).view(batch, -1)

        # 1. the best beams_to_keep continuations of all beams of each item
        if gc.do_sample:
            top_indices = torch.multinomial(log_probs.softmax(-1), num_samples=beams_to_keep)
            top_log_probs, order = log_probs.gather(1, top_indices).sort(dim=-1, descending=True)
            top_indices = top_indices.gather(-1, order)
        else:
            top_log_probs, top_indices = torch.topk(log_probs, beams_to_keep)
        vocab = log_probs.shape[-1] // num_beams
        source_beam = top_indices // vocab
        top_sequences = gather_beams(running, source_beam)
        top_sequences[:, :, length] = top_indices % vocab
        top_beam_indices = gather_beams(running_indices, source_beam)
        top_beam_indices[:, :, length - prompt] = (source_beam + batch_offset).int()

        # 2. which of them stop here: end-of-sequence token or maximum length
        if length + 1 >= max_length:
            stops = torch.ones_like(top_log_probs, dtype=torch.bool)
        elif eos is not None:
            stops = torch.isin(top_sequences[:, :, length], eos)
        else:
            stops = torch.zeros_like(top_log_probs, dtype=torch.bool)

        # 3. running beams for the next step: the best that did not stop
        live_scores = top_log_probs + stops.float() * NEG
        best_live = torch.topk(live_scores, num_beams)[1]
        running = gather_beams(top_sequences, best_live)
        running_scores = gather_beams(live_scores, best_live)
        running_indices = gather_beams(top_beam_indices, best_live)

        # 4. finished hypotheses: merge those that just stopped (among the top num_beams) with the kept ones
        just_finished = stops & is_top_beam[None, :]
        candidate_scores = top_log_probs / ((length + 1 - prompt) ** length_penalty)
        full = torch.all(is_finished, dim=-1, keepdim=True) & (early_stopping is True)
        candidate_scores = candidate_scores + full.float() * NEG
        candidate_scores = candidate_scores + (~improvable).float() * NEG
        candidate_scores = candidate_scores + (~just_finished) * NEG
        merged_scores = torch.cat((finished_scores, candidate_scores), dim=1)
        best = torch.topk(merged_scores, num_beams)[1]
        finished = gather_beams(torch.cat((finished, top_sequences), dim=1), best)
        finished_scores = gather_beams(merged_scores, best)
        finished_indices = gather_beams(torch.cat((finished_indices, top_beam_indices), dim=1), best)
        is_finished = gather_beams(torch.cat((is_finished, just_finished), dim=1), best)

        # 5. the cache follows the beams it now serves
        cache.reorder(running_indices[..., length - prompt].reshape(-1).long())
        length += 1

        # 6. stop when no running beam can beat the worst finished one (transformers' heuristic) or all stopped
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - prompt
        else:
            best_length = length - prompt
        best_running = running_scores[:, :1] / (best_length**length_penalty)
        worst_finished = torch.where(is_finished, torch.min(finished_scores, dim=1, keepdim=True)[0], NEG)
        improvable = improvable & torch.any(best_running > worst_finished, dim=-1, keepdim=True)
        open_beams = not (bool(is_finished.all()) and early_stopping is True)
        if not (bool(improvable.any()) and open_beams and not bool(stops.all())):
            break
        flat_running = running[:, :, :length].reshape(rows, length)
        logits = model.next_token_logits(flat_running[:, -1:], next_position, cache)
        next_position += 1

    n = gc.num_return_sequences
    sequences = finished[:, :n].reshape(batch * n, -1)
    sequence_scores = finished_scores[:, :n].reshape(-1)
    beam_indices = finished_indices[:, :n].reshape(batch * n, -1)
    generated = int((beam_indices + 1).bool().sum(1).max())
    sequences = sequences[:, : prompt + generated]
    if not gc.return_dict_in_generate:
        return sequences
    return GenerateBeamDecoderOnlyOutput(
        sequences=sequences,
        sequences_scores=sequence_scores if gc.output_scores else None,
        scores=tuple(scores_seen) if keep_scores else None,
        logits=tuple(logits_seen) if keep_logits else None,
        beam_indices=beam_indices[:, :generated],
        past_key_values=cache,
    )
