"""``tinyformers generate PROMPT...``: continue prompts (or answer them as chat messages) with a causal LM."""

from __future__ import annotations

from .batch import add_pipeline_options, run_texts, show
from .common import add_command
from .sampling import add_sampling_options, generation_options


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "generate",
        "continue prompts with a causal LM (greedy unless --temperature > 0)",
        "  tinyformers generate 'The capital of France is' --max-new-tokens 10\n"
        "  tinyformers generate 'Write a haiku about rain.' --chat --temperature 0.7\n"
        "  tinyformers generate --input prompts.jsonl --output completions.jsonl",
    )
    add_pipeline_options(
        parser, "a causal LM folder, .gguf file or hub id (default: SmolLM2, from tinyformers setup)"
    )
    add_sampling_options(parser, max_new_tokens=50)
    parser.add_argument(
        "--chat", action="store_true", help="send each TEXT as a user message (chat template)"
    )
    parser.add_argument("--system", help="system prompt, with --chat")
    parser.add_argument(
        "--new-only", action="store_true", help="print only the generated text, not the prompt"
    )
    parser.set_defaults(handler=handle)


def handle(args) -> None:
    params = {**generation_options(args), "return_full_text": not args.new_only}
    if args.chat:
        # each text is one user message; the answer is the assistant message appended by the pipeline
        system = [{"role": "system", "content": args.system}] if args.system else []
        args.texts = [system + [{"role": "user", "content": t}] for t in args.texts] if args.texts else []
    show(run_texts("text-generation", args, params), args, print_generations)


def print_generations(data: dict) -> None:
    for i, item in enumerate(data["results"]):
        for record in item["result"]:
            text = record["generated_text"]
            print(("\n" if i else "") + (text[-1]["content"] if isinstance(text, list) else text))
