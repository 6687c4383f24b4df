"""``tinyformers train MODEL --data FILE --output-dir DIR``: fine-tune a classifier or a causal LM (optionally
with LoRA) from a CSV, JSON lines or text file; the folder it writes loads here and in transformers."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..hub.api import check_repo_id
from ..hub.errors import HubError
from .common import (
    CommandError,
    Number,
    add_command,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
    random_seed,
)
from .output import print_data

# flag -> TrainingArguments field, the flag's type (its allowed range), help; a flag left out keeps
# transformers' default.
TRAINING_FLAGS = {
    "epochs": ("num_train_epochs", positive_float, "passes over the training data (default 3)"),
    "max_steps": ("max_steps", positive_int, "stop after this many optimiser steps (overrides --epochs)"),
    "batch_size": ("per_device_train_batch_size", positive_int, "examples per step and process (default 8)"),
    "eval_batch_size": (
        "per_device_eval_batch_size",
        positive_int,
        "examples per evaluation batch (default 8)",
    ),
    "learning_rate": ("learning_rate", positive_float, "peak learning rate (default 5e-5)"),
    "weight_decay": ("weight_decay", non_negative_float, "AdamW weight decay (default 0)"),
    "warmup_ratio": ("warmup_ratio", fraction, "share of the steps spent warming up (default 0)"),
    "lr_scheduler": ("lr_scheduler_type", str, "linear, cosine, constant or constant_with_warmup"),
    "gradient_accumulation_steps": (
        "gradient_accumulation_steps",
        positive_int,
        "micro-batches per optimiser step",
    ),
    "max_grad_norm": ("max_grad_norm", non_negative_float, "gradient clipping norm (default 1.0)"),
    "logging_steps": ("logging_steps", positive_float, "log the loss every N steps (default 500)"),
    "save_strategy": ("save_strategy", str, "checkpoints: steps, epoch or no (default steps)"),
    "save_steps": ("save_steps", positive_float, "checkpoint every N steps (default 500)"),
    "save_total_limit": ("save_total_limit", positive_int, "keep at most N checkpoints"),
    "seed": ("seed", random_seed, "random seed (default 42)"),
    "report_to": ("report_to", str, "none, jsonl or tensorboard (default none)"),
}


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        "fine-tune a classifier or a causal LM on a CSV, JSON lines or text file",
        "  tinyformers train .assets/minilm --data reviews.csv --label-column sentiment --output-dir sentiment\n"
        "  tinyformers train model.gguf --data chats.jsonl --lora --max-steps 60 --output-dir assistant\n"
        '  (chats: one {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]} per line; the\n'
        "  loss counts the assistant's words only)",
    )
    parser.add_argument("model", help="base model: a folder, a .gguf file or a hub id")
    parser.add_argument("--data", required=True, help="training data: .csv, .tsv, .jsonl, .json or .txt")
    parser.add_argument("--output-dir", required=True, help="where the trained model and checkpoints go")
    parser.add_argument(
        "--task", help="classification or causal-lm (default: classification when rows have the label column)"
    )
    parser.add_argument("--eval-data", help="evaluation data (default: a share of --data, by text hash)")
    parser.add_argument(
        "--eval-percent",
        type=Number(float, low=0, high=100, high_open=True),
        default=10.0,
        help="held-out share without --eval-data",
    )
    parser.add_argument("--text-column", default="text", help="column with the text (default: text)")
    parser.add_argument("--label-column", default="label", help="column with the label (default: label)")
    parser.add_argument(
        "--max-length", type=positive_int, default=256, help="tokens per example (longer are cut)"
    )
    for flag, (_, kind, help_text) in TRAINING_FLAGS.items():
        parser.add_argument("--" + flag.replace("_", "-"), type=kind, help=help_text)
    parser.add_argument("--group-by-length", action="store_true", help="batch examples of similar length")
    parser.add_argument(
        "--push-to-hub",
        metavar="ID",
        help="after saving, upload the model to this repo on $HF_ENDPOINT (created if needed; token from "
        "HF_TOKEN or `tinyformers hub login`)",
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPUs that have it)")
    lora = parser.add_argument_group("LoRA (train small adapters, keep the base model frozen)")
    lora.add_argument("--lora", action="store_true", help="train LoRA adapters instead of every weight")
    lora.add_argument("--lora-r", type=positive_int, default=8, help="adapter rank (default 8)")
    lora.add_argument(
        "--lora-alpha", type=positive_float, default=16, help="adapter scale numerator (default 16)"
    )
    lora.add_argument("--lora-dropout", type=Number(float, low=0, high=1, high_open=True), default=0.0)
    lora.add_argument(
        "--lora-targets", help="comma-separated layer names, or all-linear (default: the family's usual q,v)"
    )
    parser.set_defaults(handler=handle)


def _check_push_target(args: argparse.Namespace) -> None:
    if args.push_to_hub:
        try:
            check_repo_id(args.push_to_hub)  # a bad id fails now, not after the training
        except ValueError as e:
            raise CommandError(f"--push-to-hub: {e}") from None


def handle(args: argparse.Namespace) -> None:
    # Imported here: the command line starts without torch, which only the chosen command loads.
    from ..training.lora import LoraConfig
    from ..training.recipes import Job, push_output

    _check_push_target(args)
    training = {field: getattr(args, flag) for flag, (field, _, _) in TRAINING_FLAGS.items()}
    training = {k: v for k, v in training.items() if v is not None}
    if args.group_by_length:
        training["group_by_length"] = True
    if args.bf16:
        training["bf16"] = True
    lora = None
    if args.lora:
        targets = args.lora_targets
        if targets and targets != "all-linear":
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        lora = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=targets,
        )
    job = Job(
        model=args.model,
        data=args.data,
        output_dir=args.output_dir,
        task=args.task,
        eval_data=args.eval_data,
        eval_percent=args.eval_percent,
        text_column=args.text_column,
        label_column=args.label_column,
        max_length=args.max_length,
        lora=lora,
        training=training,
    )
    with contextlib.redirect_stdout(sys.stderr):  # progress and logs on stderr; stdout holds the result alone
        results = job.run()
    pushed = {}
    if args.push_to_hub:
        # The model is saved already: a failed upload says so, and where the model is.
        try:
            commit = push_output(args.output_dir, args.push_to_hub)
        except HubError as e:
            raise CommandError(
                f"the model is saved in {args.output_dir}, but pushing it to {args.push_to_hub} failed: {e}"
            ) from None
        pushed = {"pushed_to": args.push_to_hub, "commit": commit.get("commitOid")}
    print_data({"output_dir": args.output_dir, **results, **pushed}, getattr(args, "json", False))
