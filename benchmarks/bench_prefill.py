"""Does prefilling several prompts in one batch pay on this CPU? (The server prefills each joining prompt alone.)

SmolLM2-135M (the GGUF, fp32), ``n`` prompts of ``length`` tokens each: one forward of the ``[n, length]`` batch
against ``n`` forwards of ``[1, length]``, each into a fresh static cache, best of N after a warm-up. Prompts of
one length are the best case for batching (no padding); prompts of different lengths would also pay for their
padding.

    python benchmarks/bench_prefill.py [--rows 8] [--lengths 16 64 256]
"""

from __future__ import annotations

import argparse

import torch

from common import ASSETS, best_time, machine
from tinyformers import AutoModelForCausalLM

GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def prefill(model, ids: torch.Tensor) -> None:
    cache = model.allocate_cache(ids.shape[0], ids.shape[1] + 1)
    positions = torch.arange(ids.shape[1])[None].expand_as(ids)
    model.next_token_logits(ids, positions, cache)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(str(GGUF)).eval()
    print(machine())
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for length in args.lengths:
            ids = torch.randint(100, 40000, (args.rows, length), generator=generator)
            alone = best_time(args.runs, lambda ids=ids: [prefill(model, row[None]) for row in ids])
            batched = best_time(args.runs, lambda ids=ids: prefill(model, ids))
            print(
                f"{args.rows} prompts of {length:>4} tokens: one at a time {1000 * alone:7.1f} ms, "
                f"one batch {1000 * batched:7.1f} ms, batching gains {alone / batched:.2f}x"
            )


if __name__ == "__main__":
    main()
