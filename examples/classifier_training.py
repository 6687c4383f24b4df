"""What the two classifier examples share: a split fixed by each text's hash, and fine-tuning a checkpoint into a
text classifier with ``Trainer`` (train, measure test accuracy, save a folder ``pipeline`` and transformers load).

The split: a text goes to the test set when the first 8 hex digits of its SHA-256 (UTF-8), read as an integer,
are below ``test_percent`` % of 2**32. It never changes between runs or machines, and identical texts (the
VADER movie snippets repeat a few) always land on the same side, so no test text is ever seen in training.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

import tinyformers as tf
from tinyformers.training.recipes import is_held_out


def is_test(text: str, test_percent: int = 10) -> bool:
    return is_held_out(text, test_percent)


def split(examples: list[tuple[str, int]], test_percent: int = 10) -> tuple[list, list]:
    train = [e for e in examples if not is_test(e[0], test_percent)]
    test = [e for e in examples if is_test(e[0], test_percent)]
    return train, test


def accuracy(prediction: tf.EvalPrediction) -> dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}


def fine_tune(
    base_model: str | Path,
    train: list[tuple[str, int]],
    test: list[tuple[str, int]],
    label_names: list[str],
    output_dir: str | Path,
    *,
    max_length: int,
    epochs: float = 1.0,
    max_steps: int = -1,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    train_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
) -> dict:
    """Fine-tune ``base_model`` on (text, label) pairs; returns the test metrics, saved with the model under
    ``<output_dir>/model``. ``train_limit``/``test_limit`` take a seeded random subset (for quick runs)."""
    rng = random.Random(seed)
    if train_limit:
        train = rng.sample(train, min(train_limit, len(train)))
    if test_limit:
        test = rng.sample(test, min(test_limit, len(test)))
    tokenizer = tf.AutoTokenizer.from_pretrained(base_model)
    id2label = dict(enumerate(label_names))
    model = tf.AutoModelForSequenceClassification.from_pretrained(
        base_model,
        num_labels=len(label_names),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )

    def encode(pairs):
        return [
            dict(tokenizer(text, truncation=True, max_length=max_length), label=label)
            for text, label in pairs
        ]

    args = tf.TrainingArguments(
        str(output_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        learning_rate=learning_rate,
        warmup_ratio=0.1,
        weight_decay=0.01,
        logging_steps=10,
        save_strategy="no",
        group_by_length=True,  # snippets and articles vary in length: less padding per batch
        report_to="jsonl",
        seed=seed,
    )
    trainer = tf.Trainer(
        model,
        args,
        train_dataset=encode(train),
        eval_dataset=encode(test),
        processing_class=tokenizer,
        compute_metrics=accuracy,
    )
    start = time.time()
    trainer.train()
    metrics = trainer.evaluate()
    metrics.update(
        train_examples=len(train), test_examples=len(test), total_seconds=round(time.time() - start, 1)
    )
    trainer.save_model(str(Path(output_dir) / "model"))
    (Path(output_dir) / "results.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def arguments(description: str, output_dir: str, epochs: float, max_length: int) -> argparse.ArgumentParser:
    """The command-line options both examples take."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("ASSETS_DIR", ".assets")))
    parser.add_argument("--output-dir", type=Path, default=Path(output_dir))
    parser.add_argument("--epochs", type=float, default=epochs)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--max-length", type=int, default=max_length)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--train-limit", type=int, default=None, help="train on a random subset (quick runs)")
    parser.add_argument("--test-limit", type=int, default=None)
    return parser


def run(
    options: argparse.Namespace, examples: list[tuple[str, int]], label_names: list[str], what: str
) -> dict:
    """Split, fine-tune MiniLM with the command-line options, print and return the test metrics."""
    train, test = split(examples)
    print(f"{len(examples)} {what}: {len(train)} train, {len(test)} test")
    metrics = fine_tune(
        options.assets / "minilm",
        train,
        test,
        label_names,
        options.output_dir,
        max_length=options.max_length,
        epochs=options.epochs,
        max_steps=options.max_steps,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        train_limit=options.train_limit,
        test_limit=options.test_limit,
    )
    print(
        f"test accuracy {metrics['eval_accuracy']:.4f} on {metrics['test_examples']} {what} ({metrics['total_seconds']} s)"
    )
    return metrics
