"""``Trainer``: the training loop, evaluation and prediction, with transformers' API and checkpoint layout.

One optimisation step takes ``gradient_accumulation_steps`` micro-batches. Its loss is the mean over every
example (or every predicted token, for the token-level heads) of those micro-batches, on every process: each
micro-batch's mean loss is weighted by its share of the window's items before ``backward``. Unequal micro-batches
(padding, a short last batch, masked tokens) are therefore counted exactly as one big batch would count them.
transformers does the same for models it believes normalise by ``num_items_in_batch`` and otherwise divides by
the number of micro-batches; see docs/training.md for where that goes wrong.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..models.decoder import CausalLM
from . import checkpoints, data
from .arguments import TrainingArguments
from .callbacks import REPORTERS, CallbackHandler, DefaultFlowCallback, ProgressCallback
from .collators import IGNORE_INDEX, DataCollatorWithPadding, default_data_collator
from .distributed import (
    barrier,
    device_for,
    gather_objects,
    init_processes,
    sum_over_processes,
    wrap_model,
)
from .lora import LoraModel
from .optimization import create_optimizer
from .schedulers import get_scheduler
from .state import TrainerControl, TrainerState


class EvalPrediction(NamedTuple):
    predictions: np.ndarray
    label_ids: np.ndarray | None
    inputs: np.ndarray | None = None


class PredictionOutput(NamedTuple):
    predictions: np.ndarray | None
    label_ids: np.ndarray | None
    metrics: dict[str, float]


class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: dict[str, float]


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """One array from per-example rows; rows of different lengths (token-level outputs) are padded with -100."""
    if all(row.shape == rows[0].shape for row in rows):
        return np.stack(rows)
    length = max(row.shape[0] for row in rows)
    out = np.full((len(rows), length, *rows[0].shape[1:]), IGNORE_INDEX, dtype=rows[0].dtype)
    for i, row in enumerate(rows):
        out[i, : row.shape[0]] = row
    return out


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module | None = None,
        args: TrainingArguments | None = None,
        data_collator: Callable | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = None,
        callbacks: list | None = None,
        optimizers: tuple = (None, None),
    ):
        if model is None:
            raise ValueError(
                "Trainer needs a model, e.g. AutoModelForSequenceClassification.from_pretrained(...)"
            )
        self.args = args if args is not None else TrainingArguments()
        self.processes = init_processes(self.args.ddp_backend)
        self.device = device_for(self.processes, self.args.use_cpu)
        set_seed(self.args.seed)
        self.model = model.to(self.device)
        self.model_wrapped = self.model
        self.train_dataset = data.check_dataset(train_dataset, "train_dataset")
        self.eval_dataset = data.check_dataset(eval_dataset, "eval_dataset")
        self.processing_class = processing_class
        if data_collator is None:
            has_pad = hasattr(processing_class, "pad")
            data_collator = DataCollatorWithPadding(processing_class) if has_pad else default_data_collator
        self.data_collator = data_collator
        self.compute_metrics = compute_metrics
        self.optimizer, self.lr_scheduler = optimizers
        self.state = TrainerState(
            is_local_process_zero=self.processes.local_rank == 0, is_world_process_zero=self.processes.is_main
        )
        self.control = TrainerControl()
        reporters = [REPORTERS[name]() for name in self.args.report_to]
        progress = [] if self.args.disable_tqdm else [ProgressCallback()]
        self.callback_handler = CallbackHandler(
            [DefaultFlowCallback(), *reporters, *progress, *(callbacks or [])]
        )
        self.shifts_labels = any(isinstance(m, CausalLM) for m in self.model.modules())
        # A causal LM (bare or under LoRA) can leave out the logits where the loss alone is needed (training, and
        # evaluation with prediction_loss_only): its head then runs on the labelled positions only.
        bare = self.model.model if isinstance(self.model, LoraModel) else self.model
        self.loss_only_kwargs = {"skip_logits": True} if isinstance(bare, CausalLM) else {}
        self._call("on_init_end")

    # ---- callbacks ------------------------------------------------------------------------------------------------
    def add_callback(self, callback) -> None:
        self.callback_handler.add_callback(callback)

    def pop_callback(self, callback):
        return self.callback_handler.pop_callback(callback)

    def _call(self, event: str, **kwargs) -> None:
        self.control = self.callback_handler.call(event, self.args, self.state, self.control, **kwargs)

    # ---- data -----------------------------------------------------------------------------------------------------
    def _collator(self) -> Callable:
        if not self.args.remove_unused_columns:
            return self.data_collator
        return data.KeepColumns(self.data_collator, data.model_columns(self.model, self.args.label_names))

    def _train_batches(self, epoch: int) -> list[list[int]]:
        """This process's micro-batches (lists of example indices) for one epoch."""
        args, p = self.args, self.processes
        size = len(self.train_dataset)
        if args.train_sampling_strategy == "group_by_length" and self._lengths is None:
            self._lengths = data.example_lengths(self.train_dataset, args.length_column_name)
        seed = args.data_seed if args.data_seed is not None else args.seed
        global_batch = args.per_device_train_batch_size * p.world_size
        order = data.epoch_order(size, args.train_sampling_strategy, seed, epoch, self._lengths, global_batch)
        mine = data.shard(order, p.rank, p.world_size, args.dataloader_drop_last, "train_dataset")
        if args.per_device_train_batch_size > len(mine):
            per = " per process" if p.active else ""
            raise ValueError(
                f"per_device_train_batch_size={args.per_device_train_batch_size} is larger than the training set "
                f"({len(mine)} examples{per}); lower the batch size or add examples"
            )
        return data.batches(mine, args.per_device_train_batch_size, args.dataloader_drop_last)

    def _items(self, batch: dict) -> int:
        """What the loss averages over: predicted tokens for token-level heads, examples otherwise."""
        labels = batch.get("labels")
        if labels is None:
            return len(next(iter(batch.values())))
        if labels.dim() >= 2 and not labels.is_floating_point():
            counted = labels[:, 1:] if self.shifts_labels else labels
            return int((counted != IGNORE_INDEX).sum())
        return labels.shape[0]

    # ---- training -------------------------------------------------------------------------------------------------
    def create_optimizer_and_scheduler(self, num_training_steps: int) -> None:
        if self.optimizer is None:
            self.optimizer = create_optimizer(self.model, self.args)
        if self.lr_scheduler is None:
            warmup = self.args.get_warmup_steps(num_training_steps)
            self.lr_scheduler = get_scheduler(
                self.args.lr_scheduler_type, self.optimizer, warmup, num_training_steps
            )

    def _resume_folder(self, resume_from_checkpoint) -> Path | None:
        if resume_from_checkpoint in (None, False):
            return None
        if resume_from_checkpoint is True:
            folder = checkpoints.last_checkpoint(self.args.output_dir)
            if folder is None:
                raise ValueError(
                    f"resume_from_checkpoint=True but '{self.args.output_dir}' holds no checkpoint-N folder; "
                    "train without it, or pass the checkpoint folder"
                )
            return folder
        return checkpoints.check_checkpoint(resume_from_checkpoint)

    def train(self, resume_from_checkpoint: bool | str | None = None, **kwargs) -> TrainOutput:
        if kwargs:
            raise TypeError(f"Trainer.train got unexpected argument(s) {', '.join(sorted(kwargs))}")
        if self.train_dataset is None:
            raise ValueError("Trainer.train needs a train_dataset; pass one to Trainer(...)")
        data.check_columns(self.train_dataset, "train_dataset", needs_labels=False)
        args = self.args
        folder = self._resume_folder(resume_from_checkpoint)
        self._lengths = None
        batches_per_epoch = len(self._train_batches(0))
        windows_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
        if args.max_steps > 0:
            max_steps = args.max_steps
            num_epochs = math.ceil(max_steps / windows_per_epoch)
        else:
            max_steps = math.ceil(args.num_train_epochs * windows_per_epoch)
            num_epochs = math.ceil(args.num_train_epochs)
        self.create_optimizer_and_scheduler(max_steps)
        if folder is not None:
            self._load_model_weights(folder)
            checkpoints.load_optimizer_state(folder, self.optimizer, self.lr_scheduler)
            self.state = checkpoints.TrainerState.load_from_json(folder / checkpoints.STATE_FILE)
            self.state.is_world_process_zero = self.processes.is_main
            self.state.is_local_process_zero = self.processes.local_rank == 0
        state = self.state
        state.max_steps, state.num_train_epochs = max_steps, num_epochs
        state.logging_steps = args.steps(args.logging_steps, max_steps)
        state.eval_steps = args.steps(args.eval_steps or args.logging_steps, max_steps)
        state.save_steps = args.steps(args.save_steps, max_steps)
        state.train_batch_size = args.per_device_train_batch_size
        self.model_wrapped = wrap_model(self.model, self.processes, self.device)
        self._tr_loss, self._total_loss, self._last_logged = 0.0, 0.0, state.global_step
        self._last_saved = state.global_step if folder is not None else -1
        first_step, start = state.global_step, time.time()
        self.model.train()
        self._call("on_train_begin")
        for epoch in range(first_step // windows_per_epoch, num_epochs):
            if self._train_epoch(epoch, first_step, folder):
                break
            folder = None  # the RNG of a resumed run is restored once, before its first step
        self._call("on_train_end")
        return self._finish(first_step, start)

    def _train_epoch(self, epoch: int, first_step: int, resumed_from: Path | None) -> bool:
        """One epoch (or its rest, when resuming); True when training should stop."""
        args, state = self.args, self.state
        batch_list = self._train_batches(epoch)
        ga = args.gradient_accumulation_steps
        windows = [batch_list[i : i + ga] for i in range(0, len(batch_list), ga)]
        skip = first_step - epoch * len(windows) if epoch == first_step // len(windows) else 0
        remaining = [batch for window in windows[skip:] for batch in window]
        batches = iter(
            data.loader(self.train_dataset, remaining, self._collator(), args.dataloader_num_workers)
        )
        self._call("on_epoch_begin")
        for index in range(skip, len(windows)):
            window = [next(batches) for _ in windows[index]]
            if resumed_from is not None:
                checkpoints.restore_rng(resumed_from, self.processes.rank, self.processes.world_size)
                resumed_from = None
            self._call("on_step_begin")
            step_loss, grad_norm = self._update(window)
            state.global_step += 1
            state.epoch = epoch + (index * ga + len(window)) / len(batch_list)
            self._tr_loss += step_loss
            learning_rate = self.lr_scheduler.get_last_lr()[0]
            self._call("on_step_end", step_loss=step_loss, learning_rate=learning_rate)
            self._maybe_log_save_evaluate(grad_norm, learning_rate)
            if self.control.should_training_stop or self.control.should_epoch_stop:
                break
        self.control.should_epoch_stop = False
        self._call("on_epoch_end")
        self._maybe_log_save_evaluate(None, self.lr_scheduler.get_last_lr()[0])
        return self.control.should_training_stop or state.global_step >= state.max_steps

    def _autocast(self):
        if self.args.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _forward_loss(self, model, batch: dict) -> torch.Tensor:
        with self._autocast():
            outputs = model(**batch, **self.loss_only_kwargs)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs[0]
        if loss is None or loss.dim() != 0:
            raise ValueError(
                f"the model returned no loss for a batch with {sorted(batch)}; training needs labels: add a "
                "'label'/'labels' column, or a collator that makes them (DataCollatorForLanguageModeling)"
            )
        return loss

    def _update(self, window: list[dict]) -> tuple[float, float | None]:
        """One optimisation step over the micro-batches of ``window``; returns (loss, gradient norm)."""
        p = self.processes
        items = [self._items(batch) for batch in window]
        total = max(1.0, float(sum_over_processes(torch.tensor(float(sum(items))), p)))
        step_loss = torch.zeros((), dtype=torch.float64)
        for i, batch in enumerate(window):
            batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            last = i == len(window) - 1
            sync = contextlib.nullcontext() if last or not p.active else self.model_wrapped.no_sync()
            with sync:
                loss = self._forward_loss(self.model_wrapped, batch)
                if not items[i]:  # every label masked (prompts cut at max_length): the model's mean is 0/0
                    loss = loss.nan_to_num(0.0)
                weight = items[i] / total
                # DistributedDataParallel averages gradients over processes: scale up so they sum instead.
                (loss * (weight * p.world_size)).backward()
            step_loss += loss.detach().double().cpu() * weight
        step_loss = sum_over_processes(step_loss, p)
        grad_norm = None
        if self.args.max_grad_norm and self.args.max_grad_norm > 0:
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.max_grad_norm)
            )
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(step_loss), grad_norm

    def _maybe_log_save_evaluate(self, grad_norm: float | None, learning_rate: float) -> None:
        control, state = self.control, self.state
        if control.should_log and state.global_step > self._last_logged:
            logs = {"loss": self._tr_loss / (state.global_step - self._last_logged)}
            if grad_norm is not None:
                logs["grad_norm"] = grad_norm
            logs["learning_rate"] = learning_rate
            self._total_loss += self._tr_loss
            self._tr_loss, self._last_logged = 0.0, state.global_step
            self.log(logs)
        if control.should_evaluate:
            self._remember_best(self.evaluate())
        if control.should_save and state.global_step != self._last_saved:
            self._save_checkpoint()
        self.control.step_done()

    def _remember_best(self, metrics: dict[str, float]) -> None:
        name = self.args.metric_for_best_model
        if name is None:
            return
        key = name if name.startswith("eval_") else f"eval_{name}"
        if key not in metrics:
            raise KeyError(
                f"metric_for_best_model '{name}' is not among the evaluation metrics {sorted(metrics)}; "
                "fix the name or return it from compute_metrics"
            )
        value, best = metrics[key], self.state.best_metric
        better = best is None or (value > best if self.args.greater_is_better else value < best)
        if better:
            self.state.best_metric, self.state.best_global_step = value, self.state.global_step

    def _finish(self, first_step: int, start: float) -> TrainOutput:
        state, args = self.state, self.args
        if args.load_best_model_at_end and state.best_model_checkpoint is not None:
            self._load_model_weights(Path(state.best_model_checkpoint))
        self._total_loss += self._tr_loss
        steps = max(1, state.global_step - first_step)
        runtime = time.time() - start
        samples = (
            steps
            * args.per_device_train_batch_size
            * args.gradient_accumulation_steps
            * self.processes.world_size
        )
        metrics = {
            "train_runtime": round(runtime, 4),
            "train_samples_per_second": round(samples / runtime, 3),
            "train_steps_per_second": round(steps / runtime, 3),
            "total_flos": float(state.total_flos),
            "train_loss": self._total_loss / steps,
        }
        self.log(metrics)
        return TrainOutput(state.global_step, metrics["train_loss"], metrics)

    def log(self, logs: dict[str, float]) -> None:
        if self.state.epoch is not None:
            logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self._call("on_log", logs=logs)

    # ---- saving and loading ---------------------------------------------------------------------------------------
    def save_model(self, output_dir: str | None = None) -> None:
        """The model (and tokenizer) in the Hugging Face layout; only the main process writes."""
        if not self.processes.is_main:
            return
        self._save_model_files(Path(output_dir or self.args.output_dir))

    def _save_model_files(self, folder: Path) -> None:
        self.model.save_pretrained(folder)
        if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
            self.processing_class.save_pretrained(folder)
        checkpoints.write_training_args(folder, self.args)

    def _save_checkpoint(self) -> None:
        args, state, p = self.args, self.state, self.processes
        step = state.global_step
        final = Path(args.output_dir) / f"{checkpoints.PREFIX}-{step}"
        if state.best_global_step == step:
            state.best_model_checkpoint = str(final)
        if p.is_main:
            temporary = checkpoints.start_checkpoint(args.output_dir, step)
            self._save_model_files(temporary)
            if not args.save_only_model:
                checkpoints.write_training_state(temporary, self.optimizer, self.lr_scheduler, state)
            else:
                state.save_to_json(temporary / checkpoints.STATE_FILE)
        barrier(p)
        checkpoints.write_rng(checkpoints.temporary_dir(args.output_dir, step), p.rank, p.world_size)
        barrier(p)
        if p.is_main:
            checkpoints.finish_checkpoint(args.output_dir, step)
            checkpoints.rotate(args.output_dir, args.save_total_limit, state.best_model_checkpoint)
        barrier(p)
        self._last_saved = step
        self._call("on_save")

    def _load_model_weights(self, folder: Path) -> None:
        """Copy a saved model's weights into ``self.model`` in place (the optimiser keeps its parameters)."""
        load = getattr(
            self.model, "load_trained_weights", None
        )  # wrappers that save their own files (adapters)
        if load is not None:
            load(folder)
            return
        saved = type(self.model).from_pretrained(folder, config=self.model.config)
        self.model.load_state_dict(saved.state_dict())

    # ---- evaluation and prediction --------------------------------------------------------------------------------
    def evaluate(self, eval_dataset: Any = None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        dataset = (
            data.check_dataset(eval_dataset, "eval_dataset")
            if eval_dataset is not None
            else self.eval_dataset
        )
        if dataset is None:
            raise ValueError("Trainer.evaluate needs an eval_dataset (in Trainer(...) or as its argument)")
        output = self._prediction_loop(dataset, metric_key_prefix, "eval_dataset")
        self.log(dict(output.metrics))
        self._call("on_evaluate", metrics=output.metrics)
        return output.metrics

    def predict(
        self, test_dataset: Any, ignore_keys=None, metric_key_prefix: str = "test"
    ) -> PredictionOutput:
        dataset = data.check_dataset(test_dataset, "test_dataset")
        output = self._prediction_loop(dataset, metric_key_prefix, "test_dataset")
        self._call("on_predict", metrics=output.metrics)
        return output

    def _prediction_loop(self, dataset: Any, prefix: str, what: str) -> PredictionOutput:
        data.check_columns(dataset, what, needs_labels=False)
        p, args = self.processes, self.args
        mine = list(range(len(dataset)))[
            p.rank :: p.world_size
        ]  # every example once; shares may differ by one
        batch_list = data.batches(mine, args.per_device_eval_batch_size, drop_last=False)
        was_training = self.model.training
        self.model.eval()
        rows, loss_sum, counted, start = [], 0.0, 0, time.time()
        positions = iter(mine)
        with torch.no_grad():
            for batch in data.loader(dataset, batch_list, self._collator(), args.dataloader_num_workers):
                batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                loss_only = self.loss_only_kwargs if args.prediction_loss_only and "labels" in batch else {}
                with self._autocast():
                    outputs = self.model(**batch, **loss_only)
                size = len(batch["input_ids"])
                loss = outputs.get("loss") if isinstance(outputs, dict) else None
                items = self._items(batch)
                if loss is not None and items:  # the mean over all items, whatever the batches (see _items)
                    loss_sum, counted = loss_sum + float(loss) * items, counted + items
                if args.prediction_loss_only:
                    continue
                logits = (
                    (outputs["logits"] if isinstance(outputs, dict) else outputs[0]).float().cpu().numpy()
                )
                labels = batch["labels"].cpu().numpy() if "labels" in batch else [None] * size
                rows += [(next(positions), logits[i], labels[i]) for i in range(size)]
        self.model.train(was_training)
        gathered = gather_objects((rows, loss_sum, counted), p)
        rows = sorted((row for part in gathered for row in part[0]), key=lambda row: row[0])
        loss_sum, counted = sum(part[1] for part in gathered), sum(part[2] for part in gathered)
        predictions = _stack_rows([row[1] for row in rows]) if rows else None
        has_labels = bool(rows) and rows[0][2] is not None
        label_ids = _stack_rows([np.asarray(row[2]) for row in rows]) if has_labels else None
        metrics = {}
        if self.compute_metrics is not None and predictions is not None and label_ids is not None:
            metrics.update(self.compute_metrics(EvalPrediction(predictions, label_ids)))
        if counted:
            metrics["loss"] = loss_sum / counted
        runtime = time.time() - start
        metrics.update(
            runtime=round(runtime, 4),
            samples_per_second=round(len(dataset) / runtime, 3),
            steps_per_second=round(
                math.ceil(len(dataset) / (args.per_device_eval_batch_size * p.world_size)) / runtime, 3
            ),
        )
        metrics = {k if k.startswith(f"{prefix}_") else f"{prefix}_{k}": v for k, v in metrics.items()}
        return PredictionOutput(predictions, label_ids, metrics)
