"""Training: ``Trainer``, ``TrainingArguments``, data collators, schedules, checkpoints, callbacks,
data-parallel runs under ``torchrun``, and LoRA adapters. ``import tinyformers`` does not load this package; the
first use of one of these names through ``tinyformers`` does."""

from .arguments import TrainingArguments
from .callbacks import JsonlCallback, ProgressCallback, TensorBoardCallback, TrainerCallback
from .collators import (
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    default_data_collator,
)
from .lora import LoraConfig, LoraModel, get_peft_model
from .schedulers import get_scheduler
from .state import TrainerControl, TrainerState
from .trainer import EvalPrediction, PredictionOutput, Trainer, TrainOutput, set_seed

__all__ = [
    "DataCollatorForLanguageModeling",
    "DataCollatorForSeq2Seq",
    "DataCollatorWithPadding",
    "EvalPrediction",
    "JsonlCallback",
    "LoraConfig",
    "LoraModel",
    "PredictionOutput",
    "ProgressCallback",
    "TensorBoardCallback",
    "Trainer",
    "TrainerCallback",
    "TrainerControl",
    "TrainerState",
    "TrainOutput",
    "TrainingArguments",
    "default_data_collator",
    "get_peft_model",
    "get_scheduler",
    "set_seed",
]
