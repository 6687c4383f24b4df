"""Choosing the next token from processed scores: argmax (greedy) or one multinomial draw per row.

Shared by ``generate`` and the server's scheduler, so both pick tokens the same way; ``generator`` gives a
request its own random stream (a seeded request is reproducible whatever else runs beside it).
"""

from __future__ import annotations

import torch


def pick_tokens(
    scores: torch.Tensor, do_sample: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[rows, vocab]`` scores -> ``[rows]`` token ids."""
    if not do_sample:
        return scores.argmax(-1)
    return torch.multinomial(scores.softmax(-1), num_samples=1, generator=generator).squeeze(1)
