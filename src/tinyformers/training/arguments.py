"""``TrainingArguments``: transformers' names and defaults for the options this trainer implements.

Anything else is refused in one error that names every offending argument, instead of being accepted and
silently ignored (a typo such as ``learnig_rate`` would otherwise train with the default).

transformers 5 renamed two options the issue tracker and most tutorials still use: ``warmup_ratio`` (now a
float ``warmup_steps`` below 1) and ``group_by_length`` (now ``train_sampling_strategy="group_by_length"``).
Both spellings are accepted here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
STRATEGIES = ("no", "steps", "epoch")
SAMPLING = ("random", "sequential", "group_by_length")
REPORTERS = ("none", "jsonl", "tensorboard")
# The optimiser is torch's AdamW, fused into one kernel per parameter group as "adamw_torch_fused" (the default,
# as in transformers) asks; both compute the same update.
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")


@dataclass
class _Fields:
    output_dir: str | None = None
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    optim: str = "adamw_torch_fused"
    warmup_ratio: float = 0.0
    warmup_steps: float = 0
    lr_scheduler_type: str = "linear"
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    logging_strategy: str = "steps"
    logging_steps: float = 500
    logging_first_step: bool = False
    eval_strategy: str = "no"
    eval_steps: float | None = None
    save_strategy: str = "steps"
    save_steps: float = 500
    save_total_limit: int | None = None
    save_only_model: bool = False
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    seed: int = 42
    data_seed: int | None = None
    train_sampling_strategy: str = "random"
    group_by_length: bool = False
    length_column_name: str = "length"
    dataloader_num_workers: int = 0
    dataloader_drop_last: bool = False
    remove_unused_columns: bool = True
    label_names: list[str] | None = None
    bf16: bool = False
    report_to: str | list[str] = "none"
    disable_tqdm: bool | None = None
    run_name: str | None = None
    prediction_loss_only: bool = False
    use_cpu: bool = False
    ddp_backend: str | None = None
    # transformers' process-group fields, read-only for the user: set from torchrun's environment.
    local_rank: int = field(default=-1, repr=False)


class TrainingArguments(_Fields):
    """Options of a training run; ``TrainingArguments(output_dir, **options)`` as in transformers."""

    def __init__(self, output_dir: str | None = None, **options):
        known = {f.name for f in fields(_Fields)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"TrainingArguments: unknown or unsupported argument(s) {', '.join(unknown)}; "
                "see docs/training.md for the options this trainer implements"
            )
        super().__init__(output_dir=output_dir, **options)
        self._validate()

    def _validate(self) -> None:
        if self.output_dir is None:
            self.output_dir = "trainer_output"  # transformers' default since 5.0
        self.output_dir = os.fspath(self.output_dir)
        if isinstance(self.report_to, str):
            self.report_to = [self.report_to]
        self.report_to = list(self.report_to or ["none"])
        if "all" in self.report_to:
            self.report_to = ["jsonl", "tensorboard"]
        self.report_to = [name for name in self.report_to if name != "none"]
        if self.group_by_length:
            self.train_sampling_strategy = "group_by_length"
        if self.warmup_ratio and self.warmup_steps:
            raise ValueError("TrainingArguments: give warmup_ratio or warmup_steps, not both")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"TrainingArguments: warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = "loss"
        if self.metric_for_best_model is not None and self.greater_is_better is None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")
        choices = {
            "lr_scheduler_type": SCHEDULERS,
            "eval_strategy": STRATEGIES,
            "save_strategy": STRATEGIES,
            "logging_strategy": STRATEGIES,
            "train_sampling_strategy": SAMPLING,
            "optim": OPTIMIZERS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            value = getattr(value, "value", value)  # an enum from transformers' own argument objects
            if value not in allowed:
                raise ValueError(
                    f"TrainingArguments: {name}={value!r} is not supported; use one of {allowed}"
                )
            setattr(self, name, value)
        if self.eval_steps is None and self.eval_strategy == "steps":
            self.eval_steps = self.logging_steps  # as transformers
        bad = [name for name in self.report_to if name not in REPORTERS]
        if bad:
            raise ValueError(
                f"TrainingArguments: report_to {bad} is not supported; use 'none', 'jsonl' or 'tensorboard'"
            )
        positive = (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainingArguments: {name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError("TrainingArguments: set num_train_epochs > 0 or max_steps > 0")
        if self.load_best_model_at_end and self.eval_strategy == "no":
            raise ValueError(
                "TrainingArguments: load_best_model_at_end needs evaluations; set eval_strategy "
                "(and save_strategy) to 'steps' or 'epoch'"
            )
        if self.load_best_model_at_end and self.save_strategy != self.eval_strategy:
            raise ValueError(
                "TrainingArguments: load_best_model_at_end needs save_strategy equal to eval_strategy "
                f"(got {self.save_strategy!r} and {self.eval_strategy!r})"
            )
        if (
            self.eval_strategy == "steps"
            and self.load_best_model_at_end
            and self.save_steps % self.eval_steps
        ):
            raise ValueError(
                f"TrainingArguments: save_steps ({self.save_steps}) must be a multiple of eval_steps "
                f"({self.eval_steps}) for load_best_model_at_end"
            )

    # ---- derived values, as transformers names them -----------------------------------------------------------
    @property
    def train_batch_size(self) -> int:
        return self.per_device_train_batch_size

    @property
    def eval_batch_size(self) -> int:
        return self.per_device_eval_batch_size

    @property
    def world_size(self) -> int:
        return int(os.environ.get("WORLD_SIZE", 1))

    @property
    def process_index(self) -> int:
        return int(os.environ.get("RANK", 0))

    def get_warmup_steps(self, num_training_steps: int) -> int:
        """Warmup steps: ``warmup_steps`` (a float below 1 is a ratio, as in transformers 5), else the ratio."""
        if self.warmup_steps >= 1:
            return int(self.warmup_steps)
        ratio = self.warmup_steps or self.warmup_ratio
        return math.ceil(num_training_steps * ratio)

    def steps(self, value: float, num_training_steps: int) -> int:
        """``logging_steps``/``eval_steps``/``save_steps``: a float below 1 is a fraction of the run."""
        return max(1, math.ceil(num_training_steps * value)) if value < 1 else int(value)

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "local_rank"}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
