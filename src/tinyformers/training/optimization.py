"""The optimiser: torch's AdamW over two parameter groups, with weight decay on the matrices and embeddings and
none on biases and normalisation weights (transformers' rule, so both decay exactly the same tensors)."""

from __future__ import annotations

import re

import torch
from torch import nn

from .arguments import TrainingArguments

NO_DECAY = [
    re.compile(p) for p in (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)")
]


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or "Norm" in type(module).__name__


def decay_parameter_names(model: nn.Module) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        if _is_norm(module):
            continue
        for name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if not any(p.search(full.lower()) for p in NO_DECAY):
                names.add(full)
    return names


def create_optimizer(model: nn.Module, args: TrainingArguments) -> torch.optim.Optimizer:
    decay = decay_parameter_names(model)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(
            "the model has no trainable parameters (every requires_grad is False); unfreeze some"
        )
    groups = [
        {"params": [p for n, p in trainable if n in decay], "weight_decay": args.weight_decay},
        {"params": [p for n, p in trainable if n not in decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        # one kernel per parameter group instead of a dozen ops per tensor; transformers' default name too
        fused=args.optim == "adamw_torch_fused",
    )
