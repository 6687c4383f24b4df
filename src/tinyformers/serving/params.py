"""A request's sampling parameters, turned into what ``generate`` itself would prepare for it.

``prepare`` (the same function ``generate`` calls) resolves the generation config, checks the prompt and
``max_new_tokens`` against the model, and builds the logits processors and stop conditions; the server adds only
OpenAI's presence/frequency penalties, which transformers does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..generation.logits_process import LogitsProcessor
from ..generation.prepare import Prepared, prepare


@dataclass
class SamplingParams:
    max_new_tokens: int
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: bool = False
    top_logprobs: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def generation_kwargs(self) -> dict:
        """``generate`` keyword arguments with the same meaning (top_k off: OpenAI has only top_p)."""
        kwargs: dict = {"max_new_tokens": self.max_new_tokens, "do_sample": not self.greedy}
        if not self.greedy:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
        if self.stop:
            kwargs["stop_strings"] = list(self.stop)
        return kwargs


class PresenceFrequencyPenalty(LogitsProcessor):
    """OpenAI's penalties over the generated tokens (not the prompt): ``score -= presence * [count > 0] +
    frequency * count``."""

    def __init__(self, prompt_length: int, presence: float, frequency: float):
        self.prompt_length, self.presence, self.frequency = prompt_length, presence, frequency

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(
            1, generated, torch.ones_like(generated, dtype=scores.dtype)
        )
        return scores - self.presence * (counts > 0).to(scores.dtype) - self.frequency * counts


def prepare_request(model, tokenizer, prompt_ids: list[int], params: SamplingParams) -> Prepared:
    """What ``generate(prompt, **params.generation_kwargs())`` would run with; raises ``ValueError`` for a prompt
    or token budget the model cannot take."""
    input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)
    # An explicit all-ones mask: a prompt is never padding, even where it holds the pad token's id.
    mask = torch.ones_like(input_ids)
    p = prepare(model, input_ids, mask, None, params.generation_kwargs(), tokenizer)
    if params.presence_penalty or params.frequency_penalty:  # penalties come before the sampling warpers
        penalty = PresenceFrequencyPenalty(len(prompt_ids), params.presence_penalty, params.frequency_penalty)
        p.processors.insert(0, penalty)
    return p
