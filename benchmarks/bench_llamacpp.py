"""Greedy decoding of SmolLM2-135M Q4_1: tinyformers' speed options vs llama.cpp on the same GGUF file.

llama.cpp computes directly on the file's quantised blocks and is the reference for CPU decoding. Needs
``llama-cpp-python`` (not a project dependency: it builds for ~10 minutes); without it, says so and exits. Each
variant generates ``--new-tokens`` tokens after the same chat prompt at batch 1, alternating with llama.cpp, warm-up
first (which includes compilation), best of N. Also prints how many of llama.cpp's greedy tokens each variant
reproduces before the first difference (the two compute differently, so ids are not expected to be identical).

    python benchmarks/bench_llamacpp.py [--variants int8,int8+compile,compile] [--new-tokens 64] [--repeats 3]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from common import ASSETS

GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
VARIANTS = {  # name -> how to derive it from the float32 eager model
    "eager": lambda m: m,
    "compile": lambda m: copy.deepcopy(m).compile_decoding(),
    "int8": lambda m: copy.deepcopy(m).quantize_weights("int8"),
    "int8+compile": lambda m: copy.deepcopy(m).quantize_weights("int8").compile_decoding(),
}


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="int8,int8+compile,compile")
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
    fp32 = AutoModelForCausalLM.from_pretrained(GGUF)
    theirs = Llama(model_path=str(GGUF), n_ctx=512, n_threads=args.threads, verbose=False)
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")["input_ids"]
    n = args.new_tokens

    def run_theirs() -> list[int]:
        theirs.reset()
        out = []
        for token in theirs.generate(ids[0].tolist(), top_k=1, reset=True):
            out.append(token)
            if len(out) == n:
                return out
        return out

    reference = run_theirs()
    print(
        f"torch {torch.__version__}, {args.threads} threads; llama.cpp (llama-cpp-python) on {GGUF.name}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for name in args.variants.split(","):
        model = VARIANTS[name](fp32)

        def run_ours(model=model):
            return model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)[0, ids.shape[1] :]

        first = _seconds(run_ours)  # warm-up (and compilation)
        t_ours = t_theirs = float("inf")
        for _ in range(args.repeats):  # alternate, so a busy phase of the machine hits both
            t_ours = min(t_ours, _seconds(run_ours))
            t_theirs = min(t_theirs, _seconds(run_theirs))
        got = run_ours().tolist()
        same = next((i for i, (a, b) in enumerate(zip(got, reference)) if a != b), len(reference))
        print(
            f"{name:13s} ours {1000 * t_ours / n:5.1f} ms/token   llama.cpp {1000 * t_theirs / n:5.1f} ms/token   "
            f"ours/llama.cpp time {t_ours / t_theirs:4.2f}   same greedy prefix {same}/{len(reference)}   "
            f"first run {first:4.1f} s   load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
