"""Training: ``Trainer``, ``TrainingArguments``, data collators, schedules, checkpoints, callbacks, and
data-parallel runs under ``torchrun``. ``import tinyformers`` does not load this package; the first use of one of
these names through ``tinyformers`` does."""

from .arguments import TrainingArguments
from .callbacks import JsonlCallback, ProgressCallback, TensorBoardCallback, TrainerCallback
from .collators import (
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    default_data_collator,
)
from .schedulers import get_scheduler
from .state import TrainerControl, TrainerState
from .trainer import EvalPrediction, PredictionOutput, Trainer, TrainOutput, set_seed

__all__ = [
    "DataCollatorForLanguageModeling",
    "DataCollatorForSeq2Seq",
    "DataCollatorWithPadding",
    "EvalPrediction",
    "JsonlCallback",
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
    "get_scheduler",
    "set_seed",
]
