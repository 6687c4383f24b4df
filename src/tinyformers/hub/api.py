"""The hub's JSON API, one small function per route (the routes and shapes huggingface_hub uses)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from .cache import RepoFile
from .errors import HubError
from .http import endpoint, paginate, repo_url, request_json


def check_repo_id(repo_id: str) -> str:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(p in {".", ".."} or p.startswith(".") for p in parts):
        raise ValueError(f"'{repo_id}' is not a hub id; write it as namespace/name (e.g. alice/minilm)")
    return repo_id


def model_info(
    repo_id: str, revision: str | None = None, *, sizes: bool = True, token=None
) -> dict[str, Any]:
    """``GET /api/models/{id}[/revision/{rev}]``: sha, siblings (with sizes when asked), cardData, downloads, ..."""
    url = (
        repo_url(check_repo_id(repo_id), "revision", revision)
        if revision
        else repo_url(check_repo_id(repo_id))
    )
    if sizes:
        url += "?blobs=true"
    return request_json("GET", url, token=token, repo_id=repo_id, revision=revision)


def listing_of(info: dict[str, Any]) -> dict[str, RepoFile] | None:
    """The commit's files from a ``model_info`` answer with sizes (the tree endpoint's listing, one request
    fewer), or None when a sibling lacks its size or blob id."""
    siblings = info.get("siblings") or []
    if not all(s.get("size") is not None and s.get("blobId") for s in siblings):
        return None
    return {f.path: f for f in map(RepoFile.from_sibling, siblings)}


def commit_of(repo_id: str, revision: str, *, token=None) -> str:
    """The commit sha a branch or tag points at now (one request)."""
    return model_info(repo_id, revision, sizes=False, token=token)["sha"]


def list_files(repo_id: str, commit: str, *, token=None) -> dict[str, RepoFile]:
    """Every file of a commit (``tree`` endpoint, recursive, following ``Link`` pages)."""
    url = repo_url(repo_id, "tree", commit) + "?recursive=true&expand=false"
    entries = paginate(url, token=token, repo_id=repo_id, revision=commit)
    files = [RepoFile.from_tree_entry(e) for e in entries if e.get("type") == "file"]
    return {f.path: f for f in files}


def list_models(
    search: str | None = None,
    *,
    task: str | None = None,
    author: str | None = None,
    sort: str = "downloads",
    limit: int = 20,
    token=None,
) -> list[dict[str, Any]]:
    """``GET /api/models`` with the filters of ``HfApi.list_models``, newest data first per ``sort``."""
    params = {
        "search": search,
        "pipeline_tag": task,
        "author": author,
        "sort": sort,
        "limit": limit,
        "full": "true",
    }
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
    models: list[dict[str, Any]] = []
    for model in paginate(f"{endpoint()}/api/models?{query}", token=token):
        models.append(model)
        if len(models) >= limit:
            break
    return models


def whoami(*, token=None) -> dict[str, Any]:
    return request_json("GET", f"{endpoint()}/api/whoami-v2", token=token)


def create_repo(repo_id: str, *, private: bool | None = None, exist_ok: bool = True, token=None) -> str:
    """Create a model repo (``POST /api/repos/create``); an existing one is fine when ``exist_ok``."""
    namespace, name = check_repo_id(repo_id).split("/")
    payload: dict[str, Any] = {"name": name, "organization": namespace, "type": "model"}
    if private is not None:
        payload["visibility"] = "private" if private else "public"
    try:
        return request_json("POST", f"{endpoint()}/api/repos/create", payload=payload, token=token)["url"]
    except HubError as e:
        if e.status == 409 and exist_ok:
            return f"{endpoint()}/{repo_id}"
        if e.status == 409:
            raise HubError(
                f"repository '{repo_id}' already exists; pass exist_ok=True to reuse it", 409
            ) from None
        raise
