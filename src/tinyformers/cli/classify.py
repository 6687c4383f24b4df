"""``tinyformers classify TEXT...``: text classification with a sequence-classification head."""

from __future__ import annotations

from .batch import add_pipeline_options, run_texts, show
from .common import add_command, add_quantize_option, positive_int, quantize_param


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "classify",
        "text classification with a fine-tuned sequence-classification model",
        "  tinyformers classify 'What a great film!' --model FOLDER\n"
        "  tinyformers classify 'What a great film!' --model FOLDER --top-k 2 --json",
    )
    add_pipeline_options(
        parser,
        "a folder or hub id with a trained sequence-classification head (required: there is no default)",
    )
    parser.add_argument("--top-k", type=positive_int, help="the k best labels (default: the best one)")
    parser.add_argument("--function", choices=("softmax", "sigmoid", "none"), help="score function")
    add_quantize_option(parser)
    parser.set_defaults(handler=handle)


def handle(args) -> None:
    params = {"top_k": args.top_k, **quantize_param(args)} if args.top_k else quantize_param(args)
    if args.function:
        params["function_to_apply"] = args.function
    show(run_texts("text-classification", args, params), args)
