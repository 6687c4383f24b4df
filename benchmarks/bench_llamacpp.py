"""Greedy decoding of SmolLM2-135M Q4_1: tinyformers' speed options vs llama.cpp on the same GGUF file.

llama.cpp computes directly on the file's quantised blocks and is the reference for CPU decoding. Needs
``llama-cpp-python`` (not a project dependency: it builds for ~10 minutes); without it, says so and exits.

First, quality, the way the int8 rows are measured (``greedy_agreement``): over chat prompts, how many greedy tokens
each variant and llama.cpp produce before their first difference from float32-dequantised decoding, and how often
their top-1 next token given float32's own continuation is float32's. Then speed: each variant generates
``--new-tokens`` tokens after one chat prompt at batch 1, alternating with llama.cpp, warm-up first (which
includes compilation), best of N. Then memory: the resident-set growth of loading each (``--memory``; one fresh
process each, so nothing else is counted).

    python benchmarks/bench_llamacpp.py [--variants gguf+compile,int8+compile,compile] [--new-tokens 64]
        [--repeats 3] [--threads 2] [--prompts 4] [--memory]
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time

import torch

from common import ASSETS, SPEED_VARIANTS, names_from
from common import CHAT_QUESTIONS as QUESTIONS

GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _variant(fp32, name: str):
    """``name``'s model: float32 ``fp32`` itself or a copy with its options; ``gguf`` loads the file's blocks."""
    from tinyformers import AutoModelForCausalLM

    if name.startswith("gguf"):
        return AutoModelForCausalLM.from_pretrained(GGUF, quantize="gguf", compile="compile" in name)
    model = fp32 if name in ("eager", "fp32") else copy.deepcopy(fp32)
    if "int8" in name:
        model.quantize_weights("int8")
    if "compile" in name:
        model.compile_decoding()
    return model


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class LlamaCpp:
    """llama.cpp on the file: greedy generation, and next-token picks along a given sequence."""

    def __init__(self, threads: int, logits_all: bool = False):
        from llama_cpp import Llama

        self.model = Llama(
            model_path=str(GGUF), n_ctx=512, n_threads=threads, verbose=False, logits_all=logits_all
        )

    def generate(self, ids: list[int], n: int) -> list[int]:
        self.model.reset()
        out = []
        for token in self.model.generate(ids, top_k=1, reset=True):
            out.append(token)
            if len(out) == n:
                break
        return out

    def picks(self, ids: list[int]) -> torch.Tensor:
        """argmax of the logits at every position of ``ids``."""
        self.model.reset()
        self.model.eval(ids)
        return torch.from_numpy(self.model.scores[: len(ids)]).argmax(-1)


def agreement_of_llama_cpp(theirs: LlamaCpp, fp32, prompts, n: int) -> tuple[float, float]:
    """``greedy_agreement``'s two shares for llama.cpp against ``fp32``."""
    prefix = forced = 0
    for ids in prompts:
        reference = fp32.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)[0]
        want = reference[ids.shape[1] :]
        got = torch.tensor(theirs.generate(ids[0].tolist(), n))
        differs = (got != want[: len(got)]).nonzero()
        prefix += int(differs[0]) if len(differs) else len(got)
        picks = theirs.picks(reference[:-1].tolist())[ids.shape[1] - 1 :]
        forced += int((picks == want).sum())
    return prefix / (n * len(prompts)), forced / (n * len(prompts))


MEMORY_PROBE = """
import gc, sys, torch
def rss():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) * 1024
which, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
if which == "llama.cpp":
    from llama_cpp import Llama
    load = lambda: Llama(model_path=path, n_ctx=512, n_threads=threads, verbose=False)
else:
    from tinyformers import AutoModelForCausalLM
    load = lambda: AutoModelForCausalLM.from_pretrained(path, quantize={"fp32": None}.get(which, which))
growth, models = [], []
for _ in range(2):
    before = rss()
    models.append(load())
    gc.collect()
    growth.append(rss() - before)
print(*growth)
"""


def resident_growth(which: str, threads: int) -> tuple[int, int]:
    """Bytes the resident set grows by while ``which`` loads the file in a fresh process (one-time imports and
    allocator growth included), and while it loads a second copy beside the first (the model alone)."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, which, str(GGUF), str(threads)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    first, second = map(int, out.stdout.split()[-2:])
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants",
        type=names_from(("gguf", "gguf+compile", *SPEED_VARIANTS), "variant"),
        default="gguf+compile,int8+compile,compile",
    )
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--prompts", type=int, default=4, help="chat prompts for the agreement (32 tokens each)"
    )
    parser.add_argument("--memory", action="store_true", help="also measure the memory of loading")
    args = parser.parse_args()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("llama-cpp-python is not installed (pip install llama-cpp-python, ~10 min build); skipping")
        return
    from tinyformers import AutoModelForCausalLM, AutoTokenizer
    from tinyformers.models.quantized import greedy_agreement

    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(GGUF)
    fp32 = AutoModelForCausalLM.from_pretrained(GGUF)
    theirs = LlamaCpp(args.threads)  # timed
    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": q}], add_generation_prompt=True, return_tensors="pt"
        )["input_ids"]
        for q in QUESTIONS[: args.prompts]
    ]
    ids, n = prompts[0], args.new_tokens
    print(
        f"torch {torch.__version__}, {args.threads} threads; llama.cpp (llama-cpp-python) on {GGUF.name}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    with torch.inference_mode():
        prefix, forced = agreement_of_llama_cpp(LlamaCpp(args.threads, logits_all=True), fp32, prompts, 32)
        print(
            f"{'llama.cpp':13s} vs float32: {prefix:.0%} of tokens before the first difference, "
            f"{forced:.0%} teacher-forced top-1"
        )
        for name in args.variants:
            model = _variant(fp32, name)

            def run_ours(model=model):
                out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
                return out[0, ids.shape[1] :]

            first = _seconds(run_ours)  # warm-up (and compilation)
            prefix, forced = greedy_agreement(model, fp32, prompts, new_tokens=32)
            t_ours = t_theirs = float("inf")
            for _ in range(args.repeats):  # alternate, so a busy phase of the machine hits both
                t_ours = min(t_ours, _seconds(run_ours))
                t_theirs = min(t_theirs, _seconds(lambda: theirs.generate(ids[0].tolist(), n)))
            print(
                f"{name:13s} vs float32: {prefix:.0%} before the first difference, {forced:.0%} teacher-forced; "
                f"ours {1000 * t_ours / n:5.1f} ms/token   llama.cpp {1000 * t_theirs / n:5.1f} ms/token   "
                f"tokens/s ours/llama.cpp {t_theirs / t_ours:4.2f}   first run {first:4.1f} s   "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    if args.memory:
        size = GGUF.stat().st_size
        for which in ("llama.cpp", "gguf", "int8", "fp32"):
            first, second = resident_growth(which, args.threads)
            print(f"memory: loading {which:9s} grows the resident set by {first / 1e6:6.1f} MB in a fresh "
                  f"process ({first / size:4.2f}x the {size / 1e6:.1f} MB file), {second / 1e6:6.1f} MB "
                  f"({second / size:4.2f}x) for a second copy beside it")  # fmt: skip


if __name__ == "__main__":
    main()
