"""``tinyformers run TASK TEXT...``: any pipeline task, its options passed with -p KEY=VALUE."""

from __future__ import annotations

import json

from .batch import add_pipeline_options, run_texts, show
from .common import CommandError, add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "run",
        "run any pipeline task on texts",
        "  tinyformers run fill-mask 'Paris is the [MASK] of France.' --model FOLDER -p top_k=3\n"
        "  tinyformers run ner 'Ada lives in London.' --model FOLDER -p aggregation_strategy=simple\n"
        "  tinyformers run feature-extraction 'hello' --json\n"
        "  tinyformers run text-classification --model FOLDER --input in.jsonl --output out.jsonl\n\n"
        "tasks: feature-extraction, sentence-embedding, fill-mask, text-classification (sentiment-analysis),\n"
        "zero-shot-classification (-p candidate_labels=a,b), token-classification (ner), text-generation;\n"
        "-p passes any option of the task's pipeline.",
    )
    parser.add_argument("task", help="the pipeline task, e.g. fill-mask")
    add_pipeline_options(
        parser,
        "model folder, .gguf file or hub id (default: the task's default model, from tinyformers setup)",
    )
    parser.add_argument(
        "-p", "--param", action="append", metavar="KEY=VALUE", help="a pipeline option (repeatable)"
    )
    parser.set_defaults(handler=handle)


def parse_params(pairs: list[str] | None) -> dict:
    """-p KEY=VALUE options; VALUE is read as JSON when it parses (3, true, null, ["a","b"]), else as text."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--param {pair!r} is not KEY=VALUE (e.g. -p top_k=3)")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def handle(args) -> None:
    show(run_texts(args.task, args, parse_params(args.param)), args)
