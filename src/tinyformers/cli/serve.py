"""``tinyformers serve``: an OpenAI-compatible server for one model (see docs/serving.md).

FastAPI and uvicorn are imported by ``serving.server`` only when the command runs.
"""

from __future__ import annotations

from ..serving.defaults import GATHER_GAP, MAX_BATCH, MAX_QUEUE, PROMPT_CACHE_MIB
from .checkpoints import check_found
from .common import Number, add_command, non_negative_int, port, positive_int


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "serve",
        "an OpenAI-compatible server (chat, completions, embeddings) with continuous batching",
        "  tinyformers serve .assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --port 8000 --max-batch 16\n"
        "  tinyformers serve .assets/minilm                      /v1/embeddings for an encoder\n"
        "  tinyformers serve ./flan-t5-small                     /v1/completions for T5 (text2text)",
    )
    parser.add_argument("model", help="a model folder, a .gguf file or a hub id in the local cache")
    parser.add_argument("--gguf-file", help="the .gguf file inside MODEL's folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--max-batch",
        type=positive_int,
        default=MAX_BATCH,
        help=f"requests decoded together (default {MAX_BATCH})",
    )
    parser.add_argument(
        "--max-queue",
        type=non_negative_int,
        default=MAX_QUEUE,
        help=f"waiting requests before 429 (default {MAX_QUEUE})",
    )
    parser.add_argument(
        "--max-context",
        type=Number(int, low=2),
        help="cache positions per request, and prompt tokens for T5 (default: the model's, or 2048; T5 512)",
    )
    parser.add_argument(
        "--prompt-cache-mib",
        type=non_negative_int,
        default=PROMPT_CACHE_MIB,
        help="memory for the keys and values of recent prompts, reused by prompts that start the same way "
        f"(default {PROMPT_CACHE_MIB}; 0 turns it off)",
    )
    parser.add_argument(
        "--gather-ms",
        type=Number(float, low=0, high=1000),
        default=GATHER_GAP * 1000,
        help="an idle server waits while requests keep arriving this many milliseconds apart, so that a burst "
        f"starts decoding together (default {GATHER_GAP * 1000:g}; 0 starts each at once)",
    )
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1/ routes")
    parser.add_argument("--compile", action="store_true", help="compile the decoding step (slower start)")
    parser.add_argument(
        "--quantize",
        choices=("int8", "gguf"),
        help="int8 weights, or (a .gguf model) gguf: the file's quantised blocks, fastest with --compile",
    )
    parser.set_defaults(handler=handle)


def handle(args) -> None:
    check_found(args.model)
    from ..serving.server import serve

    serve(
        host=args.host,
        port=args.port,
        model=args.model,
        gguf_file=args.gguf_file,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        max_context=args.max_context,
        api_key=args.api_key,
        compile=args.compile,
        quantize=args.quantize,
        prompt_cache_mib=args.prompt_cache_mib,
        gather_seconds=args.gather_ms / 1000,
    )
