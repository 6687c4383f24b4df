"""Logits processors: each maps ``(sequences so far [rows, len], scores [rows, vocab])`` to new scores.

They are built once per ``generate`` call, in transformers' order: penalties and constraints first
(repetition penalty, no-repeat n-grams, bad words, minimum length, forced BOS/EOS), then, when sampling, the
warpers temperature -> top-k -> top-p -> min-p -> typical -> epsilon. Each is the same arithmetic as its
transformers counterpart, so scores (and therefore greedy and beam choices) agree exactly.

A processor may change ``scores`` in place (the decoding loops own them). One that keeps per-row state
implements ``select_rows`` so it follows the batch when finished rows leave it.
"""

from __future__ import annotations

import math

import torch

from .config import GenerationConfig


class LogitsProcessor:
    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def select_rows(self, rows: torch.Tensor) -> None:
        """Row ``i`` of later calls is the old row ``rows[i]`` (finished rows left the batch)."""


class RepetitionPenalty(LogitsProcessor):
    """Divide positive (multiply negative) scores of every token already in the row by ``penalty``.

    ``skip`` [rows] is where each row's real tokens start: left padding is not "already generated".
    """

    def __init__(self, penalty: float, skip: torch.Tensor | None = None):
        self.penalty, self.skip = penalty, skip

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        if self.skip is not None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            input_ids = input_ids.masked_fill(positions[None, :] < self.skip[:, None], vocab)
        # Ids past the vocab (padding above, or an embedding larger than the head) land in one spare column.
        input_ids = input_ids.clamp(max=vocab)
        scores = torch.nn.functional.pad(scores, (0, 1))
        score = scores.gather(1, input_ids)
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        return scores.scatter(1, input_ids, score)[:, :vocab]

    def select_rows(self, rows: torch.Tensor) -> None:
        if self.skip is not None:
            self.skip = self.skip[rows]


