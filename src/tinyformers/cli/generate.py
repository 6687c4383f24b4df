"""``tinyformers generate PROMPT...``: continue prompts (or answer them as chat messages) with a causal LM."""

from __future__ import annotations

from .batch import add_pipeline_options, run_texts, show
from .checkpoints import check_found
from .common import add_command
from .sampling import add_sampling_options, generation_options, warn


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "generate",
        "continue prompts with a causal LM (greedy unless --temperature > 0)",
        "  tinyformers generate 'The capital of France is' --max-new-tokens 10\n"
        "  tinyformers generate 'Write a haiku about rain.' --chat --temperature 0.7\n"
        "  tinyformers generate --input prompts.jsonl --output completions.jsonl\n\n"
        "Texts given here are written out as they are generated, one after the other (Ctrl-C keeps what was\n"
        "shown); with --json or --input they are generated --batch-size at a time. An empty TEXT starts from\n"
        "the model's bos token.",
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
    if args.system and not args.chat:
        warn("--system has no effect without --chat (which sends each TEXT as a user message)")
    params = {**generation_options(args), "return_full_text": not args.new_only}
    if args.chat:
        # each text is one user message; the answer is the assistant message appended by the pipeline
        system = [{"role": "system", "content": args.system}] if args.system else []
        args.texts = [system + [{"role": "user", "content": t}] for t in args.texts] if args.texts else []
    if args.texts and not (args.input or args.output or args.json):
        stream_generations(args, params)
    else:  # JSON, or a batch job
        show(run_texts("text-generation", args, params), args)


def stream_generations(args, params: dict) -> None:
    """Print each text's generation as it is written, one text after the other, as ``print_generations`` lays
    them out: a stopped run keeps what it showed."""
    check_found(args.model)
    from ..generation import TextStreamer
    from ..pipelines import pipeline

    generator = pipeline("text-generation", model=args.model, **params)
    for i, text in enumerate(args.texts):
        print("\n" if i else "", end="")
        if isinstance(text, str) and not args.new_only:
            print(text, end="", flush=True)
        streamer = TextStreamer(generator.tokenizer, skip_prompt=True, skip_special_tokens=True)
        try:
            generator(text, streamer=streamer)
        except KeyboardInterrupt:
            print(flush=True)  # end the line that was being written
            raise
