"""Tiny seeded-random checkpoints (written by transformers) and random token datasets for the training tests."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import torch

VOCAB = 100


def tiny_bert(folder: Path, head: str = "BertForSequenceClassification", **overrides) -> Path:
    """A 2-layer BERT with no dropout (dropout masks cannot match across implementations), saved by transformers."""
    import transformers

    settings = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
    )
    settings.update(overrides)
    torch.manual_seed(0)
    model = getattr(transformers, head)(transformers.BertConfig(**settings))
    model.save_pretrained(folder)
    return folder


def tiny_llama(folder: Path) -> Path:
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def token_rows(count: int, seed: int = 0, low: int = 4, high: int = 20, labels: int | None = 2) -> list[dict]:
    """Examples of random lengths (0 is the pad id) and, when ``labels``, a random class; without labels the ids
    count up in random strides, something a causal LM can learn."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        length, start, stride = rng.randrange(low, high), rng.randrange(VOCAB), rng.randrange(1, 4)
        if labels:
            ids = [rng.randrange(1, VOCAB) for _ in range(length)]
        else:
            ids = [(start + i * stride) % (VOCAB - 1) + 1 for i in range(length)]
        row = {"input_ids": ids, "attention_mask": [1] * len(ids)}
        if labels:
            row["label"] = rng.randrange(labels)
        rows.append(row)
    return rows


@contextlib.contextmanager
def one_thread():
    """Tiny models train faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pad_collator(features: list[dict]) -> dict[str, torch.Tensor]:
    """Right-pads to the longest example; causal-LM rows (no label) get labels = ids, -100 on padding.
    Plain Python, so transformers' Trainer and ours receive identical batches."""
    length = max(len(f["input_ids"]) for f in features)
    ids = torch.tensor([f["input_ids"] + [0] * (length - len(f["input_ids"])) for f in features])
    mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (length - len(f["input_ids"])) for f in features])
    batch = {"input_ids": ids, "attention_mask": mask}
    if "label" in features[0]:
        batch["labels"] = torch.tensor([f["label"] for f in features])
    else:
        batch["labels"] = ids.masked_fill(mask == 0, -100)
    return batch
