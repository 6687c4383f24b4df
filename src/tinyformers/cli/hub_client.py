"""``tinyformers hub login|whoami|search|info|download|upload``: the client side of the ``hub`` group.

They talk to ``$HF_ENDPOINT`` with the token huggingface_hub uses (``$HF_TOKEN``, else the file ``hf auth login``
writes, which ``login`` writes too), and download into the shared Hugging Face cache.
"""

from __future__ import annotations

import getpass
import json
import os
import sys

from ..hub import api
from ..hub.download import snapshot_download
from ..hub.http import endpoint, get_token, save_token, stored_tokens_path
from ..hub.upload import upload_folder
from .common import add_command
from .info import hub_info, repo_size
from .output import print_data, table

SORTS = ("downloads", "likes", "lastModified", "createdAt")


def add_parsers(group) -> None:
    """Add the client commands to the ``hub`` group's subparsers."""
    login = add_command(
        group,
        "login",
        "check a token against the hub and save it where `hf auth login` does",
        "  tinyformers hub login --token hf_...\n  echo $TOKEN | tinyformers hub login",
    )
    login.add_argument("--token", help="the token (default: prompt, or one line on stdin)")
    add_command(group, "whoami", "who the saved token (or $HF_TOKEN) belongs to", "  tinyformers hub whoami")

    search = add_command(
        group,
        "search",
        "find models: id, task, downloads, likes, size, last update",
        "  tinyformers hub search minilm --task feature-extraction\n"
        "  tinyformers hub search '' --sort likes --limit 5 --json",
    )
    search.add_argument("query", nargs="?", default="", help="text in the model id (default: all)")
    search.add_argument("--task", help="pipeline tag, e.g. text-classification")
    search.add_argument("--author", help="only this namespace")
    search.add_argument("--sort", choices=SORTS, default="downloads", help="default downloads")
    search.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")

    for name, summary, examples in (
        (
            "info",
            "a hub model before you download it: card summary, task, model type, files with sizes",
            "  tinyformers hub info alice/minilm\n  tinyformers hub info alice/minilm --revision v1 --json",
        ),
        (
            "download",
            "download every file of a model into the shared cache (and optionally a folder)",
            "  tinyformers hub download alice/minilm\n"
            "  tinyformers hub download alice/minilm --revision v1 --local-dir ./minilm",
        ),
    ):
        parser = add_command(group, name, summary, examples)
        parser.add_argument("repo_id", metavar="ID")
        parser.add_argument("--revision", help="branch, tag or commit (default main)")
    parser.add_argument("--local-dir", help="also copy the files into this folder")  # download's own

    upload = add_command(
        group,
        "upload",
        "upload a folder to a model repo in one commit (created if needed)",
        "  tinyformers hub upload ./my-model alice/my-model --message 'First version'",
    )
    upload.add_argument("folder", metavar="DIR")
    upload.add_argument("repo_id", metavar="ID")
    upload.add_argument("--message", default="Upload with tinyformers", help="the commit message")
    upload.add_argument("--revision", default="main", help="the branch to commit to (default main)")
    upload.add_argument("--private", action="store_true", help="create the repo private")
    for name in COMMANDS:
        group.choices[name].set_defaults(handler=_handle)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _login(args) -> dict:
    token = args.token
    if not token:
        token = getpass.getpass("Token: ") if sys.stdin.isatty() else sys.stdin.readline()
    token = token.strip()
    if not token:
        raise ValueError("no token given; pass --token TOKEN or one line on stdin")
    if token.startswith("api_org"):
        raise ValueError("that is an organization token: log in with a personal access token")
    me = api.whoami(token=token)  # a token the hub rejects is never saved
    access = (me.get("auth") or {}).get("accessToken") or {}
    name = access.get("displayName") or f"oauth-{me.get('name')}"  # the name `hf auth login` stores it under
    path = save_token(token, name)
    answer = {
        "user": me.get("name"),
        "role": access.get("role"),
        "token_name": name,
        "endpoint": endpoint(),
        "token_file": str(path),
        "stored_tokens": str(stored_tokens_path()),
    }
    if os.environ.get("HF_TOKEN"):
        answer["note"] = "HF_TOKEN is set: it stays the active token until you unset it"
    return answer


def _whoami(args) -> dict:
    if not get_token():
        raise PermissionError("not logged in: run `tinyformers hub login` or set HF_TOKEN")
    me = api.whoami()
    return {
        "user": me.get("name"),
        "fullname": me.get("fullname"),
        "orgs": [org.get("name") for org in me.get("orgs") or []],
        "role": ((me.get("auth") or {}).get("accessToken") or {}).get("role"),
        "endpoint": endpoint(),
    }


def _search(args) -> list[dict]:
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, not {args.limit}")
    models = api.list_models(args.query, task=args.task, author=args.author, sort=args.sort, limit=args.limit)
    return [
        {
            "id": m["id"],
            "task": m.get("pipeline_tag"),
            "downloads": m.get("downloads", 0),
            "likes": m.get("likes", 0),
            "size": repo_size(m),
            "updated": (m.get("lastModified") or "")[:10] or None,
        }
        for m in models
    ]


def _info(args) -> dict:
    return hub_info(args.repo_id, args.revision)


def _download(args) -> dict:
    folder = snapshot_download(args.repo_id, args.revision, local_dir=args.local_dir)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    return {
        "id": args.repo_id,
        "path": str(folder.resolve()),
        "files": len(files),
        "size": sum(p.stat().st_size for p in files),
    }


def _upload(args) -> dict:
    commit = upload_folder(
        args.folder, args.repo_id, message=args.message, revision=args.revision, create=True,
        private=args.private or None,
    )  # fmt: skip
    return {"id": args.repo_id, "commit": commit.get("commitOid"), "url": commit.get("commitUrl")}


def _show_search(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print("no models match")
    else:
        print(table([{**r, "size": _size(r["size"]), "task": r["task"] or "-"} for r in rows]))


def _show(data: dict, as_json: bool) -> None:
    if not as_json and "size" in data:
        data = {**data, "size": _size(data["size"])}
    print_data(data, as_json)


COMMANDS = {
    "login": (_login, _show),
    "whoami": (_whoami, _show),
    "search": (_search, _show_search),
    "info": (_info, _show),
    "download": (_download, _show),
    "upload": (_upload, _show),
}


def _handle(args) -> int:
    compute, show = COMMANDS[args.hub_command]
    show(compute(args), getattr(args, "json", False))
    return 0
