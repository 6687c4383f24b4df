"""``tinyformers env``: versions and threads, for bug reports."""

from __future__ import annotations

import platform

from .common import add_command
from .output import print_data


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "env", "versions and threads, for bug reports", "  tinyformers env --json"
    )
    parser.set_defaults(handler=handle)


def handle(args) -> None:
    print_data(env(), args.json)


def env() -> dict:
    import torch

    from .. import __version__

    return {
        "tinyformers": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
