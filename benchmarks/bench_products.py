"""Float32 matrix products of decoding steps, per call: ``F.linear`` (what transformers runs), oneDNN's inner
product on the plain [out, in] weight (tinyformers' one-sequence steps) and on a copy packed for a few rows
(its batched steps, ``inner_product.PackedWeight``), for SmolLM2-135M's matrix shapes and a step's row counts.
Each shape has ``--matrices`` distinct random matrices, called in turn, so that weights come from memory as in a
real step; best of ``--repeats``. The packed product is checked to give the plain one's bits first (2+ rows).

    python benchmarks/bench_products.py [--rows 1,2,4,8,16,45] [--matrices 30] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from common import best_time, machine

# SmolLM2-135M: q/o, gate+up, down, the tied head
SHAPES = [(576, 576), (3072, 576), (576, 1536), (49152, 576)]


def per_call(fn, x, weights, repeats: int) -> float:
    """Best time of one call, in µs, over ``repeats`` passes through every matrix (after one warm-up pass)."""
    return best_time(repeats, lambda: [fn(x, w) for w in weights]) / len(weights) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,2,4,8,16,45", help="comma-separated row counts")
    parser.add_argument(
        "--matrices", type=int, default=30, help="distinct matrices per shape (3 for the head)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    if not torch.backends.mkldnn.is_available():
        raise SystemExit("this torch has no oneDNN: nothing to compare")
    onednn = torch.ops.mkldnn._linear_pointwise

    def inner_product(x, w):
        return onednn(x, w, None, "none", [], "")

    print(
        f"{machine()}; µs per call: F.linear / oneDNN plain / oneDNN packed (speed-up of packed over F.linear)"
    )
    torch.manual_seed(0)
    with torch.inference_mode():
        for out_features, in_features in SHAPES:
            count = args.matrices if out_features * in_features < 10_000_000 else 3
            weights = [torch.randn(out_features, in_features) / in_features**0.5 for _ in range(count)]
            packed = [torch.ops.mkldnn._reorder_linear_weight(w, 8) for w in weights]
            cells = []
            for n in rows:
                x = torch.randn(n, in_features)
                if n > 1 and not torch.equal(inner_product(x, packed[0]), inner_product(x, weights[0])):
                    raise SystemExit(
                        f"packed and plain products differ for {n} rows of {out_features}x{in_features}"
                    )
                times = [
                    per_call(f, x, w, args.repeats)
                    for f, w in ((F.linear, weights), (inner_product, weights), (inner_product, packed))
                ]
                cells.append(
                    f"{n} rows {times[0]:.0f}/{times[1]:.0f}/{times[2]:.0f} ({times[0] / times[2]:.2f}x)"
                )
            print(f"{out_features}x{in_features}: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
