"""What every route needs from a request: the hub, the caller, the repo it names, absolute URLs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import unquote

from fastapi import Request

from .auth import Viewer, authenticate, check_read, check_write
from .errors import HubError
from .service import Hub
from .storage import Repo

# URL segment -> repo type, for /api/{kind}/... and the /{kind}/ns/name/resolve/... prefixes.
REPO_KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def hub(request: Request) -> Hub:
    return request.app.state.hub


def viewer(request: Request) -> Viewer:
    cached = getattr(request.state, "viewer", None)
    if cached is None:
        cached = request.state.viewer = authenticate(hub(request).store, request.headers.get("authorization"))
    return cached


def repo_type(kind: str) -> str:
    if kind not in REPO_KINDS:
        raise HubError(404, "NotFound", f"unknown repo kind '{kind}': use models, datasets or spaces")
    return REPO_KINDS[kind]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def repo_url(request: Request, repo: Repo) -> str:
    return f"{base_url(request)}/{URL_PREFIX[repo.type]}{repo.repo_id}"


def readable_repo(request: Request, type: str, namespace: str, name: str) -> Repo:
    """The repo, if the caller may read it; otherwise RepoNotFound (private repos are not revealed)."""
    repo = hub(request).store.get_repo(type, namespace, name)
    return check_read(viewer(request), repo, f"{namespace}/{name}")


def writable_repo(request: Request, type: str, namespace: str, name: str) -> Repo:
    repo = readable_repo(request, type, namespace, name)
    check_write(viewer(request), namespace)
    return repo


def rev_and_path(request: Request, marker_index: int) -> tuple[str, str]:
    """The revision and file path after the URL segment at ``marker_index`` (``resolve``, ``tree``, ...).

    Read from the raw path: the client quotes a revision's slashes (refs/pr/1 -> refs%2Fpr%2F1), which the
    decoded path would no longer tell apart from the file path's.
    """
    raw = request.scope.get("raw_path") or request.url.path.encode()
    parts = raw.decode("latin-1").split("/")
    if len(parts) <= marker_index + 1 or not parts[marker_index + 1]:
        raise HubError(400, "BadRequest", "missing revision in the URL")
    revision = unquote(parts[marker_index + 1])
    path = unquote("/".join(parts[marker_index + 2 :]))
    return revision, path


async def json_body(request: Request) -> dict:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise HubError(400, "BadRequest", f"malformed JSON body: {e}") from None
    if not isinstance(data, dict):
        raise HubError(400, "BadRequest", "the JSON body must be an object")
    return data


def iso(timestamp: float) -> str:
    """The Hub's timestamp format, e.g. 2024-05-01T12:00:00.000Z."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
