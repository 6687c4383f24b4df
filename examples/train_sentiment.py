"""Fine-tune all-MiniLM-L6-v2 into a positive/negative sentiment classifier on VADER's movie-review snippets.

Labels: each snippet's mean human rating (-4..+4) gives its sign. Snippets rated within ``--neutral`` of 0 (default
0.5) are dropped: raters did not agree they are positive or negative, so neither label is right. The run says how
many it dropped. Split: fixed by each text's hash (examples/classifier_training.py), 10 % test.

    python examples/train_sentiment.py --assets .assets --output-dir runs/sentiment
    python -c "from tinyformers import pipeline; print(pipeline('text-classification', 'runs/sentiment/model')('A gem.'))"
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from classifier_training import fine_tune, split

LABELS = ["negative", "positive"]


def load_snippets(assets: Path, neutral: float) -> tuple[list[tuple[str, int]], int]:
    """(text, label) pairs, and how many near-neutral snippets were dropped."""
    examples, dropped = [], 0
    path = assets / "vader" / "movieReviewSnippets_GroundTruth.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        _, score, text = line.split("\t", 2)
        if abs(float(score)) < neutral:
            dropped += 1
            continue
        examples.append((text.strip(), int(float(score) > 0)))
    return examples, dropped


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("ASSETS_DIR", ".assets")))
    parser.add_argument("--output-dir", type=Path, default=Path("runs/sentiment"))
    parser.add_argument("--neutral", type=float, default=0.5, help="drop snippets with |score| below this")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--train-limit", type=int, default=None, help="train on a random subset (quick runs)")
    parser.add_argument("--test-limit", type=int, default=None)
    options = parser.parse_args(argv)
    examples, dropped = load_snippets(options.assets, options.neutral)
    print(f"{len(examples)} snippets; dropped {dropped} rated within {options.neutral} of neutral")
    train, test = split(examples)
    metrics = fine_tune(
        options.assets / "minilm",
        train,
        test,
        LABELS,
        options.output_dir,
        max_length=64,
        epochs=options.epochs,
        max_steps=options.max_steps,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        train_limit=options.train_limit,
        test_limit=options.test_limit,
    )
    metrics["dropped_neutral"] = dropped
    print(
        f"test accuracy {metrics['eval_accuracy']:.4f} on {metrics['test_examples']} snippets "
        f"({metrics['total_seconds']} s)"
    )
    return metrics


if __name__ == "__main__":
    main()
