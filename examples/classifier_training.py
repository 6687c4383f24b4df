"""What the two classifier examples share: a split fixed by each text's hash, and one ``tinyformers train`` job
(``training.recipes.Job``) that fine-tunes MiniLM on the training texts, measures test accuracy and saves a folder
that ``pipeline`` and transformers load.

The split: a text goes to the test set when the first 8 hex digits of its SHA-256 (UTF-8), read as an integer,
are below ``test_percent`` % of 2**32 (``is_held_out``, the split ``tinyformers train`` makes too). It never
changes between runs or machines, and identical texts (the VADER movie snippets repeat a few) always land on the
same side, so no test text is ever seen in training.

Speed: examples are tokenized without padding; the trainer batches texts of similar length together
(``group_by_length``) and pads each batch only to its longest text, and the test set is evaluated in order of
length. Each run prints its training and test time, and the number of threads torch used.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import torch

from tinyformers.training.recipes import Job, is_held_out


def is_test(text: str, test_percent: int = 10) -> bool:
    return is_held_out(text, test_percent)


def split(examples: list[tuple[str, int]], test_percent: int = 10) -> tuple[list, list]:
    train = [e for e in examples if not is_test(e[0], test_percent)]
    test = [e for e in examples if is_test(e[0], test_percent)]
    return train, test


def arguments(
    description: str,
    output_dir: str,
    *,
    epochs: float,
    max_length: int,
    batch_size: int,
    learning_rate: float,
) -> argparse.ArgumentParser:
    """The command-line options both examples take, with each one's defaults."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("ASSETS_DIR", ".assets")))
    parser.add_argument("--output-dir", type=Path, default=Path(output_dir))
    parser.add_argument("--epochs", type=float, default=epochs)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--max-length", type=int, default=max_length, help="tokens per text (longer are cut)")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--eval-batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None, help="train on a random subset (quick runs)")
    parser.add_argument("--test-limit", type=int, default=None)
    return parser


def run(
    options: argparse.Namespace, examples: list[tuple[str, int]], label_names: list[str], what: str
) -> dict:
    """Split, fine-tune MiniLM with the command-line options, print and return the test metrics; the model goes
    to ``<output-dir>/model``, the metrics also to ``<output-dir>/results.json``."""
    train, test = split(examples)
    print(f"{len(examples)} {what}: {len(train)} train, {len(test)} test")
    rng = random.Random(options.seed)
    if options.train_limit:
        train = rng.sample(train, min(options.train_limit, len(train)))
    if options.test_limit:
        test = rng.sample(test, min(options.test_limit, len(test)))
    job = Job(
        model=str(options.assets / "minilm"),
        data=[{"text": text, "label": label_names[label]} for text, label in train],
        eval_data=[{"text": text, "label": label_names[label]} for text, label in test],
        output_dir=str(options.output_dir / "model"),
        max_length=options.max_length,
        training=dict(
            num_train_epochs=options.epochs,
            max_steps=options.max_steps,
            per_device_train_batch_size=options.batch_size,
            per_device_eval_batch_size=options.eval_batch_size,
            learning_rate=options.learning_rate,
            warmup_ratio=0.1,
            weight_decay=0.01,
            logging_steps=10,
            eval_strategy="no",  # one evaluation, at the end
            save_strategy="no",
            group_by_length=True,
            report_to="jsonl",
            seed=options.seed,
        ),
    )
    metrics = job.run()
    metrics.update(train_examples=len(train), test_examples=len(test), threads=torch.get_num_threads())
    options.output_dir.mkdir(parents=True, exist_ok=True)
    (options.output_dir / "results.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"test accuracy {metrics['eval_accuracy']:.4f} on {len(test)} {what}; training {len(train)} {what}: "
        f"{metrics['train_runtime']:.0f} s, test: {metrics['eval_runtime']:.0f} s "
        f"({metrics['threads']} threads)"
    )
    return metrics
