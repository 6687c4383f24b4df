"""Sentence embeddings of many texts: the sentence-embedding pipeline against sentence-transformers' ``encode``.

all-MiniLM-L6-v2 on the first N sentences of the BBC articles (default 5,000), batch size 32 on both sides
(sentence-transformers' default). Both sort their inputs by length (sentence-transformers by characters,
tinyformers by tokens). Outputs are checked first: fp32 vectors equal to 1e-5; int8 (``quantize="int8"``) is
reported as its mean and lowest cosine to fp32, and the agreement of a seeded 3-label head's argmax over the
same sentences. Then the sides are timed alternately, warm-up first, best of ``--repeat``.

Also measured once, to decide whether to keep it: tokenising the next window of texts in a thread while the
model runs the current one (``--overlap``).
"""

from __future__ import annotations

import argparse
import re
import threading

import torch

from common import ASSETS, compare, machine, report, single_threaded_tokenizers


def bbc_sentences(count: int) -> list[str]:
    """The first ``count`` sentences of the BBC articles (files in sorted order; paragraphs split at . ! ?)."""
    found = []
    for path in sorted((ASSETS / "bbcnews").glob("*/*.txt")):
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():  # one file is latin-1
            found += [s for s in re.split(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])", line.strip()) if s]
        if len(found) >= count:
            break
    return found[:count]


def overlapped(pipe, texts: list[str], batch_size: int, window: int) -> list:
    """The pipeline's sorted batching, with window i+1 tokenised in a thread while window i runs."""
    params = pipe.resolve_params({**pipe.defaults, "return_tensors": True})
    windows = [texts[i : i + window] for i in range(0, len(texts), window)]
    results, ready = [], {}

    def tokenize(i):
        ready[i] = pipe.tokenize(windows[i], params)

    worker = threading.Thread(target=tokenize, args=(0,))
    worker.start()
    for i, chunk in enumerate(windows):
        worker.join()
        if i + 1 < len(windows):
            worker = threading.Thread(target=tokenize, args=(i + 1,))
            worker.start()
        encodings, pipe.tokenize = ready.pop(i), lambda items, p, e=ready: None  # placeholder, replaced below
        del pipe.tokenize
        results += run_encoded(pipe, encodings, len(chunk), batch_size, params)
    return results


def run_encoded(pipe, encodings, count: int, batch_size: int, params) -> list:
    """``EncoderPipeline.run_sorted`` on encodings made beforehand."""
    original = pipe.tokenize
    pipe.tokenize = lambda items, p: encodings
    try:
        return pipe.run_sorted([None] * count, batch_size, params)
    finally:
        pipe.tokenize = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--overlap", action="store_true", help="also time tokenising ahead in a thread")
    args = parser.parse_args()
    single_threaded_tokenizers()
    from sentence_transformers import SentenceTransformer

    from tinyformers import AutoModelForSequenceClassification
    from tinyformers.pipelines import pipeline

    print(machine())
    folder = ASSETS / "minilm"
    texts = bbc_sentences(args.sentences)
    print(f"{len(texts)} BBC sentences, {sum(map(len, texts))} characters, batch size {args.batch_size}")
    theirs = SentenceTransformer(str(folder), device="cpu")
    ours = pipeline("sentence-embedding", model=str(folder), batch_size=args.batch_size)
    int8 = pipeline("sentence-embedding", model=str(folder), batch_size=args.batch_size, quantize="int8")

    def run_theirs():
        return theirs.encode(texts, batch_size=args.batch_size, convert_to_tensor=True)

    def run_ours():
        return torch.stack(ours(texts, return_tensors=True))

    def run_int8():
        return torch.stack(int8(texts, return_tensors=True))

    want, got, quantized = run_theirs(), run_ours(), run_int8()
    difference = (got - want).abs().max().item()
    assert difference <= 1e-5, f"fp32 vectors differ from sentence-transformers' by {difference:.2e}"
    cosines = torch.nn.functional.cosine_similarity(quantized, got)
    print(
        f"fp32 max |difference| {difference:.1e}; int8 cosine to fp32: mean {cosines.mean():.4f}, lowest {cosines.min():.4f}"
    )
    print(
        f"int8 classification agreement (seeded 3-label head, argmax): {agreement(folder, texts, args.batch_size):.1%}"
    )

    t_ours, t_theirs = compare(run_ours, run_theirs, args.repeat)
    report(f"MiniLM {len(texts)} sentences fp32 (vs sentence-transformers)", t_ours, t_theirs)
    t_int8, t_theirs = compare(run_int8, run_theirs, args.repeat)
    report(f"MiniLM {len(texts)} sentences int8 (vs sentence-transformers)", t_int8, t_theirs)
    if args.overlap:
        window = args.batch_size * 64
        ahead = torch.stack(overlapped(ours, texts, args.batch_size, window))
        assert (ahead - got).abs().max() <= 1e-5
        t_ahead, t_plain = compare(
            lambda: overlapped(ours, texts, args.batch_size, window), run_ours, args.repeat
        )
        print(
            f"tokenising ahead in a thread: {t_ahead:.3f} s vs {t_plain:.3f} s in line ({t_plain / t_ahead:.2f}x)"
        )
    del AutoModelForSequenceClassification


def agreement(folder, texts: list[str], batch_size: int) -> float:
    from tinyformers import AutoModelForSequenceClassification, AutoTokenizer
    from tinyformers.pipelines import pipeline

    tokenizer, labels = AutoTokenizer.from_pretrained(folder), {}
    for quantize in (None, "int8"):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3, quantize=quantize)
        classify = pipeline("text-classification", model=model, tokenizer=tokenizer, batch_size=batch_size)
        labels[quantize] = [r["label"] for r in classify(texts)]
    return sum(a == b for a, b in zip(labels[None], labels["int8"])) / len(texts)


if __name__ == "__main__":
    main()
