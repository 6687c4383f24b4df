"""The ``tinyformers`` command.

    tinyformers env            versions and threads, for bug reports
    tinyformers info FOLDER    what a model folder holds: type, architecture, parameters, files

Add ``--json`` for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
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
    info = sub.add_parser("info", help="describe a model folder (or cached hub id)")
    info.add_argument("model", help="a folder holding config.json, or a hub id in the local cache")
    args = parser.parse_args(argv)
    try:
        data = _env() if args.command == "env" else _info(args.model)
    except (OSError, ValueError) as e:
        print(f"tinyformers: error: {e}", file=sys.stderr)
        return 2
    _print(data, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
