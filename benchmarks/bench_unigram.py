"""Throughput of our pure-Python sentencepiece Unigram vs the ``sentencepiece`` and ``tokenizers`` libraries.

botchan.txt (the sentencepiece test corpus) is repeated to about 1 MB and encoded one line per call, to ids:

* sentencepiece-exact: ``SentencePieceTokenizer.from_model_file`` vs ``SentencePieceProcessor.encode``;
* T5 pipeline (tokenizer.json): our ``Tokenizer`` vs the Rust ``tokenizers.Tokenizer`` of the same file, one
  thread.

Warm-up first, then the best of N runs. Prints MB/s (MB = 10**6 bytes of UTF-8 input) and the ratios.

    python benchmarks/bench_unigram.py [--mb 1] [--runs 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import ASSETS, best_time, single_threaded_tokenizers

single_threaded_tokenizers()  # before tokenizers is imported
MODEL = ASSETS / "sentencepiece" / "botchan_en_unigram_1000.model"


def load_lines(megabytes: float) -> tuple[list[str], int]:
    lines = (ASSETS / "sentencepiece" / "botchan.txt").read_text(encoding="utf-8").splitlines()
    texts, size = [], 0
    while size < megabytes * 1e6:
        for line in lines:
            texts.append(line)
            size += len(line.encode("utf-8"))
    return texts, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0, help="megabytes of text to encode")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import sentencepiece
    from tokenizers import Tokenizer as RustTokenizer

    from tinyformers.tokenization.sentencepiece import SentencePieceTokenizer, t5_pipeline

    texts, size = load_lines(args.mb)
    ours_spm = SentencePieceTokenizer.from_model_file(MODEL).backend
    theirs_spm = sentencepiece.SentencePieceProcessor(model_file=str(MODEL))
    ours_t5 = t5_pipeline(MODEL)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "tokenizer.json").write_text(ours_t5.to_str(), encoding="utf-8")
        rust = RustTokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    rust.no_truncation()
    rust.no_padding()
    sample = texts[:300]
    assert [ours_spm.encode(t).ids for t in sample] == theirs_spm.encode(sample)
    assert [ours_t5.encode(t).ids for t in sample] == [e.ids for e in rust.encode_batch(sample)]

    results = {
        "tinyformers sentencepiece-exact (pure Python)": best_time(
            args.runs, lambda: [ours_spm.encode(t) for t in texts]
        ),
        "sentencepiece (C++), encode one text at a time": best_time(
            args.runs, lambda: [theirs_spm.encode(t) for t in texts]
        ),
        "tinyformers T5 tokenizer.json pipeline": best_time(
            args.runs, lambda: [ours_t5.encode(t) for t in texts]
        ),
        "tokenizers (Rust, 1 thread), one text at a time": best_time(
            args.runs, lambda: [rust.encode(t) for t in texts]
        ),
    }
    print(
        f"botchan.txt x{len(texts) // 4288}, {len(texts)} lines, {size / 1e6:.2f} MB, best of {args.runs} runs"
    )
    for name, seconds in results.items():
        print(f"  {name:<50} {size / seconds / 1e6:6.2f} MB/s")
    ours_spm_s, spm_s, ours_t5_s, rust_s = results.values()
    print(f"  ratio ours / sentencepiece:        {spm_s / ours_spm_s:.2f}x")
    print(f"  ratio ours / tokenizers (T5 json): {rust_s / ours_t5_s:.2f}x")


if __name__ == "__main__":
    main()
