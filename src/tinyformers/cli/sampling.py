"""The decoding flags of ``generate`` and ``chat``, declared once."""

from __future__ import annotations

from .common import non_negative_float, non_negative_int, positive_int, probability, random_seed


def add_sampling_options(parser, max_new_tokens: int) -> None:
    parser.add_argument("--max-new-tokens", type=positive_int, default=max_new_tokens)
    parser.add_argument(
        "--temperature", type=non_negative_float, default=0.0, help="0 = greedy (default); e.g. 0.7 to sample"
    )
    parser.add_argument("--top-p", type=probability, default=0.9)
    parser.add_argument("--top-k", type=non_negative_int, default=50, help="0 = no top-k filtering")
    parser.add_argument("--seed", type=random_seed, default=0)


def generation_options(args) -> dict:
    """``generate``'s options from the flags: greedy unless --temperature > 0, then seeded sampling."""
    options = {"max_new_tokens": args.max_new_tokens, "do_sample": args.temperature > 0}
    if args.temperature > 0:
        import torch

        torch.manual_seed(args.seed)
        options.update(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    return options
