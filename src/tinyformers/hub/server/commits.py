"""Commit routes: preupload, the NDJSON commit, history, refs, branches and tags.

A commit is all or nothing: the request body is spooled to a temp file, every line is checked and every
regular file is staged as an unpublished blob first; only then are the blobs published and the commit, its
file list and the branch move written in one database transaction.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from .deps import hub, iso, json_body, readable_repo, repo_type, repo_url, viewer, writable_repo
from .errors import HubError, bad_request, conflict, too_large
from .ndjson import Base64Sink, Budget, read_lines
from .storage import BlobWriter, Conflict, FileEntry

router = APIRouter()
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
    budget: Budget  # the regular (base64) bytes the commit may still carry
    header: dict | None = None
    staged: list[tuple[str, BlobWriter]] = field(default_factory=list)
    lfs: list[tuple[str, str, int | None]] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    deleted_folders: list[str] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)

    def claim(self, path) -> str:
        path = check_path(path)
        if path in self.paths:
            raise bad_request(f"{path} appears twice in the commit: one operation per path", "DuplicatePath")
        self.paths.add(path)
        return path

    def abort(self) -> None:
        for _, writer in self.staged:
            writer.abort()


def _parse(spool, ops: _Operations, service) -> None:
    for line in read_lines(spool, service.blobs.writer, ops.budget):
        key, value, writer = line.item.get("key"), line.item["value"], line.content
        if writer is not None:
            ops.staged.append(("", writer))
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
                _write_content(path, value, writer, ops.budget)
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
            raise bad_request(f"unknown operation {key!r} at line {line.number}", "MalformedCommit")
    if ops.header is None:
        raise bad_request("empty commit: the body must start with a header line", "MalformedCommit")


def _write_content(path: str, value: dict, writer: BlobWriter, budget: Budget) -> None:
    """A short line's file content (already parsed) into its blob."""
    encoding, content = value.get("encoding", "base64"), value.get("content")
    if not isinstance(content, str) or encoding not in ("base64", "utf-8"):
        raise bad_request(f"{path}: content must be a base64 or utf-8 string", "MalformedCommit")
    if encoding == "utf-8":
        data = content.encode()
        budget.spend(len(data))
        writer.write(data)
    else:
        sink = Base64Sink(writer, budget)
        sink.feed(content.encode())
        sink.close()


@router.post("/api/{kind}/{namespace}/{name}/commit/{revision:path}")
async def commit(request: Request, kind: str, namespace: str, name: str, revision: str):
    repo = writable_repo(request, repo_type(kind), namespace, name)
    if request.query_params.get("create_pr") in ("1", "true"):
        raise bad_request("pull requests are not supported by this hub: commit to a branch", "NotSupported")
    service = hub(request)
    max_body = service.settings.regular_limit * 4 // 3 + (8 << 20)
    ops = _Operations(Budget(service.settings.regular_limit))
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