class NoRepeatNGram(LogitsProcessor):
    """Ban any token that would complete an n-gram already present in the row (prompt included)."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[-1]
        if length < self.n:
            return scores
        # Only windows starting with the current (n-1)-token suffix can be completed by the next token.
        prefix = input_ids[:, length + 1 - self.n :]
        windows = input_ids.unfold(1, self.n, 1)
        matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(-1)
        vocab = scores.shape[-1]
        banned = scores.new_zeros((scores.shape[0], vocab + 1), dtype=torch.bool)
        banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=vocab), vocab), True)
        return scores.masked_fill(banned[:, :vocab], -math.inf)


class MinLength(LogitsProcessor):
    """Forbid every end-of-sequence token while the rows are shorter than ``min_length`` (prompt included)."""

    def __init__(self, min_length: int, eos: torch.Tensor):
        self.min_length, self.eos = min_length, eos

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] >= self.min_length:
            return scores
        # In place: a copy of the scores (the whole vocabulary) per step would cost more than the rest.
        return scores.index_fill_(1, self.eos, -math.inf)


class Temperature(LogitsProcessor):
    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores / self.temperature


class TopK(LogitsProcessor):
    """Keep the ``k`` best tokens (ties with the k-th are kept too)."""

    def __init__(self, k: int, min_tokens_to_keep: int = 1):
        self.k = max(k, min_tokens_to_keep)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        kth = torch.topk(scores, min(self.k, scores.shape[-1]))[0][..., -1, None]
        return scores.masked_fill(scores < kth, -math.inf)


class TopP(LogitsProcessor):
    """Keep the smallest set of best tokens whose probabilities sum to at least ``p`` (nucleus sampling)."""

    def __init__(self, p: float, min_tokens_to_keep: int = 1):
        self.p, self.min_tokens_to_keep = p, min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        sorted_scores, order = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        remove = cumulative <= (1 - self.p)
        remove[..., -self.min_tokens_to_keep :] = False
        return scores.masked_fill(remove.scatter(1, order, remove), -math.inf)


class MinP(LogitsProcessor):
    """Drop tokens less likely than ``min_p`` times the most likely one."""

    def __init__(self, min_p: float, min_tokens_to_keep: int = 1):
        self.min_p, self.min_tokens_to_keep = min_p, min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = scores.softmax(-1)
        remove = probs < self.min_p * probs.amax(-1, keepdim=True)
        keep = torch.topk(probs, min(self.min_tokens_to_keep, probs.shape[-1]), dim=-1).indices
        remove.scatter_(-1, keep, False)
        return scores.masked_fill(remove, -math.inf)


class BadWords(LogitsProcessor):
    """Ban the last token of each banned sequence wherever the row ends with the rest of it."""

    def __init__(self, bad_words_ids: list[list[int]], eos: torch.Tensor | None):
        eos_ids = eos.tolist() if eos is not None else []
        words = [list(w) for w in bad_words_ids if not (len(w) == 1 and w[0] in eos_ids)]  # eos stays allowed
        self.single = sorted({w[0] for w in words if len(w) == 1})
        self.prefixed = [(w[:-1], w[-1]) for w in words if len(w) > 1]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.single:
            scores[:, self.single] = -math.inf
        for prefix, last in self.prefixed:
            if len(prefix) <= input_ids.shape[1]:
                rows = (input_ids[:, -len(prefix) :] == input_ids.new_tensor(prefix)).all(-1)
                scores[:, last].masked_fill_(rows, -math.inf)
        return scores


class ForcedToken(LogitsProcessor):
    """At one length (``at`` tokens so far), every token but ``token`` gets -inf and ``token`` gets 0."""

    def __init__(self, at: int, token: int | list[int]):
        self.at, self.token = at, token

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] != self.at:
            return scores
        scores.fill_(-math.inf)
        scores[:, self.token] = 0
        return scores


class Typical(LogitsProcessor):
    """Locally typical sampling: keep the tokens whose surprise is closest to the entropy, up to ``mass``."""

    def __init__(self, mass: float, min_tokens_to_keep: int = 1):
        self.mass, self.min_tokens_to_keep = mass, min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        normalized = torch.log_softmax(scores, dim=-1)
        entropy = -(normalized * normalized.exp()).nansum(-1, keepdim=True)
        sorted_distance, order = torch.sort((-normalized - entropy).abs(), descending=False)
        cumulative = scores.gather(-1, order).softmax(-1).cumsum(-1)
        last = (cumulative < self.mass).sum(dim=1).clamp_(max=sorted_distance.shape[-1] - 1)
        remove = sorted_distance > sorted_distance.gather(1, last.view(-1, 1))
        remove[..., : self.min_tokens_to_keep] = False
        return scores.masked_fill(remove.scatter(1, order, remove), -math.inf)


class Epsilon(LogitsProcessor):
    """Drop tokens whose probability is below ``epsilon`` (the best ``min_tokens_to_keep`` always stay)."""

    def __init__(self, epsilon: float, min_tokens_to_keep: int = 1):
        self.epsilon, self.min_tokens_to_keep = epsilon, min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        remove = scores.softmax(-1) < self.epsilon
        kth = torch.topk(scores, min(self.min_tokens_to_keep, scores.shape[-1]))[0][..., -1, None]
        return scores.masked_fill(remove & (scores < kth), -math.inf)


def build_processors(
    gc: GenerationConfig,
    prompt_length: int,
    max_length: int,
    eos: torch.Tensor | None,
    pad_skip: torch.Tensor | None,
) -> list[LogitsProcessor]:
    """The processors ``gc`` asks for, in transformers' order (``gc`` has its defaults filled in and
    ``min_length`` already covers ``min_new_tokens``)."""
    out: list[LogitsProcessor] = []
    if gc.repetition_penalty != 1.0:
        out.append(RepetitionPenalty(gc.repetition_penalty, pad_skip))
    if gc.no_repeat_ngram_size > 0:
        out.append(NoRepeatNGram(gc.no_repeat_ngram_size))
    if gc.bad_words_ids is not None:
        out.append(BadWords(gc.bad_words_ids, eos))
    if eos is not None and gc.min_length > 0:
        out.append(MinLength(gc.min_length, eos))
    if gc.forced_bos_token_id is not None:
        out.append(ForcedToken(1, gc.forced_bos_token_id))
    if gc.forced_eos_token_id is not None:
        out.append(ForcedToken(max_length - 1, gc.forced_eos_token_id))
    if gc.do_sample:
        # Beam sampling must keep one non-eos candidate per eos token so a beam can always continue.
        keep = (len(eos) + 1 if eos is not None else 2) if gc.num_beams > 1 else 1
        if gc.temperature != 1.0:
            out.append(Temperature(gc.temperature))
        if gc.top_k:
            out.append(TopK(gc.top_k, keep))
        if gc.top_p < 1.0:
            out.append(TopP(gc.top_p, keep))
        if gc.min_p is not None:
            out.append(MinP(gc.min_p, keep))
        if gc.typical_p < 1.0:
            out.append(Typical(gc.typical_p, keep))
        if 0.0 < gc.epsilon_cutoff < 1.0:
            out.append(Epsilon(gc.epsilon_cutoff, keep))
    return out


def apply_processors(processors: list, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    for process in processors:
        scores = process(input_ids, scores)
    return scores
