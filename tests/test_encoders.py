"""The encoder pipelines over many texts: batches sorted by token length with results in input order, and the
opt-in int8 encoder (``quantize="int8"``) within its accuracy bounds. All on the real all-MiniLM-L6-v2 and BBC
sentences (timings are in benchmarks/bench_encode.py, not here)."""

from __future__ import annotations

import json
import re

import pytest
import torch

import tinyformers.pipelines.base as pipeline_base
from cli_runner import run_cli
from tinyformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from tinyformers.pipelines import pipeline

ATOL = 1e-5


@pytest.fixture(scope="module")
def sentences(bbc_dir) -> list[str]:
    """BBC sentences of mixed lengths: the first 96 of the business articles."""
    found = []
    for path in sorted((bbc_dir / "business").glob("*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            found += [s for s in re.split(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])", line.strip()) if s]
        if len(found) >= 96:
            return found[:96]
    return found


@pytest.fixture(scope="module")
def embedder(minilm_dir):
    return pipeline("sentence-embedding", model=str(minilm_dir))


def padded_lengths(pipe) -> list[int]:
    """Record the padded length of every batch the model runs (a wrapper around ``pipe.forward``)."""
    seen, forward = [], pipe.forward

    def recording(batch, params):
        seen.append(batch["model_inputs"]["input_ids"].shape[1])
        return forward(batch, params)

    pipe.forward = recording
    return seen


class Sized:
    """An iterable with a length that is not a list (the command line's batch input)."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def test_sorted_batches_keep_the_input_order(minilm_dir, sentences, monkeypatch):
    embed = pipeline("sentence-embedding", model=str(minilm_dir))
    alone = torch.stack(embed(sentences[:24], batch_size=1, return_tensors=True))  # no padding, no sorting
    monkeypatch.setattr(pipeline_base, "SORT_WINDOW", 2)  # windows of 2 batches: several sorts, in order
    lengths = padded_lengths(embed)
    for texts in (sentences[:24], Sized(sentences[:24])):
        lengths.clear()
        got = torch.stack(list(embed(texts, batch_size=4, return_tensors=True)))
        torch.testing.assert_close(got, alone, atol=ATOL, rtol=0)
        assert len(lengths) == 6
        for window in (lengths[0:2], lengths[2:4], lengths[4:6]):  # longest first within each window
            assert window == sorted(window, reverse=True)


def test_sorting_cuts_the_padding(embedder, sentences):
    tokens = sum(len(ids) for ids in embedder.tokenizer(sentences)["input_ids"])
    lengths = padded_lengths(embedder)
    embedder(sentences, batch_size=8)
    sorted_padding = 8 * sum(lengths) - tokens
    unsorted = embedder.tokenizer(sentences)["input_ids"]
    unsorted_padding = sum(
        8 * max(map(len, unsorted[i : i + 8])) - sum(map(len, unsorted[i : i + 8])) for i in range(0, 96, 8)
    )
    assert sorted_padding < unsorted_padding / 4


def test_a_generator_still_streams_in_its_order(embedder, sentences):
    seen = []

    def texts():
        for text in sentences[:6]:
            seen.append(text)
            yield text

    results = embedder(texts(), batch_size=2)
    first = next(results)
    assert seen == sentences[:2] and len(first) == 384
    assert len(list(results)) == 5


def test_feature_extraction_and_classification_keep_the_order(minilm_dir, sentences):
    features = pipeline("feature-extraction", model=str(minilm_dir))
    texts = sentences[:10]
    batched = features(texts, batch_size=4)
    lengths = [len(ids) for ids in features.tokenizer(texts)["input_ids"]]
    assert [len(f[0]) for f in batched] == lengths
    for text, got in zip(texts, batched):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(features(text)), atol=ATOL, rtol=0)
    torch.manual_seed(0)  # a seeded random head: the order test needs distinct scores, not a trained one
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=5)
    classify = pipeline("text-classification", model=model, tokenizer=features.tokenizer)
    one_by_one = [classify(text, top_k=None) for text in texts]
    batched = classify(texts, batch_size=4, top_k=None)
    assert [[r["label"] for r in row] for row in batched] == [[r["label"] for r in row] for row in one_by_one]
    scores = [[r["score"] for r in row] for row in batched]
    torch.testing.assert_close(
        torch.tensor(scores), torch.tensor([[r["score"] for r in row] for row in one_by_one])
    )


def test_int8_embeddings_stay_close_to_float32(minilm_dir, embedder, sentences):
    int8 = pipeline("sentence-embedding", model=str(minilm_dir), quantize="int8")
    assert int8.model.quantization == "int8"
    want, got = embedder(sentences, return_tensors=True), int8(sentences, return_tensors=True)
    cosines = torch.nn.functional.cosine_similarity(torch.stack(got), torch.stack(want))
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.97, (cosines.mean(), cosines.min())
    assert cosines.mean() < 0.99999  # it did quantise


def test_int8_classification_agrees_with_float32(minilm_dir, sentences):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    labels = {}
    for quantize in (None, "int8"):
        torch.manual_seed(0)  # the same seeded head for both
        model = AutoModelForSequenceClassification.from_pretrained(
            minilm_dir, num_labels=3, quantize=quantize
        )
        classify = pipeline("text-classification", model=model, tokenizer=tokenizer, batch_size=16)
        labels[quantize] = [r["label"] for r in classify(sentences)]
    # A random head's logits lie close together, so small changes flip its argmax more often than a trained
    # head's would: this bounds the worst case (measured 86 % on these sentences).
    agreement = sum(a == b for a, b in zip(labels[None], labels["int8"])) / len(sentences)
    assert agreement >= 0.8, agreement


def test_int8_encoder_refuses_what_it_cannot_do(minilm_dir, tmp_path):
    model = AutoModel.from_pretrained(minilm_dir, quantize="int8")
    with pytest.raises(ValueError, match="quantised to int8 in memory"):
        model.save_pretrained(tmp_path / "out")
    with pytest.raises(ValueError, match="quantize='int4' is not supported; supported: int8"):
        AutoModel.from_pretrained(minilm_dir, quantize="int4")
    with pytest.raises(TypeError, match="compile= and quantize= apply to decoder models"):
        AutoModel.from_pretrained(minilm_dir, compile=True)
    with pytest.raises(TypeError, match="int8 encoder layers take float32 inputs"):
        model.to(torch.bfloat16)(input_ids=torch.tensor([[101, 102]]))


def test_embed_command_quantizes(minilm_dir):
    command = ["--json", "embed", "A man eats.", "A man eats food."]
    out = run_cli(*command, "--model", str(minilm_dir), "--quantize", "int8")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["results"][0]["result"]) == 384 and data["similarity"][0][1] > 0.8
    bad = run_cli(*command, "--quantize", "int4")
    assert bad.returncode == 2 and "invalid choice: 'int4'" in bad.stderr
