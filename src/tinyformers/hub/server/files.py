"""File routes: ``resolve`` (GET and HEAD, with ranges), the tree listing and paths-info.

Downloads stream from the blob store in 1 MiB chunks; only a file of at most 1 MiB is read whole into memory.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from . import cards
from .deps import base_url, hub, iso, readable_repo, repo_type, rev_and_path
from .errors import HubError, entry_not_found
from .storage import FileEntry, Repo

router = APIRouter()
TREE_PAGE = 1000
SMALL_FILE = 1 << 20  # bytes sent as one body rather than streamed


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range, None for no range; raises 416 if unsatisfiable."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None  # ignore what we do not support: the whole file with 200 is a valid answer
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), (int(last) if last else size - 1)
    except ValueError:
        return None
    end = min(end, size - 1)
    if start > end or start >= size:
        raise HubError(
            416,
            "RangeNotSatisfiable",
            f"range {spec} is outside the file's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def serve_file(request: Request, repo: Repo, commit: str, entry: FileEntry, files: dict) -> Response:
    headers = {
        "X-Repo-Commit": commit,
        "ETag": f'"{entry.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": mimetypes.guess_type(entry.path)[0] or "application/octet-stream",
    }
    if entry.lfs:
        headers["X-Linked-Etag"] = f'"{entry.sha256}"'
        headers["X-Linked-Size"] = str(entry.size)
    span = _parse_range(request.headers.get("range"), entry.size)
    start, end = span or (0, entry.size - 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
    headers["Content-Length"] = str(end - start + 1 if entry.size else 0)
    service = hub(request)
    # One download per GET of the counted file; HEADs (a cached client checking for updates) and resumed
    # downloads (a range from > 0) fetch nothing new.
    if request.method == "GET" and start == 0 and cards.counts_as_download(entry.path, files):
        service.store.count_download(repo)
    status = 206 if span is not None else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    length = end - start + 1 if entry.size else 0
    chunks = service.blobs.read(entry.sha256, start, length)
    if length <= SMALL_FILE:
        # Read here, in the request's worker thread: streaming hops to a thread for every chunk and once more
        # for the end, which costs small files (configs, tokenizers) more than sending them.
        return Response(b"".join(chunks), status_code=status, headers=headers)
    return StreamingResponse(chunks, status_code=status, headers=headers)


def _resolve(request: Request, type: str, namespace: str, name: str, marker_index: int) -> Response:
    repo = readable_repo(request, type, namespace, name)
    revision, path = rev_and_path(request, marker_index)
    service = hub(request)
    commit = service.resolve(repo, revision)
    files = service.store.files(repo, commit)
    entry = files.get(path)
    if entry is None:
        raise entry_not_found(repo.repo_id, path, commit)
    return serve_file(request, repo, commit, entry, files)


@router.api_route("/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_model(request: Request, namespace: str, name: str, rest: str):
    return _resolve(request, "model", namespace, name, 3)


@router.api_route("/{kind}/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_other(request: Request, kind: str, namespace: str, name: str, rest: str):
    return _resolve(request, repo_type(kind), namespace, name, 4)


# -- listings -------------------------------------------------------------------------------------------------


def _directory_oid(entries) -> str:
    return hashlib.sha1("".join(f"{e.path}\0{e.git_oid}\n" for e in entries).encode()).hexdigest()


def file_json(entry: FileEntry, last_commit: dict | None = None) -> dict:
    item = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": entry.path}
    if entry.lfs:
        item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
    if last_commit is not None:
        item["lastCommit"] = last_commit
    return item


def tree_entries(files: dict[str, FileEntry], folder: str, recursive: bool) -> list:
    """(kind, path, entry-or-children) rows under ``folder``, directories before the files they hold."""
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    below = [entry for path, entry in files.items() if path.startswith(prefix)]
    if prefix and not below:
        return []
    rows, seen = [], set()
    for entry in below:
        parts = entry.path[len(prefix) :].split("/")
        depth = len(parts) if recursive else 1
        for i in range(1, min(len(parts), depth + 1)):
            directory = prefix + "/".join(parts[:i])
            if directory not in seen:
                seen.add(directory)
                children = [e for p, e in files.items() if p.startswith(directory + "/")]
                rows.append({"type": "directory", "oid": _directory_oid(children), "path": directory})
        if len(parts) == 1 or recursive:
            rows.append(entry)
    return rows


@router.get("/api/{kind}/{namespace}/{name}/tree/{rest:path}")
def tree(request: Request, kind: str, namespace: str, name: str, rest: str):
    repo = readable_repo(request, repo_type(kind), namespace, name)
    revision, folder = rev_and_path(request, 5)
    service = hub(request)
    commit = service.resolve(repo, revision)
    files = service.store.files(repo, commit)
    recursive = request.query_params.get("recursive", "").lower() in ("1", "true")
    rows = tree_entries(files, folder, recursive)
    if folder.strip("/") and not rows:
        raise entry_not_found(repo.repo_id, folder, commit)
    expand = request.query_params.get("expand", "").lower() in ("1", "true")
    start = int(request.query_params.get("cursor") or 0)
    page = rows[start : start + TREE_PAGE]
    history = service.last_commits(repo, commit) if expand else {}
    items = [
        row if isinstance(row, dict) else file_json(row, commit_json(history[row.path]) if expand else None)
        for row in page
    ]
    headers = {}
    if start + TREE_PAGE < len(rows):
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params.append(("cursor", str(start + TREE_PAGE)))
        headers["Link"] = f'<{base_url(request)}{request.url.path}?{urlencode(params)}>; rel="next"'
    return JSONResponse(items, headers=headers)


@router.post("/api/{kind}/{namespace}/{name}/paths-info/{revision:path}")
async def paths_info(request: Request, kind: str, namespace: str, name: str, revision: str):
    repo = readable_repo(request, repo_type(kind), namespace, name)
    # Form-encoded (paths=a&paths=b&expand=false), parsed here: starlette's form parser needs python-multipart.
    raw = (await request.body()).decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            loaded = json.loads(raw or "{}")
        except ValueError:
            raise HubError(
                400, "BadRequest", 'malformed JSON body: send paths=a&paths=b or {"paths": [...]}'
            ) from None
        paths = [p for p in loaded.get("paths", []) if isinstance(p, str)] if isinstance(loaded, dict) else []
    else:
        paths = parse_qs(raw).get("paths", [])
    service = hub(request)
    commit = service.resolve(repo, revision)
    files = service.store.files(repo, commit)
    items = []
    for path in dict.fromkeys(p.strip("/") for p in paths):
        if path in files:
            items.append(file_json(files[path]))
        elif any(p.startswith(path + "/") for p in files):
            children = [e for p, e in files.items() if p.startswith(path + "/")]
            items.append({"type": "directory", "oid": _directory_oid(children), "path": path})
    return items


def commit_json(commit) -> dict:
    return {"id": commit.sha, "title": commit.title, "date": iso(commit.created_at)}
