"""Commit routes: preupload, the NDJSON commit, history, refs, branches and tags.

A commit is all or nothing: the request body is spooled to a temp file, every line is checked and every
regular file is staged as an unpublished blob first; only then are the blobs published and the commit, its
file list and the branch move written in one database transaction.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tempfile
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from .deps import hub, iso, json_body, readable_repo, repo_type, repo_url, viewer, writable_repo
from .errors import HubError, bad_request, conflict, too_large
from .storage import BlobWriter, Conflict, FileEntry

router = APIRouter()
LINE_LIMIT = 1 << 20  # any line but a regular file's content is small
FILE_LINE = re.compile(rb'^\s*\{\s*"key"\s*:\s*"file"\s*,\s*"value"\s*:\s*\{\s*"content"\s*:\s*"')
BRANCH_NAME = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)(?!.*/$)[A-Za-z0-9._/-]{1,200}$")


def check_path(path) -> str:
    """A file path in a repo, or a 400: relative, no '..', '.', empty segments, backslashes or '.git'."""
    if not isinstance(path, str) or not path.strip():
        raise bad_request("empty file path in the commit: every file needs a path", code="InvalidPath")
    problem = None
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        problem = "is absolute"
    elif "\\" in path or "\0" in path:
        problem = "contains a backslash or NUL"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        problem = "has an empty, '.' or '..' segment"
    elif ".git" in path.split("/"):
        problem = "is inside .git/"
    elif len(path) > 1000:
        problem = "is longer than 1000 characters"
    if problem:
        raise bad_request(
            f"invalid path {path!r}: it {problem}; use a relative path like dir/file.txt", "InvalidPath"
        )
    return path


# -- preupload ------------------------------------------------------------------------------------------------


@router.post("/api/{kind}/{namespace}/{name}/preupload/{revision:path}")
async def preupload(request: Request, kind: str, namespace: str, name: str, revision: str):
    body = await json_body(request)
    repo = writable_repo(request, repo_type(kind), namespace, name)
    service = hub(request)
    files = body.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise bad_request("'files' must be a list of {path, size, sample} objects")
    for item in files:
        check_path(item.get("path"))
        if not isinstance(item.get("size"), int) or item["size"] < 0:
            raise bad_request(f"'size' of {item.get('path')!r} must be a non-negative integer")
        if item["size"] > service.settings.max_file_size:
            raise too_large(_too_large_message(item["path"], item["size"], service.settings.max_file_size))
    try:
        remote = service.store.files(repo, service.resolve(repo, revision))
    except HubError:
        remote = {}  # a branch the commit will be refused on anyway; answer the modes
    # The smallest files go regular (base64 in the commit) while the request stays under the limit; the rest
    # through LFS. With the default limit a whole model folder goes regular, so no client needs Xet.
    budget, modes = service.settings.regular_limit, {}
    for item in sorted(files, key=lambda f: f["size"]):
        regular = item["size"] <= budget
        budget -= item["size"] if regular else 0
        modes[item["path"]] = "regular" if regular else "lfs"
    answer = []
    for item in files:
        path, mode = item["path"], modes[item["path"]]
        row = {"path": path, "uploadMode": mode, "shouldIgnore": False}
        if path in remote:  # lets the client skip unchanged files
            entry = remote[path]
            if mode == "lfs":
                row["oid"] = entry.sha256
            elif entry.size <= service.settings.regular_limit:
                row["oid"] = service.content_git_oid(entry)
        answer.append(row)
    return {"files": answer}


def _too_large_message(path: str, size: int, limit: int) -> str:
    return f"{path} is {size:,} bytes, above this hub's limit of {limit:,} bytes per file (--max-file-size)"


# -- the commit -----------------------------------------------------------------------------------------------


@dataclass
class _Operations:
    header: dict | None = None
    staged: list[tuple[str, BlobWriter]] = field(default_factory=list)
    lfs: list[tuple[str, str, int | None]] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    deleted_folders: list[str] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    regular_bytes: int = 0

    def claim(self, path) -> str:
        path = check_path(path)
        if path in self.paths:
            raise bad_request(f"{path} appears twice in the commit: one operation per path", "DuplicatePath")
        self.paths.add(path)
        return path

    def abort(self) -> None:
        for _, writer in self.staged:
            writer.abort()


class _Base64Sink:
    """Decodes base64 arriving in pieces into a blob writer, counting the decoded bytes against a limit."""

    def __init__(self, writer: BlobWriter, ops: _Operations, limit: int):
        self.writer, self.ops, self.limit, self.pending = writer, ops, limit, b""

    def feed(self, text: bytes) -> None:
        data = self.pending + text.replace(b"\\/", b"/")
        whole = len(data) // 4 * 4
        self.pending = data[whole:]
        if whole:
            self.write(data[:whole])

    def write(self, encoded: bytes) -> None:
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise bad_request("a file's content is not valid base64", "MalformedCommit") from None
        self.ops.regular_bytes += len(decoded)
        if self.ops.regular_bytes > self.limit:
            raise too_large(
                f"regular (base64) content above {self.limit:,} bytes in one commit: send large files through "
                "LFS (set HF_HUB_DISABLE_XET=1 before importing huggingface_hub) or split the commit"
            )
        self.writer.write(decoded)

    def close(self) -> None:
        if self.pending:
            raise bad_request("a file's content is not valid base64 (truncated)", "MalformedCommit")


def _loads(line: bytes, number: int) -> dict:
    try:
        item = json.loads(line)
    except ValueError as e:
        raise bad_request(f"malformed NDJSON at line {number}: {e}", "MalformedCommit") from None
    if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
        raise bad_request(f'line {number} must be {{"key": ..., "value": {{...}}}}', "MalformedCommit")
    return item


def _stream_file_line(spool, head: bytes, match, ops: _Operations, sink_limit: int, service, number: int):
    """A file line too long to read at once: stream its base64 content into a staged blob."""
    writer = service.blobs.writer()
    ops.staged.append(("", writer))
    sink = _Base64Sink(writer, ops, sink_limit)
    data = head[match.end() :]
    while True:
        quote = data.find(b'"')
        sink.feed(data if quote < 0 else data[:quote])
        if quote >= 0:
            rest = data[quote + 1 :]
            break
        data = spool.read(1 << 20)
        if not data:
            raise bad_request(f"line {number} ends inside a file's content", "MalformedCommit")
    sink.close()
    newline = rest.find(b"\n")
    if newline >= 0:  # the chunk ran past this line: give the next lines back to the reader
        spool.seek(newline + 1 - len(rest), 1)
        rest = rest[: newline + 1]
    while not rest.endswith(b"\n"):
        more = spool.readline(LINE_LIMIT)
        if not more:
            break
        rest += more
        if len(rest) > LINE_LIMIT:
            raise bad_request(f"line {number} is too long after the file's content", "MalformedCommit")
    item = _loads(b'{"key": "file", "value": {"content": ""' + rest, number)
    return item, writer


def _parse(spool, ops: _Operations, service) -> None:
    limit = service.settings.regular_limit
    number = 0
    while True:
        head = spool.readline(LINE_LIMIT)
        if not head:
            break
        number += 1
        writer = None
        if len(head) == LINE_LIMIT and not head.endswith(b"\n"):
            match = FILE_LINE.match(head)
            if match is None:
                raise bad_request(f"line {number} is longer than {LINE_LIMIT:,} bytes", "MalformedCommit")
            item, writer = _stream_file_line(spool, head, match, ops, limit, service, number)
        elif not head.strip():
            continue
        else:
            item = _loads(head, number)
        key, value = item.get("key"), item["value"]
        if ops.header is None and key != "header":
            raise bad_request('the first NDJSON line must be {"key": "header", ...}', "MalformedCommit")
        if key == "header":
            if ops.header is not None:
                raise bad_request("two header lines in one commit", "MalformedCommit")
            ops.header = value
        elif key == "file":
            path = ops.claim(value.get("path"))
            if writer is None:
                writer = service.blobs.writer()
                ops.staged.append(("", writer))
                encoding = value.get("encoding", "base64")
                content = value.get("content")
                if not isinstance(content, str) or encoding not in ("base64", "utf-8"):
                    raise bad_request(f"{path}: content must be a base64 or utf-8 string", "MalformedCommit")
                if encoding == "utf-8":
                    data = content.encode()
                    ops.regular_bytes += len(data)
                    if ops.regular_bytes > limit:
                        raise too_large(f"regular content above {limit:,} bytes in one commit")
                    writer.write(data)
                else:
                    sink = _Base64Sink(writer, ops, limit)
                    sink.feed(content.encode())
                    sink.close()
            ops.staged[-1] = (path, writer)
        elif key == "lfsFile":
            path = ops.claim(value.get("path"))
            oid, size = value.get("oid"), value.get("size")
            if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str):
                raise bad_request(f"{path}: an lfsFile needs algo sha256 and an oid", "MalformedCommit")
            if size is not None and (not isinstance(size, int) or size < 0):
                raise bad_request(f"{path}: 'size' must be a non-negative integer", "MalformedCommit")
            ops.lfs.append((path, oid.lower(), size))
        elif key in ("deletedFile", "deletedFolder"):
            path = value.get("path")
            path = ops.claim(path.rstrip("/") if key == "deletedFolder" and isinstance(path, str) else path)
            (ops.deleted_files if key == "deletedFile" else ops.deleted_folders).append(path)
        else:
            raise bad_request(f"unknown operation {key!r} at line {number}", "MalformedCommit")
    if ops.header is None:
        raise bad_request("empty commit: the body must start with a header line", "MalformedCommit")


@router.post("/api/{kind}/{namespace}/{name}/commit/{revision:path}")
async def commit(request: Request, kind: str, namespace: str, name: str, revision: str):
    repo = writable_repo(request, repo_type(kind), namespace, name)
    if request.query_params.get("create_pr") in ("1", "true"):
        raise bad_request("pull requests are not supported by this hub: commit to a branch", "NotSupported")
    service = hub(request)
    max_body = service.settings.regular_limit * 4 // 3 + (8 << 20)
    ops = _Operations()
    with tempfile.TemporaryFile(dir=service.blobs_tmp) as spool:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_body:
                raise too_large(
                    f"commit body above {max_body:,} bytes: files this large go through LFS "
                    "(set HF_HUB_DISABLE_XET=1 before importing huggingface_hub)"
                )
            spool.write(chunk)
        spool.seek(0)
        # Decoding, hashing and the transaction run off the event loop, so downloads go on meanwhile.
        return await run_in_threadpool(_parse_and_apply, spool, request, repo, revision, ops, service)


def _parse_and_apply(spool, request, repo, revision, ops: _Operations, service) -> dict:
    try:
        _parse(spool, ops, service)
        return _apply(request, repo, revision, ops, service)
    finally:
        ops.abort()  # drops every staged blob that _apply did not publish


def _apply(request, repo, revision, ops: _Operations, service) -> dict:
    header = ops.header
    title, message = header.get("summary"), header.get("description") or ""
    if not isinstance(title, str) or not title.strip():
        raise bad_request("the commit needs a summary (commit_message)", "MalformedCommit")
    parent = header.get("parentCommit") or None
    if parent is not None and (not isinstance(parent, str) or not re.fullmatch(r"[0-9a-f]{40}", parent)):
        raise bad_request(
            f"parentCommit must be a 40-character commit sha, not {parent!r}", "MalformedCommit"
        )
    service.branch_head(repo, revision)  # RevisionNotFound before anything is published
    additions: dict[str, FileEntry] = {}
    for path, oid, size in ops.lfs:
        stored = service.blobs.size(oid)
        if stored is None or (size is not None and stored != size):
            raise bad_request(
                f"{path}: LFS object {oid[:12]} (size {size}) was never uploaded: upload it through the LFS "
                "batch API before committing",
                "LfsObjectNotFound",
            )
        additions[path] = service.entry(path, oid, stored, via_lfs=True)
    limit = service.settings.max_file_size
    for path, writer in ops.staged:
        sha256, size = writer.finish()
        if size > limit:
            raise too_large(_too_large_message(path, size, limit))
        additions[path] = service.entry(path, sha256, size, via_lfs=False)
    ops.staged.clear()
    author = viewer(request).name
    done = service.commit(
        repo,
        revision,
        author,
        title.strip(),
        message,
        parent,
        additions,
        ops.deleted_files,
        ops.deleted_folders,
    )
    return {
        "commitUrl": f"{repo_url(request, repo)}/commit/{done.sha}",
        "commitOid": done.sha,
        "success": True,
    }


# -- history and refs -----------------------------------------------------------------------------------------


@router.get("/api/{kind}/{namespace}/{name}/commits/{revision:path}")
def list_commits(request: Request, kind: str, namespace: str, name: str, revision: str):
    repo = readable_repo(request, repo_type(kind), namespace, name)
    service = hub(request)
    commit, history = service.store.get_commit(repo, service.resolve(repo, revision)), []
    while commit is not None:
        history.append(
            {
                "id": commit.sha,
                "title": commit.title,
                "message": commit.message,
                "authors": [{"user": commit.author}],
                "date": iso(commit.created_at),
            }
        )
        commit = service.store.get_commit(repo, commit.parent) if commit.parent else None
    return history


@router.get("/api/{kind}/{namespace}/{name}/refs")
def list_refs(request: Request, kind: str, namespace: str, name: str):
    repo = readable_repo(request, repo_type(kind), namespace, name)
    refs = hub(request).store.refs(repo)

    def rows(kind, prefix):
        return [
            {"name": r.name, "ref": f"refs/{prefix}/{r.name}", "targetCommit": r.commit}
            for r in refs
            if r.kind == kind
        ]

    answer = {"branches": rows("branch", "heads"), "converts": [], "tags": rows("tag", "tags")}
    if request.query_params.get("include_prs") in ("1", "true"):
        answer["pullRequests"] = []
    return answer


def _ref_name(name: str, what: str) -> str:
    if not BRANCH_NAME.match(name) or re.fullmatch(r"[0-9a-f]{40}", name) or name.startswith("refs/"):
        raise bad_request(f"invalid {what} name {name!r}: letters, digits, '.', '_', '-', '/'", "InvalidRef")
    return name


@router.post("/api/{kind}/{namespace}/{name}/branch/{branch:path}")
async def create_branch(request: Request, kind: str, namespace: str, name: str, branch: str):
    body = await json_body(request)
    repo = writable_repo(request, repo_type(kind), namespace, name)
    service = hub(request)
    start = service.resolve(repo, body.get("startingPoint") or "main")
    try:
        service.store.set_ref(repo, "branch", _ref_name(branch, "branch"), start)
    except Conflict:
        raise conflict(f"branch '{branch}' already exists in {repo.repo_id}") from None
    return {}


@router.delete("/api/{kind}/{namespace}/{name}/branch/{branch:path}")
def delete_branch(request: Request, kind: str, namespace: str, name: str, branch: str):
    repo = writable_repo(request, repo_type(kind), namespace, name)
    if branch == "main":
        raise HubError(403, "Forbidden", "the main branch cannot be deleted")
    if not hub(request).store.delete_ref(repo, "branch", branch):
        raise HubError(404, "RevisionNotFound", f"branch '{branch}' not found in {repo.repo_id}")
    return {}


@router.post("/api/{kind}/{namespace}/{name}/tag/{revision:path}")
async def create_tag(request: Request, kind: str, namespace: str, name: str, revision: str):
    body = await json_body(request)
    repo = writable_repo(request, repo_type(kind), namespace, name)
    tag = body.get("tag")
    if not isinstance(tag, str):
        raise bad_request("'tag' (the tag's name) is required")
    service = hub(request)
    target = service.resolve(repo, revision)
    try:
        service.store.set_ref(repo, "tag", _ref_name(tag, "tag"), target)
    except Conflict:
        raise conflict(f"tag '{tag}' already exists in {repo.repo_id}") from None
    return {}


@router.delete("/api/{kind}/{namespace}/{name}/tag/{tag:path}")
def delete_tag(request: Request, kind: str, namespace: str, name: str, tag: str):
    repo = writable_repo(request, repo_type(kind), namespace, name)
    if not hub(request).store.delete_ref(repo, "tag", tag):
        raise HubError(404, "RevisionNotFound", f"tag '{tag}' not found in {repo.repo_id}")
    return {}
