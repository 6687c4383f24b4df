"""The ``tinyformers`` command.

    tinyformers chat                          chat with SmolLM2 (the GGUF fetched by `make demo`), streaming
    tinyformers chat --prompt "Hi there"      one answer, then exit (for scripts)
    tinyformers chat --model DIR_OR_GGUF      chat with another causal LM that has a chat template
    tinyformers info FOLDER                   what a model folder holds: type, architecture, parameters, files
    tinyformers env                           versions and threads, for bug reports

Add ``--json`` (before the command) for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys


def _env() -> dict:
    import torch

    from . import __version__

    return {
        "tinyformers": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def _info(path: str) -> dict:
    from .auto import AutoConfig
    from .formats.checkpoint import find_weights
    from .formats.safetensors import read_header
    from .hub import resolve_dir

    directory = resolve_dir(path)
    config = AutoConfig.from_pretrained(directory)
    params = 0
    for weights in find_weights(directory):
        if weights.suffix == ".safetensors":
            header, _ = read_header(weights)
            params += sum(
                _numel(entry["shape"]) for name, entry in header.items() if not name.endswith("position_ids")
            )
    files = {
        str(p.relative_to(directory)): p.stat().st_size for p in sorted(directory.rglob("*")) if p.is_file()
    }
    return {
        "path": str(directory),
        "model_type": config.model_type,
        "architectures": config.architectures,
        "parameters": params or None,
        "dtype": config.dtype,
        "context_length": getattr(config, "max_position_embeddings", None),
        "files": files,
    }


DEFAULT_CHAT_MODEL = os.path.join("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
CHAT_HELP = "commands: /reset (forget the conversation), /system TEXT (set the system prompt), /quit"


class ChatSession:
    """A conversation with a chat model: history in, streamed answer out."""

    def __init__(self, model_path: str, system: str | None, generation: dict):
        from .auto import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_path} has no chat template; use a chat (instruct) model")
        self.system, self.generation, self.history = system, generation, []

    def answer(self, text: str, stream: bool = True) -> str:
        import torch

        from .generation import TextStreamer

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


def _chat(args) -> int:
    model = args.model or os.path.join(os.environ.get("ASSETS_DIR", ".assets"), DEFAULT_CHAT_MODEL)
    generation = {"max_new_tokens": args.max_new_tokens, "do_sample": args.temperature > 0}
    if args.temperature > 0:
        import torch

        torch.manual_seed(args.seed)
        generation.update(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    session = ChatSession(model, args.system, generation)
    if args.prompt is not None:
        reply = session.answer(args.prompt, stream=not args.json)
        print(json.dumps({"prompt": args.prompt, "reply": reply}) if args.json else "")
        return 0
    print(f"Chatting with {model}. {CHAT_HELP}")
    while True:
        try:
            text = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
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
            print()


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _print(data: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k:<40} {v:>12,}" if isinstance(v, int) else f"  {k:<40} {v}")
        else:
            print(f"{key:<16} {value:,}" if isinstance(value, int) else f"{key:<16} {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tinyformers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="versions and threads")
    chat = sub.add_parser(
        "chat",
        help="chat with a model, streaming its answers",
        description="Chat with a causal LM that has a chat template. Greedy by default (reproducible); "
        "--temperature > 0 samples. Example: tinyformers chat --prompt 'What is the capital of France?'",
    )
    chat.add_argument(
        "--model", help="a model folder or .gguf file (default: the SmolLM2 GGUF in $ASSETS_DIR)"
    )
    chat.add_argument("--prompt", help="answer this one message and exit")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument(
        "--temperature", type=float, default=0.0, help="0 = greedy (default); e.g. 0.7 to sample"
    )
    chat.add_argument("--top-p", type=float, default=0.9)
    chat.add_argument("--top-k", type=int, default=50)
    chat.add_argument("--seed", type=int, default=0)
    info = sub.add_parser("info", help="describe a model folder (or cached hub id)")
    info.add_argument("model", help="a folder holding config.json, or a hub id in the local cache")
    args = parser.parse_args(argv)
    try:
        if args.command == "chat":
            return _chat(args)
        data = _env() if args.command == "env" else _info(args.model)
    except (OSError, ValueError) as e:
        print(f"tinyformers: error: {e}", file=sys.stderr)
        return 2
    _print(data, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
