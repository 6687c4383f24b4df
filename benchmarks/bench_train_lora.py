"""LoRA fine-tuning speed: tinyformers' Trainer with its LoRA adapters against transformers' Trainer with peft, on
the same SmolLM2-135M weights (the GGUF saved as a float32 folder), the same chats (the answers labelled, the
prompts -100), the same adapter at the start (peft's, saved and loaded here) and the same settings; after
checking that both log the same losses. Then tinyformers again with the head run on every position
(``skip_logits`` off), to show what computing it on the labelled positions only is worth.

    python benchmarks/bench_train_lora.py [--steps 12] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import lora_facts  # noqa: E402 - the example's chats

import tinyformers as tf  # noqa: E402
from common import ASSETS, machine  # noqa: E402
from tinyformers.training import LoraModel  # noqa: E402

GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
# Answers for the example's general questions, fixed here so that both sides train on the same text.
REPLAY_ANSWERS = ["The capital of Germany is Berlin.", "A week has seven days.", "The sky is blue."]


def chat_rows(tokenizer) -> list[dict]:
    """The example's chats as token rows: every token labelled but the prompt's."""
    chats = [(q, fact) for fact, questions in lora_facts.FACTS.items() for q in questions]
    chats += list(zip(lora_facts.REPLAY, REPLAY_ANSWERS, strict=True))
    rows = []
    for question, answer in chats:
        user = [{"role": "user", "content": question}]
        prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True)["input_ids"]
        ids = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": answer}])["input_ids"]
        rows.append({"input_ids": ids, "labels": [-100] * len(prompt) + ids[len(prompt) :]})
    return rows


def collate(features: list[dict]) -> dict[str, torch.Tensor]:
    """Right padding to the longest row (pad id 2, labels -100); plain Python, so both trainers get equal batches."""
    length = max(len(f["input_ids"]) for f in features)
    pad = [length - len(f["input_ids"]) for f in features]
    return {
        "input_ids": torch.tensor([f["input_ids"] + [2] * n for f, n in zip(features, pad)]),
        "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * n for f, n in zip(features, pad)]),
        "labels": torch.tensor([f["labels"] + [-100] * n for f, n in zip(features, pad)]),
    }


def settings(steps: int, batch: int) -> dict:
    return dict(
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=3e-3,
        warmup_steps=1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        train_sampling_strategy="sequential",
        disable_tqdm=True,
    )


def train_theirs(folder: Path, adapter: Path, rows, steps: int, out: Path) -> tuple[float, list[float]]:
    import peft
    import transformers

    model = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(folder), adapter, is_trainable=True
    )
    args = transformers.TrainingArguments(str(out), use_cpu=True, **settings(steps, len(rows)))
    trainer = transformers.Trainer(model, args, train_dataset=rows, data_collator=collate)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its log lines, printed when tqdm is off
        trainer.train()
    return time.perf_counter() - start, [e["loss"] for e in trainer.state.log_history if "loss" in e]


def train_ours(
    folder: Path, adapter: Path, rows, steps: int, out: Path, skip_logits: bool = True
) -> tuple[float, list[float]]:
    model = LoraModel.from_pretrained(
        tf.AutoModelForCausalLM.from_pretrained(folder), adapter, is_trainable=True
    )
    args = tf.TrainingArguments(str(out), **settings(steps, len(rows)))
    trainer = tf.Trainer(model, args, train_dataset=rows, data_collator=collate)
    if not skip_logits:
        trainer.loss_only_kwargs = {}
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, [e["loss"] for e in trainer.state.log_history if "loss" in e]


def starting_adapter(folder: Path, adapter: Path) -> None:
    """peft's own initialisation (random A, zero B), saved for both sides to start from."""
    import peft
    import transformers

    torch.manual_seed(0)
    config = peft.LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM"
    )
    peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(folder), config).save_pretrained(
        adapter
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--repeat", type=int, default=2, help="timed rounds after the checked one (best kept)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"{machine()}, transformers {transformers.__version__}, load average {os.getloadavg()[0]:.1f}")
    tokenizer = tf.AutoTokenizer.from_pretrained(GGUF)
    rows = chat_rows(tokenizer)
    labelled = sum(sum(t != -100 for t in r["labels"]) for r in rows)
    print(f"{len(rows)} chats, {sum(len(r['input_ids']) for r in rows)} tokens, {labelled} labelled")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tf.AutoModelForCausalLM.from_pretrained(GGUF).save_pretrained(tmp / "model")
        starting_adapter(tmp / "model", tmp / "adapter")
        common = (tmp / "model", tmp / "adapter", rows, args.steps)
        # the first round is checked, not timed: both libraries must train the same numbers
        _, their_losses = train_theirs(*common, tmp / "theirs")
        _, our_losses = train_ours(*common, tmp / "ours")
        worst = max(abs(a - b) / abs(b) for a, b in zip(our_losses, their_losses, strict=True))
        print(f"losses, {len(our_losses)} steps: largest relative difference {worst:.1e}")
        print(f"  ours   {[round(x, 4) for x in our_losses]}\n  theirs {[round(x, 4) for x in their_losses]}")
        best = {"ours": float("inf"), "ours, every logit": float("inf"), "transformers + peft": float("inf")}
        for _ in range(args.repeat):  # alternating, so that a slow phase of the machine hits every side
            best["transformers + peft"] = min(
                best["transformers + peft"], train_theirs(*common, tmp / "t")[0]
            )
            best["ours"] = min(best["ours"], train_ours(*common, tmp / "o")[0])
            best["ours, every logit"] = min(
                best["ours, every logit"], train_ours(*common, tmp / "a", False)[0]
            )
    for name, seconds in best.items():
        print(f"{name:20s} {seconds:6.2f} s   {args.steps / seconds:5.2f} steps/s")
    theirs = best["transformers + peft"]
    print(
        f"speed-up: {theirs / best['ours']:.2f}x (head on every position: {theirs / best['ours, every logit']:.2f}x)"
        f"   load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
