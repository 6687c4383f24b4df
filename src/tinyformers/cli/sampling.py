"""The decoding flags of ``generate`` and ``chat``, declared once."""

from __future__ import annotations

import sys

from .common import non_negative_float, non_negative_int, positive_int, probability, random_seed

# What --top-p and --top-k are when sampling without them.
SAMPLING_DEFAULTS = {"top_p": 0.9, "top_k": 50}
SAMPLING_ONLY_FLAGS = {"top_p": "--top-p", "top_k": "--top-k", "seed": "--seed"}


def add_sampling_options(parser, max_new_tokens: int) -> None:
    parser.add_argument("--max-new-tokens", type=positive_int, default=max_new_tokens)
    parser.add_argument(
        "--temperature", type=non_negative_float, default=0.0, help="0 = greedy (default); e.g. 0.7 to sample"
    )
    # None = not given: the defaults apply when sampling, and a warning says when the flag has no effect
    parser.add_argument(
        "--top-p", type=probability, help=f"with sampling (default {SAMPLING_DEFAULTS['top_p']})"
    )
    parser.add_argument(
        "--top-k",
        type=non_negative_int,
        help=f"with sampling; 0 = no top-k filtering (default {SAMPLING_DEFAULTS['top_k']})",
    )
    parser.add_argument(
        "--seed", type=random_seed, help="with sampling: the same seed gives the same text (default: new)"
    )


def generation_options(args) -> dict:
    """``generate``'s options from the flags: greedy unless --temperature > 0, then sampling, seeded only when
    --seed is given (else every run draws anew: torch's generator would otherwise start from its fixed seed)."""
    options = {"max_new_tokens": args.max_new_tokens, "do_sample": args.temperature > 0}
    if args.temperature <= 0:
        for name, flag in SAMPLING_ONLY_FLAGS.items():
            if getattr(args, name) is not None:
                warn(f"{flag} has no effect with greedy decoding; sample with --temperature > 0 (e.g. 0.7)")
        return options
    import torch

    if args.seed is None:
        torch.seed()
    else:
        torch.manual_seed(args.seed)
    options["temperature"] = args.temperature
    options.update(
        {k: d if getattr(args, k) is None else getattr(args, k) for k, d in SAMPLING_DEFAULTS.items()}
    )
    return options


def warn(message: str) -> None:
    """A one-line warning on stderr: the command goes on."""
    print(f"tinyformers: warning: {message}", file=sys.stderr)
