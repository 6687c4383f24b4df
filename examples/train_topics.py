"""Fine-tune all-MiniLM-L6-v2 into a 5-topic news classifier on the BBC articles (business, entertainment,
politics, sports, tech; the folder is the label). The first 128 tokens (headline and opening) are enough to
tell the topic. Split: fixed by each text's hash (examples/classifier_training.py), 10 % test.

    python examples/train_topics.py --assets .assets --output-dir runs/topics
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from classifier_training import fine_tune, split


def load_articles(assets: Path) -> tuple[list[tuple[str, int]], list[str]]:
    folder = assets / "bbcnews"
    labels = sorted(p.name for p in folder.iterdir() if p.is_dir())
    examples = []
    for label, name in enumerate(labels):
        for path in sorted((folder / name).glob("*.txt")):
            # one article (sports/199.txt) has a latin-1 pound sign: replace what is not UTF-8
            examples.append((path.read_bytes().decode("utf-8", errors="replace").strip(), label))
    return examples, labels


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("ASSETS_DIR", ".assets")))
    parser.add_argument("--output-dir", type=Path, default=Path("runs/topics"))
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--train-limit", type=int, default=None, help="train on a random subset (quick runs)")
    parser.add_argument("--test-limit", type=int, default=None)
    options = parser.parse_args(argv)
    examples, labels = load_articles(options.assets)
    train, test = split(examples)
    print(f"{len(examples)} articles in {len(labels)} topics: {len(train)} train, {len(test)} test")
    metrics = fine_tune(
        options.assets / "minilm",
        train,
        test,
        labels,
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
        f"test accuracy {metrics['eval_accuracy']:.4f} on {metrics['test_examples']} articles "
        f"({metrics['total_seconds']} s)"
    )
    return metrics


if __name__ == "__main__":
    main()
