"""Throughput of our pure-Python BertTokenizer vs the Rust ``tokenizers`` library, single-threaded.

Both pipelines encode the same ~2 MB of BBC news articles, one article per call (ids, tokens, offsets and
masks, with [CLS]/[SEP]); Rust also runs through ``encode_batch`` on one thread. Then the user-facing
``tokenizer(text)`` of tinyformers and of transformers (Rust backend, one thread) are timed the same way. Warm-up first, then the best
of N runs. Prints MB/s (MB = 10**6 bytes of UTF-8 input) and the ratio ours / Rust.

    python benchmarks/bench_wordpiece.py [--mb 2] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# Must be set before tokenizers is imported: one thread, no fork-time parallelism.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("ASSETS_DIR", ROOT / ".assets"))


def load_texts(megabytes: float) -> tuple[list[str], int]:
    texts, size = [], 0
    for path in sorted((ASSETS / "bbcnews").glob("*/*.txt")):
        text = path.read_bytes().decode("utf-8", errors="replace")  # one article is latin-1
        texts.append(text)
        size += len(text.encode("utf-8"))
        if size >= megabytes * 1e6:
            break
    return texts, size


def best_of(runs: int, function) -> float:
    function()  # warm-up (fills caches, imports lazily loaded modules)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0, help="megabytes of text to encode")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from tokenizers import Tokenizer as RustTokenizer

    from tinyformers.tokenization.wordpiece import BertTokenizer

    texts, size = load_texts(args.mb)
    user_facing = BertTokenizer.from_pretrained(ASSETS / "minilm")
    ours = user_facing.backend
    rust = RustTokenizer.from_file(str(ASSETS / "minilm" / "tokenizer.json"))
    rust.no_truncation()
    rust.no_padding()
    assert [ours.encode(t).ids for t in texts[:50]] == [e.ids for e in rust.encode_batch(texts[:50])]

    results = {
        "tinyformers (pure Python), encode one text at a time": best_of(
            args.runs, lambda: [ours.encode(t) for t in texts]
        ),
        "tokenizers (Rust, 1 thread), encode one text at a time": best_of(
            args.runs, lambda: [rust.encode(t) for t in texts]
        ),
        "tokenizers (Rust, 1 thread), encode_batch": best_of(args.runs, lambda: rust.encode_batch(texts)),
    }
    # The user-facing call (dict of ids, type ids, attention mask) against transformers' on the same backend.
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(str(ASSETS / "minilm"))
    calls = {
        "tinyformers BertTokenizer(text), one text at a time": best_of(
            args.runs, lambda: [user_facing(t, verbose=False) for t in texts]
        ),
        "transformers BertTokenizer(text), one text at a time": best_of(
            args.runs, lambda: [theirs(t, verbose=False) for t in texts]
        ),
    }
    print(f"{len(texts)} BBC news articles, {size / 1e6:.2f} MB, best of {args.runs} runs after a warm-up")
    for name, seconds in results.items():
        print(f"  {name:<56} {size / seconds / 1e6:6.2f} MB/s")
    ours_time, rust_time, batch_time = results.values()
    print(f"  ratio ours / Rust (one at a time): {rust_time / ours_time:.2f}x")
    print(f"  ratio ours / Rust (encode_batch):  {batch_time / ours_time:.2f}x")
    for name, seconds in calls.items():
        print(f"  {name:<56} {size / seconds / 1e6:6.2f} MB/s")
    ours_call, their_call = calls.values()
    print(f"  ratio tinyformers / transformers (tokenizer(text)): {their_call / ours_call:.2f}x")


if __name__ == "__main__":
    main()
