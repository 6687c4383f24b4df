"""Fine-tune all-MiniLM-L6-v2 into a positive/negative sentiment classifier on VADER's movie-review snippets.

Labels: each snippet's mean human rating (-4..+4) gives its sign. Snippets rated within ``--neutral`` of 0 (default
0.5) are dropped: raters did not agree they are positive or negative, so neither label is right. The run says how
many it dropped. Split: fixed by each text's hash (examples/classifier_training.py), 10 % test.

    python examples/train_sentiment.py --assets .assets --output-dir runs/sentiment
    python -c "from tinyformers import pipeline; print(pipeline('text-classification', 'runs/sentiment/model')('A gem.'))"
"""

from __future__ import annotations

from pathlib import Path

from classifier_training import arguments, run

LABELS = ["negative", "positive"]
# The longest snippet is 79 tokens (median 26, 99th percentile 54): nothing is cut.
SETTINGS = dict(epochs=1.5, max_length=80, batch_size=32, learning_rate=2e-4)


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
    parser = arguments(__doc__.splitlines()[0], "runs/sentiment", **SETTINGS)
    parser.add_argument("--neutral", type=float, default=0.5, help="drop snippets with |score| below this")
    options = parser.parse_args(argv)
    examples, dropped = load_snippets(options.assets, options.neutral)
    print(f"dropped {dropped} snippets rated within {options.neutral} of neutral")
    metrics = run(options, examples, LABELS, "snippets")
    metrics["dropped_neutral"] = dropped
    return metrics


if __name__ == "__main__":
    main()
