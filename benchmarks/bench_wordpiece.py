"""Throughput of our pure-Python BertTokenizer vs the Rust ``tokenizers`` library, single-threaded.

Both pipelines encode the same ~2 MB of BBC news articles, one article per call (ids, tokens, offsets and
masks, with [CLS]/[SEP]); Rust also runs through ``encode_batch`` on one thread. Then the user-facing
``tokenizer(text)`` of tinyformers and of transformers (Rust backend, one thread) are timed the same way. Warm-up first, then the best
of N runs. Prints MB/s (MB = 10**6 bytes of UTF-8 input) and the ratio ours / Rust.

    python benchmarks/bench_wordpiece.py [--mb 2] [--runs 5]
"""

from __future__ import annotations

import argparse

from common import ASSETS, bbc_texts, best_time, single_threaded_tokenizers

single_threaded_tokenizers()  # before tokenizers is imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0, help="megabytes of text to encode")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from tokenizers import Tokenizer as RustTokenizer

    from tinyformers.tokenization.bert import BertTokenizer

    texts, size = bbc_texts(args.mb)
    user_facing = BertTokenizer.from_pretrained(ASSETS / "minilm")
    ours = user_facing.backend
    rust = RustTokenizer.from_file(str(ASSETS / "minilm" / "tokenizer.json"))
    rust.no_truncation()
    rust.no_padding()
    assert [ours.encode(t).ids for t in texts[:50]] == [e.ids for e in rust.encode_batch(texts[:50])]

    results = {
        "tinyformers (pure Python), encode one text at a time": best_time(
            args.runs, lambda: [ours.encode(t) for t in texts]
        ),
        "tokenizers (Rust, 1 thread), encode one text at a time": best_time(
            args.runs, lambda: [rust.encode(t) for t in texts]
        ),
        "tokenizers (Rust, 1 thread), encode_batch": best_time(args.runs, lambda: rust.encode_batch(texts)),
    }
    # The user-facing call (dict of ids, type ids, attention mask) against transformers' on the same backend.
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(str(ASSETS / "minilm"))
    calls = {
        "tinyformers BertTokenizer(text), one text at a time": best_time(
            args.runs, lambda: [user_facing(t, verbose=False) for t in texts]
        ),
        "transformers BertTokenizer(text), one text at a time": best_time(
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
