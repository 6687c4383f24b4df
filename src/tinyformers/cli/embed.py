"""``tinyformers embed TEXT...``: sentence embeddings and, for several texts, their cosine similarities."""

from __future__ import annotations

from .batch import add_pipeline_options, print_results, run_texts, show
from .common import add_command, add_quantize_option, quantize_param
from .output import table


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "embed",
        "sentence embeddings (pooled and normalised as the model folder says) and their cosine similarities",
        "  tinyformers embed 'A man is eating food.' 'A man is eating pasta.' 'The sky is blue.'\n"
        "  tinyformers embed --input sentences.jsonl --output vectors.jsonl --batch-size 32 --quantize int8",
    )
    add_pipeline_options(
        parser,
        "a sentence-transformers or encoder folder or hub id (default: all-MiniLM-L6-v2, from tinyformers setup)",
    )
    parser.add_argument("--no-normalize", action="store_true", help="keep the raw pooled vectors")
    add_quantize_option(parser)
    parser.set_defaults(handler=handle)


def handle(args) -> None:
    params = {"normalize": False} if args.no_normalize else {}
    data = run_texts("sentence-embedding", args, {**params, **quantize_param(args)})
    if data is not None and len(data["results"]) > 1:
        data["similarity"] = cosine_matrix([item["result"] for item in data["results"]])
        show(data, args, print_with_similarity)
    else:
        show(data, args)


def cosine_matrix(vectors: list[list[float]]) -> list[list[float]]:
    import torch

    v = torch.nn.functional.normalize(torch.tensor(vectors), dim=1)
    return [[round(x, 4) for x in row] for row in (v @ v.T).tolist()]


def print_with_similarity(data: dict) -> None:
    print_results(data)
    print("\ncosine similarity:")
    labels = [f"[{i}]" for i in range(len(data["similarity"]))]
    rows = [{"": label, **dict(zip(labels, row))} for label, row in zip(labels, data["similarity"])]
    print(table(rows))
