"""Learning-rate schedules: the multipliers transformers' schedulers apply, step by step, as ``LambdaLR``s.

Written as picklable callables (not closures) so ``scheduler.state_dict()`` saves and a resumed run continues
the same curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


@dataclass(frozen=True)
class Schedule:
    kind: str
    warmup_steps: int
    training_steps: int
    num_cycles: float = 0.5

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return 1.0
        if step < self.warmup_steps:
            return float(step) / float(max(1, self.warmup_steps))
        if self.kind == "constant_with_warmup":
            return 1.0
        remaining = float(max(1, self.training_steps - self.warmup_steps))
        if self.kind == "linear":  # written as transformers writes it, so the rates agree to the last bit
            return max(0.0, float(self.training_steps - step) / remaining)
        progress = float(step - self.warmup_steps) / remaining
        if self.kind == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * self.num_cycles * 2.0 * progress)))
        raise ValueError(
            f"unknown lr_scheduler_type '{self.kind}'; use linear, cosine, constant or constant_with_warmup"
        )


def get_scheduler(
    name: str, optimizer: Optimizer, num_warmup_steps: int = 0, num_training_steps: int = 0
) -> LambdaLR:
    """transformers' ``get_scheduler`` for the four schedules this trainer offers."""
    schedule = Schedule(name, num_warmup_steps, num_training_steps)
    schedule(0)  # an unknown name fails here, before training starts
    return LambdaLR(optimizer, schedule)
