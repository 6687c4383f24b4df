"""Float32 matrix products of decoding steps, per call: ``F.linear`` (what transformers runs), oneDNN's inner
product on the plain [out, in] weight and on a copy packed for a few rows (``inner_product.PackedWeight``), and
the project's C kernel (``kernels.float_linear``, what steps of up to 16 rows use where it is built), for
SmolLM2-135M's matrix shapes and a step's row counts.
Each shape has ``--matrices`` distinct random matrices, called in turn, so that weights come from memory as in a
real step; best of ``--repeats``. The packed product is checked to give the plain one's bits first (2+ rows).

    python benchmarks/bench_products.py [--rows 1,2,4,8,16,45] [--matrices 30] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from common import best_time, machine
from tinyformers.models import kernels

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

    kernel = kernels.library() is not None
    print(
        f"{machine()}; µs per call: F.linear / oneDNN plain / oneDNN packed / C kernel (speed-up of the faster "
        "of the last two over F.linear)" + ("" if kernel else "; the C kernel did not build here")
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
                candidates = [(F.linear, weights), (inner_product, weights), (inner_product, packed)]
                if kernel and n <= kernels.FLOAT_MAX_ROWS:
                    torch.testing.assert_close(
                        kernels.float_linear(x, weights[0], None),
                        F.linear(x, weights[0]),
                        rtol=1e-4,
                        atol=1e-4,
                    )
                    candidates.append((lambda x, w: kernels.float_linear(x, w, None), weights))
                times = [per_call(f, x, w, args.repeats) for f, w in candidates]
                shown = "/".join(f"{t:.0f}" for t in times) + ("" if len(times) == 4 else "/-")
                cells.append(f"{n} rows {shown} ({times[0] / min(times[2:]):.2f}x)")
            print(f"{out_features}x{in_features}: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
