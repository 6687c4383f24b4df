"""``tinyformers hub ...``: run a hub (``serve``), issue tokens (``token create``).

The client commands (login, whoami, search, info, download, upload) join the same group from ``hub_client``.
FastAPI and uvicorn are imported only by ``serve``; ``token create`` needs neither.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from . import hub_client
from .common import Parser, add_command, port

UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
}


def default_root() -> Path:
    if os.environ.get("TINYFORMERS_HUB_ROOT"):
        return Path(os.environ["TINYFORMERS_HUB_ROOT"])
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "tinyformers" / "hub"


def byte_size(text: str) -> int:
    """'100MiB', '1GB', '4096' -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use bytes or e.g. 100MiB, 2GB")
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def _root_option(parser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the hub's data folder (default $TINYFORMERS_HUB_ROOT or ~/.local/share)",
    )


def add_parser(subparsers) -> None:
    hub = add_command(
        subparsers,
        "hub",
        "run a Hugging Face-compatible model hub, and use one",
        "  tinyformers hub serve --root /srv/hub --host 0.0.0.0 --port 8080\n"
        "  tinyformers hub token create --root /srv/hub --user alice --role write\n"
        "  HF_ENDPOINT=http://HOST:8080 python -c 'from huggingface_hub import snapshot_download; ...'",
    )
    group = hub.add_subparsers(dest="hub_command", required=True, metavar="HUB_COMMAND", parser_class=Parser)

    serve = add_command(
        group,
        "serve",
        "serve a hub that huggingface_hub and transformers accept (HF_ENDPOINT=http://HOST:PORT)",
        "  tinyformers hub serve --root /srv/hub --port 8080\n"
        "  tinyformers hub serve --regular-limit 10MiB     larger files must come through LFS\n\n"
        "Uploads: files go base64 inside the commit while a commit stays under --regular-limit, so the\n"
        "default client (with hf_xet) just works; larger files go through the LFS batch API, which the\n"
        "client uses when HF_HUB_DISABLE_XET=1 is set before importing huggingface_hub.",
    )
    _root_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=port, default=8080, help="port (default 8080)")
    serve.add_argument(
        "--regular-limit",
        type=byte_size,
        default=None,
        help="regular (non-LFS) upload budget per commit (default 100MiB, or $TINYFORMERS_HUB_REGULAR_LIMIT)",
    )
    serve.add_argument(
        "--max-file-size",
        type=byte_size,
        default=None,
        help="largest file accepted (default 50GB, or $TINYFORMERS_HUB_MAX_FILE_SIZE)",
    )

    serve.set_defaults(handler=serve_hub)

    token = add_command(
        group, "token", "manage access tokens", "  tinyformers hub token create --user alice --role write"
    )
    token_group = token.add_subparsers(
        dest="token_command", required=True, metavar="TOKEN_COMMAND", parser_class=Parser
    )
    create = add_command(
        token_group,
        "create",
        "create a token (and its user); the token is the last line printed, and is shown only once",
        "  tinyformers hub token create --user alice --role write\n"
        "  export HF_TOKEN=$(tinyformers hub token create --user ci --role read | tail -n1)",
    )
    _root_option(create)
    create.add_argument(
        "--user", required=True, help="user name; its namespace is where a write token writes"
    )
    create.add_argument("--role", required=True, choices=("read", "write"), help="read, or read and write")
    create.add_argument("--name", default="cli", help="a label for the token (shown by whoami)")
    create.set_defaults(handler=create_token)

    hub_client.add_parsers(group)


def serve_hub(args) -> int:
    try:
        from ..hub.server.app import serve
        from ..hub.server.service import Settings
    except ImportError as e:
        raise OSError(
            f"the hub server needs its extra dependencies ({e.name}): pip install 'tinyformers[hub]'"
        ) from e
    settings = Settings.from_env(args.root or default_root(), args.regular_limit, args.max_file_size)
    serve(settings, host=args.host, port=args.port)
    return 0


def create_token(args) -> int:
    from ..hub.server.auth import create_token as new_token
    from ..hub.server.sqlite import SQLiteStore

    root = args.root or default_root()
    token = new_token(SQLiteStore(root / "hub.sqlite"), args.user, args.role, args.name)
    if getattr(args, "json", False):
        print(json.dumps({"user": args.user, "role": args.role, "root": str(root), "token": token}))
        return 0
    print(f"created a {args.role} token for '{args.user}' in {root}; it is shown only this once:")
    print(token)
    return 0
