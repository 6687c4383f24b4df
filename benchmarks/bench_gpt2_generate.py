"""Greedy generation speed, tinyformers vs transformers, same random GPT-2 weights, same process.

Cases: GPT-2 small shape (12 layers, 768 wide) at batch 1 and batch 8 (left padded), and a tiny 2-layer model
where the per-token Python overhead is all there is. Each case: warm-up, then best of N timed runs per
library (interleaved), tokens/s for both, the ratio, and a check that the generated ids are identical.

    python benchmarks/bench_gpt2_generate.py [--new-tokens 128] [--repeats 3] [--cases small-b1,small-b8,tiny-b1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import torch

from tinyformers.models.gpt2 import GPT2LMHeadModel

CASES = {
    #   name: (n_layer, n_embd, n_head, batch)
    "small-b1": (12, 768, 12, 1),
    "small-b8": (12, 768, 12, 8),
    "tiny-b1": (2, 64, 4, 1),
}
PROMPT = 8


def build(n_layer: int, n_embd: int, n_head: int, directory: str):
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, initializer_range=0.2)
    theirs = transformers.GPT2LMHeadModel(config).eval()
    theirs.save_pretrained(directory)
    return theirs, GPT2LMHeadModel.from_pretrained(directory)


def inputs(batch: int):
    torch.manual_seed(1)
    ids = torch.randint(0, 50000, (batch, PROMPT))
    mask = torch.ones_like(ids)
    for row in range(1, batch):  # left padding of 0..3 tokens
        mask[row, : row % 4] = 0
        ids[row, : row % 4] = 50256
    return ids, mask


def best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run_case(name: str, new_tokens: int, repeats: int) -> None:
    n_layer, n_embd, n_head, batch = CASES[name]
    with tempfile.TemporaryDirectory() as directory:
        theirs, ours = build(n_layer, n_embd, n_head, directory)
    ids, mask = inputs(batch)
    # min_new_tokens keeps both running the full length even if a row draws the eos token.
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=50256)

    def run_ours():
        return ours.generate(ids, attention_mask=mask, **kwargs)

    def run_theirs():
        with torch.inference_mode():
            return theirs.generate(ids, attention_mask=mask, **kwargs)

    run_ours(), run_theirs()  # warm-up
    t_ours, t_theirs, out_ours, out_theirs = float("inf"), float("inf"), None, None
    for _ in range(repeats):  # interleaved, so drift in machine speed hits both alike
        t, out_ours = best_time(run_ours, 1)
        t_ours = min(t_ours, t)
        t, out_theirs = best_time(run_theirs, 1)
        t_theirs = min(t_theirs, t)
    tokens = batch * new_tokens
    same = torch.equal(out_ours, out_theirs)
    print(
        f"{name:9s} ours {tokens / t_ours:8.1f} tok/s ({1000 * t_ours / new_tokens:6.2f} ms/step)   "
        f"transformers {tokens / t_theirs:8.1f} tok/s ({1000 * t_theirs / new_tokens:6.2f} ms/step)   "
        f"ratio {t_theirs / t_ours:4.2f}x   ids identical: {same}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, transformers {transformers.__version__}"
    )
    for name in args.cases.split(","):
        run_case(name, args.new_tokens, args.repeats)


if __name__ == "__main__":
    main()
