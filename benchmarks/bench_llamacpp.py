"""Greedy decoding of SmolLM2-135M Q4_1: tinyformers (int8 weights) vs llama.cpp on the same GGUF file.

Needs ``llama-cpp-python`` (not a project dependency: building it takes ~10 minutes); without it, says so and exits.
Both generate ``--new-tokens`` tokens after the same chat prompt at batch 1, warm-up first, best of N, alternating.

    python benchmarks/bench_llamacpp.py [--new-tokens 64] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

ASSETS = Path(os.environ.get("ASSETS_DIR", Path(__file__).resolve().parent.parent / ".assets"))
GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    try:
        from llama_cpp import Llama
    except ImportError:
        print("llama-cpp-python is not installed (pip install llama-cpp-python, ~10 min build); skipping")
        return
    from tinyformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(GGUF)
    ours = AutoModelForCausalLM.from_pretrained(GGUF, quantize="int8")
    theirs = Llama(model_path=str(GGUF), n_ctx=512, n_threads=args.threads, verbose=False)
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")["input_ids"]
    n = args.new_tokens

    def run_ours():
        ours.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)

    def run_theirs():
        theirs.reset()
        for i, _ in enumerate(theirs.generate(ids[0].tolist(), top_k=1, reset=True)):
            if i + 1 == n:
                break

    best = {"tinyformers int8": float("inf"), "llama.cpp Q4_1": float("inf")}
    run_ours(), run_theirs()
    for _ in range(args.repeats):
        for name, fn in zip(best, (run_ours, run_theirs)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(
            f"{name:18s} {1000 * seconds / n:6.1f} ms/token  {n / seconds:6.1f} tok/s  ({args.threads} threads)"
        )


if __name__ == "__main__":
    main()
