"""Training throughput: tinyformers' Trainer against transformers' Trainer on the same model, data, batch size,
padding and optimiser (both at their default, fused AdamW) (MiniLM + a 2-class head on VADER movie snippets, dynamic padding), after checking that both log the
same losses; then what ``group_by_length`` adds, and 2 processes under torchrun against 1.

    python benchmarks/bench_train.py [--steps 12] [--batch 16] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tinyformers as tf
from common import ASSETS


def snippets(count: int) -> list[tuple[str, int]]:
    rows = []
    for line in (
        (ASSETS / "vader" / "movieReviewSnippets_GroundTruth.txt").read_text(encoding="utf-8").splitlines()
    ):
        _, score, text = line.split("\t", 2)
        if abs(float(score)) >= 0.5:
            rows.append((text, int(float(score) > 0)))
        if len(rows) == count:
            return rows
    return rows


def encoded(count: int) -> list[dict]:
    tokenizer = tf.AutoTokenizer.from_pretrained(ASSETS / "minilm")
    return [
        dict(tokenizer(text, truncation=True, max_length=64), label=label) for text, label in snippets(count)
    ]


def classifier_dir() -> Path:
    """MiniLM with a seeded 2-class head, saved once, so that both trainers start from the same weights.

    Dropout is off: the two libraries draw their dropout masks in a different order, and the losses are compared
    step by step before anything is timed."""
    folder = Path(tempfile.gettempdir()) / "bench_train_minilm_2class_nodropout"
    if not (folder / "model.safetensors").exists():
        import torch

        torch.manual_seed(0)
        tf.AutoModelForSequenceClassification.from_pretrained(
            ASSETS / "minilm", num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        ).save_pretrained(folder)
        tf.AutoTokenizer.from_pretrained(ASSETS / "minilm").save_pretrained(folder)
    return folder


SETTINGS = dict(
    learning_rate=5e-5,
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    seed=0,
    disable_tqdm=True,
    warmup_steps=2,
    weight_decay=0.01,
)


def run_ours(rows, steps, batch, sampling="sequential"):
    tokenizer = tf.AutoTokenizer.from_pretrained(ASSETS / "minilm")
    model = tf.AutoModelForSequenceClassification.from_pretrained(classifier_dir())
    args = tf.TrainingArguments(
        tempfile.mkdtemp(),
        max_steps=steps,
        per_device_train_batch_size=batch,
        train_sampling_strategy=sampling,
        **SETTINGS,
    )
    trainer = tf.Trainer(model, args, train_dataset=rows, data_collator=tf.DataCollatorWithPadding(tokenizer))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    shutil.rmtree(args.output_dir, ignore_errors=True)
    return steps * batch / seconds, [e["loss"] for e in trainer.state.log_history if "loss" in e]


def run_theirs(rows, steps, batch):
    import transformers

    tokenizer = tf.AutoTokenizer.from_pretrained(ASSETS / "minilm")  # same batches for both
    model = transformers.AutoModelForSequenceClassification.from_pretrained(classifier_dir())
    args = transformers.TrainingArguments(
        tempfile.mkdtemp(),
        max_steps=steps,
        per_device_train_batch_size=batch,
        train_sampling_strategy="sequential",
        use_cpu=True,
        **SETTINGS,
    )
    trainer = transformers.Trainer(
        model, args, train_dataset=rows, data_collator=tf.DataCollatorWithPadding(tokenizer)
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    shutil.rmtree(args.output_dir, ignore_errors=True)
    return steps * batch / seconds, [e["loss"] for e in trainer.state.log_history if "loss" in e]


def ddp_worker(steps: int, batch: int, out: Path) -> None:
    rows = encoded(steps * batch * 2)
    rate, losses = run_ours(rows, steps, batch, sampling="random")
    if int(os.environ.get("RANK", 0)) == 0:
        out.write_text(
            json.dumps({"samples_per_second": rate * int(os.environ.get("WORLD_SIZE", 1)), "losses": losses})
        )


def ddp_rate(steps: int, batch: int, processes: int) -> float:
    out = Path(tempfile.mkdtemp()) / "result.json"
    script = [
        str(Path(__file__).resolve()),
        "--worker",
        str(out),
        "--steps",
        str(steps),
        "--batch",
        str(batch),
    ]
    if processes == 1:
        command = [sys.executable, *script]
    else:
        torchrun = str(Path(sys.executable).parent / "torchrun")
        command = [torchrun, "--standalone", "--nproc_per_node", str(processes), *script]
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, os.cpu_count() // processes)))
    subprocess.run(command, check=True, env=env, capture_output=True)
    return json.loads(out.read_text())["samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        ddp_worker(options.steps, options.batch, options.worker)
        return
    rows = encoded(options.steps * options.batch * 2)
    ours, theirs, ours_losses, theirs_losses = 0.0, 0.0, None, None
    for _ in range(options.repeat):  # alternate, best of N
        rate, ours_losses = run_ours(rows, options.steps, options.batch)
        ours = max(ours, rate)
        rate, theirs_losses = run_theirs(rows, options.steps, options.batch)
        theirs = max(theirs, rate)
    worst = max(abs(a - b) / abs(b) for a, b in zip(ours_losses, theirs_losses))
    print(f"losses: {len(ours_losses)} steps, largest relative difference {worst:.1e}")
    print(
        f"MiniLM classifier, batch {options.batch}: tinyformers {ours:.2f} samples/s, "
        f"transformers {theirs:.2f} samples/s, ratio {ours / theirs:.2f}x"
    )
    grouped = max(
        run_ours(rows, options.steps, options.batch, "group_by_length")[0] for _ in range(options.repeat)
    )
    shuffled = max(run_ours(rows, options.steps, options.batch, "random")[0] for _ in range(options.repeat))
    print(
        f"group_by_length: {grouped:.2f} samples/s vs random order {shuffled:.2f} ({grouped / shuffled:.2f}x)"
    )
    one = ddp_rate(options.steps, options.batch, 1)
    two = ddp_rate(options.steps, options.batch // 2, 2)
    print(
        f"torchrun 2 processes x batch {options.batch // 2}: {two:.2f} samples/s vs 1 process x batch "
        f"{options.batch}: {one:.2f} ({two / one:.2f}x)"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
