"""Greedy generation speed, tinyformers vs transformers, same random GPT-2 weights, same process.

Cases: GPT-2 small shape (12 layers, 768 wide) at batch 1 and batch 8 (left padded), a tiny 2-layer model where
the per-token overhead is nearly all there is (plus its 50k-vocabulary head), and ``small-b8-eos``: batch 8
whose rows stop at different steps (eos tokens picked from a first run), where finished rows leave the batch;
it is also timed with finished rows kept (``fixed_batch_decoding``) to show what leaving saves. Each case runs
each of ``--variants`` (``eager``, ``compile``, ``int8``, ``int8+compile``; the eos case eager only): a first run
(which compiles), then the best of N alternated runs per side (``common.compare``), ms per step, the ratio, and a
check that the ids are identical; int8 is not exact, and at batch 1 its greedy agreement with float32 is
measured as for SmolLM2 (``greedy_agreement``, random prompts). The load average is printed: on a busy machine
the ratios move.

    python benchmarks/bench_gpt2_generate.py [--new-tokens 128] [--repeats 3] [--cases small-b1,small-b8,tiny-b1,small-b8-eos]
        [--variants eager,compile,int8,int8+compile]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from collections import Counter

import torch

from common import SPEED_VARIANTS, compare, machine, names_from, speed_variant, timed
from tinyformers.models.gpt2 import GPT2LMHeadModel
from tinyformers.models.quantized import greedy_agreement

CASES = {
    #   name: (n_layer, n_embd, n_head, batch)
    "small-b1": (12, 768, 12, 1),
    "small-b8": (12, 768, 12, 8),
    "tiny-b1": (2, 64, 4, 1),
    "small-b8-eos": (12, 768, 12, 8),
}
PROMPT = 8
PAD = 50256


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
        ids[row, : row % 4] = PAD
    return ids, mask


def staggered_eos(model, ids, mask, new_tokens: int) -> list[int]:
    """One eos token per row, a token that row alone generates, near step (r + 1) * new / (batch + 1): rows
    then stop at evenly spread steps (greedy decoding repeats itself, so most tokens occur more than once)."""
    out = model.generate(
        ids, attention_mask=mask, max_new_tokens=new_tokens, eos_token_id=None, pad_token_id=PAD
    )
    rows = out[:, PROMPT:].tolist()
    counts = Counter(token for row in rows for token in row)
    eos = []
    for r, row in enumerate(rows):
        target = (r + 1) * new_tokens // (len(rows) + 1)
        unique = [step for step, token in enumerate(row) if counts[row[step]] == 1]
        if unique:
            eos.append(row[min(unique, key=lambda step: abs(step - target))])
    return eos


def run_case(name: str, new_tokens: int, repeats: int, variants: list[str]) -> None:
    n_layer, n_embd, n_head, batch = CASES[name]
    with tempfile.TemporaryDirectory() as directory:
        theirs, fp32 = build(n_layer, n_embd, n_head, directory)
    ids, mask = inputs(batch)
    if name.endswith("-eos"):
        kwargs = dict(max_new_tokens=new_tokens, eos_token_id=staggered_eos(fp32, ids, mask, new_tokens))
        variants = ["eager"]  # the case is about rows leaving the batch, not the speed options
    else:  # min_new_tokens keeps both running the full length even if a row draws the eos token
        kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    kwargs.update(do_sample=False, pad_token_id=PAD, attention_mask=mask)
    results = {}

    def run_theirs():
        with torch.inference_mode():
            results["theirs"] = theirs.generate(ids, **kwargs)

    for variant in variants:
        ours = speed_variant(fp32, variant)

        def run_ours(ours=ours):
            results["ours"] = ours.generate(ids, **kwargs)

        first = timed(run_ours)  # compiles, for the compiled variants: reported apart from the timed runs
        t_ours, t_theirs = compare(run_ours, run_theirs, repeat=repeats)
        same = torch.equal(results["ours"], results["theirs"])
        steps = results["ours"].shape[1] - PROMPT  # fewer than new_tokens when every row stopped early
        print(
            f"{name:13s} {variant:12s} ours {1000 * t_ours / steps:7.2f} ms/step   transformers"
            f" {1000 * t_theirs / steps:7.2f} ms/step   ratio {t_theirs / t_ours:4.2f}x   ids identical: {same}"
            f"   first run {first:5.1f} s   load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if variant.startswith("int8") and batch == 1:  # not exact by design: how closely it follows fp32
            prompts = [
                torch.randint(0, 50000, (1, PROMPT), generator=torch.Generator().manual_seed(s))
                for s in range(8)
            ]
            prefix, forced = greedy_agreement(ours, fp32, prompts, new_tokens=32)
            print(
                f"{'':13s} {variant} vs fp32 over {len(prompts)} random prompts, 32 tokens: greedy prefix"
                f" agreement {prefix:.0%}, teacher-forced top-1 agreement {forced:.0%}",
                flush=True,
            )
    if name.endswith("-eos"):
        generated = results["ours"][:, PROMPT:]
        stops = [row.index(PAD) if PAD in row else len(row) for row in generated.tolist()]
        ours.fixed_batch_decoding = True  # finished rows stay in the batch, fed padding (transformers' way)
        t_kept, _ = compare(run_ours, lambda: None, repeat=repeats)
        same = torch.equal(results["ours"], results["theirs"])
        print(
            f"{'':13s} rows stop after {sorted(stops)} tokens; finished rows kept: {1000 * t_kept / steps:.2f}"
            f" ms/step; leaving the batch saves {100 * (1 - t_ours / t_kept):.0f} %   ids identical: {same}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", type=names_from(CASES, "case"), default=",".join(CASES))
    parser.add_argument(
        "--variants",
        type=names_from(SPEED_VARIANTS, "variant"),
        default="eager",
        help=f"comma-separated, of {', '.join(SPEED_VARIANTS)}",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"{machine()}, transformers {transformers.__version__}, load average {os.getloadavg()[0]:.1f}")
    for name in args.cases:
        run_case(name, args.new_tokens, args.repeats, args.variants)


if __name__ == "__main__":
    main()
