"""Training: Trainer, arguments, collators, schedulers, LoRA adapters."""
