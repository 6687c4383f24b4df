"""Run by test_training_ddp.py, alone or under ``torchrun``: trains a tiny classifier and a tiny causal LM for
20 steps and writes what the test compares (logged losses, evaluation metrics, final weights) to ``<out>/``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import tinyformers as tf  # noqa: E402
from training_fixtures import pad_collator, token_rows  # noqa: E402

torch.set_num_threads(1)


def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def run(auto, model_dir: Path, out: Path, batch: int, rows: list[dict], eval_rows: list[dict]) -> dict:
    args = tf.TrainingArguments(
        str(out),
        max_steps=20,
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=3,
        gradient_accumulation_steps=2,
        learning_rate=2e-3,
        warmup_steps=3,
        weight_decay=0.1,
        max_grad_norm=0.5,
        logging_steps=1,
        save_steps=10,
        seed=1,
        disable_tqdm=True,
    )
    model = getattr(tf, auto).from_pretrained(model_dir)
    metrics = accuracy if auto == "AutoModelForSequenceClassification" else None
    trainer = tf.Trainer(
        model,
        args,
        train_dataset=rows,
        eval_dataset=eval_rows,
        data_collator=pad_collator,
        compute_metrics=metrics,
    )
    trainer.train()
    evaluation = trainer.evaluate()
    trainer.save_model(str(out / "final"))
    return {
        "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
        "eval": {k: v for k, v in evaluation.items() if k in ("eval_loss", "eval_accuracy")},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bert")
    parser.add_argument("llama")
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch", type=int, required=True)
    options = parser.parse_args()
    results = {
        "classifier": run(
            "AutoModelForSequenceClassification",
            options.bert,
            options.out / "classifier",
            options.batch,
            token_rows(200, seed=11),
            token_rows(25, seed=12),
        ),
        "lm": run(
            "AutoModelForCausalLM",
            options.llama,
            options.out / "lm",
            options.batch,
            token_rows(200, seed=13, labels=None),
            token_rows(25, seed=14, labels=None),
        ),
    }
    # 41 examples do not split over 2 processes: one clear line, on every rank
    try:
        tf.Trainer(
            tf.AutoModelForSequenceClassification.from_pretrained(options.bert),
            tf.TrainingArguments(str(options.out / "odd"), max_steps=1, disable_tqdm=True),
            train_dataset=token_rows(41),
            data_collator=pad_collator,
        ).train()
        results["odd"] = None
    except ValueError as error:
        results["odd"] = str(error)
    rank = int(os.environ.get("RANK", 0))
    (options.out / f"results-{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main()
