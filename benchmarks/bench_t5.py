"""Encoder-decoder greedy generation speed, tinyformers vs transformers, same random Flan-T5-small-shaped weights.

Shape of google/flan-t5-small (d_model 512, 8 + 8 layers, 6 heads, d_ff 1024, gated GELU, untied head, vocab 32128),
a 16-token input, 64 new tokens (min_new_tokens keeps both running the full length). Each of ``--variants``
(``eager``, ``compile``, ``int8``, ``int8+compile``): a first run (which compiles), then the best of N
interleaved runs per library; tokens/s for both, the ratio, and a check that the generated ids are identical.
int8 is not exact: its greedy agreement with float32 is measured as for SmolLM2 (``greedy_agreement``), though a
random T5 is chaotic (its attention is nearly hard), so even float32 with 0.3 % noise on its weights agrees far
less than a trained model would.

    python benchmarks/bench_t5.py [--new-tokens 64] [--repeats 5] [--batch 1] [--variants eager,compile,int8,int8+compile]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings

import torch

from common import SPEED_VARIANTS, compare, machine, names_from, report, speed_variant, timed
from tinyformers.models.quantized import greedy_agreement
from tinyformers.models.t5 import T5ForConditionalGeneration

FLAN_T5_SMALL = dict(
    vocab_size=32128,
    d_model=512,
    d_kv=64,
    d_ff=1024,
    num_layers=8,
    num_decoder_layers=8,
    num_heads=6,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,
    decoder_start_token_id=0,
    initializer_factor=10.0,  # tiny random T5s otherwise emit only <pad>
)
# A 2-layer model where the per-token Python overhead is nearly all there is.
TINY = dict(
    FLAN_T5_SMALL,
    vocab_size=1100,
    d_model=64,
    d_kv=16,
    d_ff=128,
    num_layers=2,
    num_decoder_layers=2,
    num_heads=4,
)
SHAPES = {"flan-t5-small": FLAN_T5_SMALL, "tiny": TINY}
INPUT_TOKENS = 16


def build(shape: dict, directory: str):
    import transformers

    torch.manual_seed(0)
    theirs = transformers.T5ForConditionalGeneration(transformers.T5Config(**shape)).eval()
    # untied, as Flan-T5 (transformers 5 ties it even with tie_word_embeddings=False)
    theirs.lm_head.weight = torch.nn.Parameter(torch.randn(shape["vocab_size"], shape["d_model"]))
    theirs.save_pretrained(directory)
    return theirs, T5ForConditionalGeneration.from_pretrained(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--shapes", type=names_from(SHAPES, "shape"), default=",".join(SHAPES))
    parser.add_argument(
        "--variants",
        type=names_from(SPEED_VARIANTS, "variant"),
        default="eager",
        help=f"comma-separated, of {', '.join(SPEED_VARIANTS)}",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"{machine()}, transformers {transformers.__version__}, load average {os.getloadavg()[0]:.1f}")
    for name in args.shapes:
        run_case(name, args)


def inputs(batch: int, seed: int = 1) -> torch.Tensor:
    ids = torch.randint(3, 1000, (batch, INPUT_TOKENS), generator=torch.Generator().manual_seed(seed))
    ids[:, -1] = 1  # </s>, as the tokenizer ends every input
    return ids


def run_case(name: str, args) -> None:
    with tempfile.TemporaryDirectory() as directory:
        theirs, fp32 = build(SHAPES[name], directory)
    ids = inputs(args.batch)
    kwargs = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)
    outputs = {}

    def run_theirs():
        with torch.inference_mode():
            outputs["theirs"] = theirs.generate(input_ids=ids, **kwargs)

    for variant in args.variants:
        ours = speed_variant(fp32, variant)

        def run_ours(ours=ours):
            outputs["ours"] = ours.generate(ids, **kwargs)

        first = timed(run_ours)  # compiles, for the compiled variants: reported apart from the timed runs
        t_ours, t_theirs = compare(run_ours, run_theirs, repeat=args.repeats)
        tokens = args.batch * args.new_tokens
        report(f"{name} {variant} greedy b{args.batch} {args.new_tokens} tokens", t_ours, t_theirs)
        print(
            f"tinyformers {tokens / t_ours:8.1f} tok/s   transformers {tokens / t_theirs:8.1f} tok/s   "
            f"ids identical: {torch.equal(outputs['ours'], outputs['theirs'])}   first run {first:.1f} s   "
            f"load average after {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if variant.startswith("int8"):  # not exact by design: how closely it follows fp32
            prompts = [inputs(1, seed) for seed in range(8)]
            prefix, forced = greedy_agreement(ours, fp32, prompts, new_tokens=32)
            print(
                f"{variant} vs fp32 over {len(prompts)} random inputs, 32 tokens: greedy prefix agreement"
                f" {prefix:.0%}, teacher-forced top-1 agreement {forced:.0%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
