"""Callbacks: hooks the training loop calls at each event, as in transformers (``on_train_begin``, ``on_step_end``,
``on_log``, ``on_evaluate``, ``on_save``, ...), each receiving ``(args, state, control, **kwargs)``.

The loop itself only trains; *when* to log, evaluate and save is decided by ``DefaultFlowCallback`` from the
arguments' strategies, and *where* logs go by the reporting callbacks (tqdm, JSON lines, TensorBoard).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .arguments import TrainingArguments
from .state import TrainerControl, TrainerState


class TrainerCallback:
    """Subclass and override the events you need; changing ``control`` (or returning a ``TrainerControl``)
    steers the loop, e.g. ``control.should_training_stop = True``."""

    def on_init_end(self, args, state, control, **kwargs):
        pass

    def on_train_begin(self, args, state, control, **kwargs):
        pass

    def on_train_end(self, args, state, control, **kwargs):
        pass

    def on_epoch_begin(self, args, state, control, **kwargs):
        pass

    def on_epoch_end(self, args, state, control, **kwargs):
        pass

    def on_step_begin(self, args, state, control, **kwargs):
        pass

    def on_step_end(self, args, state, control, **kwargs):
        pass

    def on_evaluate(self, args, state, control, **kwargs):
        pass

    def on_predict(self, args, state, control, **kwargs):
        pass

    def on_save(self, args, state, control, **kwargs):
        pass

    def on_log(self, args, state, control, **kwargs):
        pass


class CallbackHandler:
    def __init__(self, callbacks: list):
        self.callbacks = []
        for callback in callbacks:
            self.add_callback(callback)

    def add_callback(self, callback) -> None:
        self.callbacks.append(callback() if isinstance(callback, type) else callback)

    def pop_callback(self, callback):
        for existing in self.callbacks:
            if existing is callback or type(existing) is callback:
                self.callbacks.remove(existing)
                return existing
        return None

    def call(
        self, event: str, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs
    ):
        for callback in self.callbacks:
            result = getattr(callback, event)(args, state, control, **kwargs)
            if result is not None:
                control = result
        return control


class DefaultFlowCallback(TrainerCallback):
    """Sets ``should_log`` / ``should_evaluate`` / ``should_save`` from the strategies and step counts."""

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if step == 1 and args.logging_first_step:
            control.should_log = True
        if args.logging_strategy == "steps" and step % state.logging_steps == 0:
            control.should_log = True
        if args.eval_strategy == "steps" and step % state.eval_steps == 0:
            control.should_evaluate = True
        if args.save_strategy == "steps" and state.save_steps > 0 and step % state.save_steps == 0:
            control.should_save = True
        if step >= state.max_steps:
            control.should_training_stop = True
            if args.save_strategy != "no":
                control.should_save = True  # transformers also saves the last step
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if args.logging_strategy == "epoch":
            control.should_log = True
        if args.eval_strategy == "epoch":
            control.should_evaluate = True
        if args.save_strategy == "epoch":
            control.should_save = True
        return control


class ProgressCallback(TrainerCallback):
    """A tqdm bar over the optimisation steps, showing the latest loss and learning rate."""

    def __init__(self):
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.max_steps, initial=state.global_step, desc="train", dynamic_ncols=True
            )

    def on_step_end(self, args, state, control, step_loss=None, learning_rate=None, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            if step_loss is not None:
                self.bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{learning_rate:.3g}", refresh=False)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" not in logs:
            self.bar.write(json.dumps(logs))  # evaluations and the end-of-run summary

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class JsonlCallback(TrainerCallback):
    """``report_to="jsonl"``: every log entry (with its step) appended to ``<output_dir>/metrics.jsonl``."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        path = Path(args.output_dir) / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({**logs, "step": state.global_step}) + "\n")


class TensorBoardCallback(TrainerCallback):
    """``report_to="tensorboard"``: scalars under ``<output_dir>/runs`` (needs the tensorboard package)."""

    def __init__(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError(
                "report_to='tensorboard' needs the tensorboard package: pip install tensorboard"
            ) from error
        self.writer_class, self.writer = SummaryWriter, None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if self.writer is None:
            self.writer = self.writer_class(log_dir=str(Path(args.output_dir) / "runs"))
        for key, value in logs.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key if "/" in key else f"train/{key}", value, state.global_step)
        self.writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


REPORTERS = {"jsonl": JsonlCallback, "tensorboard": TensorBoardCallback}
