"""``tinyformers chat``: a conversation with a chat model in the terminal, its answers streamed."""

from __future__ import annotations

import json

from ..defaults import default_model
from .common import add_command
from .sampling import add_sampling_options, generation_options

CHAT_HELP = (
    "commands: /reset (forget the conversation), /system TEXT (set the system prompt), /quit; "
    "Ctrl-C stops an answer"
)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "chat",
        "chat with a model, streaming its answers",
        "  tinyformers chat                                  SmolLM2 (after tinyformers setup)\n"
        "  tinyformers chat --prompt 'What is the capital of France?'\n"
        "  tinyformers chat --model model.gguf --system 'Answer in one word.'\n"
        "  tinyformers chat --quantize int8 --compile         faster (answers may differ slightly)\n"
        "  tinyformers chat --model m.gguf --quantize gguf --compile\n"
        "                                                    fastest: the file's quantised blocks, ~file-size memory\n\n"
        f"In the conversation, {CHAT_HELP}.",
    )
    parser.add_argument(
        "--model",
        help="a model folder, .gguf file or hub id (default: SmolLM2-135M-Instruct, from tinyformers setup)",
    )
    parser.add_argument("--prompt", help="answer this one message and exit")
    parser.add_argument("--system", help="system prompt")
    add_sampling_options(parser, max_new_tokens=256)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compile the decoding step (~20-60 s once, then ~2x faster answers; or TINYFORMERS_COMPILE=1)",
    )
    parser.add_argument(
        "--quantize",
        choices=("int8", "gguf"),
        help="int8: int8 weights, ~2x faster again, answers may differ slightly; gguf (a .gguf model): keep the "
        "file's quantised blocks in memory (~1/5 of float32's), same answers as the file dequantised",
    )
    parser.set_defaults(handler=handle)


class ChatSession:
    """A conversation with a chat model: history in, streamed answer out."""

    def __init__(self, model_path: str, system: str | None, generation: dict, **speed):
        """``speed``: ``from_pretrained``'s ``compile=`` and ``quantize=``."""
        from ..auto import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, **speed)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_path} has no chat template; use a chat (instruct) model")
        self.system, self.generation, self.history = system, generation, []

    def answer(self, text: str, stream: bool = True) -> str:
        import torch

        from ..generation import TextStreamer

        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages += self.history + [{"role": "user", "content": text}]
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        streamer = (
            TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
        )
        with torch.inference_mode():
            out = self.model.generate(**enc, streamer=streamer, **self.generation)
        reply = self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        return reply


def handle(args) -> int:
    model = args.model or default_model("text-generation")
    # compile=None leaves it to $TINYFORMERS_COMPILE
    speed = {"quantize": args.quantize, "compile": True if args.compile else None}
    session = ChatSession(model, args.system, generation_options(args), **speed)
    if args.prompt is not None:
        reply = session.answer(args.prompt, stream=not args.json)
        print(json.dumps({"prompt": args.prompt, "reply": reply}) if args.json else "")
        return 0
    print(f"Chatting with {model}. {CHAT_HELP}")
    return converse(session)


def converse(session: ChatSession) -> int:
    """The read-answer loop, until /quit or end of input (Ctrl-D). Ctrl-C while an answer is written stops that
    answer and asks for the next message; at the prompt it ends the chat (exit code 130, as elsewhere)."""
    while True:
        try:
            text = input("> ").strip()
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()  # leave the prompt's line; main says the command was interrupted
            raise
        if text in ("/quit", "/exit"):
            return 0
        if text == "/reset":
            session.history = []
            print("(conversation forgotten)")
        elif text.startswith("/system"):
            session.system = text[len("/system") :].strip() or None
            session.history = []
            print(f"(system prompt {'set' if session.system else 'cleared'}; conversation restarted)")
        elif text.startswith("/"):
            print(CHAT_HELP)
        elif text:
            try:
                session.answer(text)
            except ValueError as e:  # e.g. the conversation outgrew the context: keep the REPL alive
                print(f"\nerror: {e} (type /reset to start over)")
            except KeyboardInterrupt:  # the history keeps only finished exchanges
                print("\n(answer stopped; it is left out of the conversation)")
            print()
