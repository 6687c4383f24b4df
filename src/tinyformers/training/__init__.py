"""Training: ``Trainer``, ``TrainingArguments``, data collators, schedules, checkpoints, callbacks, and
data-parallel runs under ``torchrun``. Modules are imported on first use of a name (``import tinyformers`` stays
fast)."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainingArguments": "arguments",
    "Trainer": "trainer",
    "EvalPrediction": "trainer",
    "PredictionOutput": "trainer",
    "TrainOutput": "trainer",
    "set_seed": "trainer",
    "TrainerState": "state",
    "TrainerControl": "state",
    "TrainerCallback": "callbacks",
    "ProgressCallback": "callbacks",
    "JsonlCallback": "callbacks",
    "TensorBoardCallback": "callbacks",
    "DataCollatorWithPadding": "collators",
    "DataCollatorForLanguageModeling": "collators",
    "DataCollatorForSeq2Seq": "collators",
    "default_data_collator": "collators",
    "get_scheduler": "schedulers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinyformers.training' has no attribute '{name}'")
