"""Throughput of our pure-Python byte-level BPE (GPT-2) vs the Rust ``tokenizers`` library, single-threaded.

Both pipelines encode the same ~2 MB of BBC news articles with GPT-2's real vocabulary, **one article per
call** (ids, tokens and offsets); Rust also runs through ``encode_batch`` on one thread. Then the user-facing
``tokenizer(text)`` of tinyformers and of transformers (Rust backend, one thread) are timed the same way.

Every contender runs once as a warm-up, then all of them run in turn, N rounds, and each keeps its best time
(taking turns keeps a slow phase of a shared machine from landing on one side only). After the warm-up the word
caches are warm on both sides (Rust keeps one too); the "cold cache" line empties ours before every run.
Prints MB/s (MB = 10**6 bytes of UTF-8 input) and the ratios ours / Rust.

    python benchmarks/bench_bpe.py [--mb 2] [--runs 5]
"""

from __future__ import annotations

import argparse
import time

from common import ASSETS, bbc_texts, single_threaded_tokenizers

single_threaded_tokenizers()  # before tokenizers is imported


def race(contenders: dict, runs: int) -> dict[str, float]:
    """Best-of-``runs`` seconds of each callable, after one warm-up each, running them in turn."""
    for function in contenders.values():
        function()
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(runs):
        for name, function in contenders.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0, help="megabytes of text to encode")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from tinyformers.tokenization.gpt2 import GPT2Tokenizer

    folder = ASSETS / "gpt2-tokenizer"
    texts, size = bbc_texts(args.mb)
    user_facing = GPT2Tokenizer.from_pretrained(folder)
    ours = user_facing.backend
    theirs = AutoTokenizer.from_pretrained(str(folder))
    rust = theirs.backend_tokenizer
    assert [ours.encode(t).ids for t in texts[:50]] == [e.ids for e in rust.encode_batch(texts[:50])]

    def ours_cold():
        ours.model._cache.clear()
        return [ours.encode(t) for t in texts]

    contenders = {
        "tinyformers (pure Python), encode one text at a time": lambda: [ours.encode(t) for t in texts],
        "tinyformers, same with a cold word cache": ours_cold,
        "tokenizers (Rust, 1 thread), encode one text at a time": lambda: [rust.encode(t) for t in texts],
        "tokenizers (Rust, 1 thread), encode_batch": lambda: rust.encode_batch(texts),
        "tinyformers GPT2Tokenizer(text), one text at a time": lambda: [
            user_facing(t, verbose=False) for t in texts
        ],
        "transformers GPT2Tokenizer(text), one text at a time": lambda: [
            theirs(t, verbose=False) for t in texts
        ],
    }
    best = race(contenders, args.runs)
    print(f"{len(texts)} BBC news articles, {size / 1e6:.2f} MB, best of {args.runs} runs after a warm-up")
    for name, seconds in best.items():
        print(f"  {name:<56} {size / seconds / 1e6:6.2f} MB/s")
    ours_time, cold_time, rust_time, batch_time, ours_call, their_call = best.values()
    print(f"  ratio ours / Rust (one at a time):            {rust_time / ours_time:.2f}x")
    print(f"  ratio ours / Rust (encode_batch):             {batch_time / ours_time:.2f}x")
    print(f"  ratio ours with a cold cache / Rust:          {rust_time / cold_time:.2f}x")
    print(f"  ratio tinyformers / transformers (tokenizer(text)): {their_call / ours_call:.2f}x")


if __name__ == "__main__":
    main()
