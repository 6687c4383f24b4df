"""Repo routes: who am I, create / delete / settings, listing with search, model_info, likes, card validation."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import cards
from .auth import check_write, valid_name
from .deps import (
    REPO_KINDS,
    base_url,
    hub,
    iso,
    json_body,
    readable_repo,
    repo_type,
    viewer,
    writable_repo,
)
from .errors import HubError, bad_request, conflict, unauthorized
from .storage import Conflict, FileEntry, Repo, RepoQuery

router = APIRouter()
PAGE_SIZE = 1000
SORTS = {
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "lastModified",
    "last_modified": "lastModified",
    "createdAt": "createdAt",
    "created_at": "createdAt",
    "trendingScore": "downloads",  # no trending score here: downloads is the closest meaning
    "id": "id",
}


@router.get("/api/whoami-v2")
def whoami(request: Request):
    caller = viewer(request)
    if caller.user is None:
        raise unauthorized("Not logged in: pass a token (Authorization: Bearer <token>).")
    return {
        "type": "user",
        "id": str(caller.user.id),
        "name": caller.name,
        "fullname": caller.name,
        "orgs": [],
        "auth": {
            "type": "access_token",
            "accessToken": {"displayName": caller.display_name, "role": caller.role},
        },
    }


@router.get("/api/agent-harnesses")
def agent_harnesses():
    return {"standardEnvVars": [], "harnesses": {}}


def _target(body: dict, caller_name: str | None) -> tuple[str, str, str]:
    name, organization = body.get("name"), body.get("organization") or caller_name
    kind = body.get("type") or "model"
    if kind not in REPO_KINDS.values():
        raise bad_request(f"unknown repo type {kind!r}: use model, dataset or space")
    if not isinstance(name, str) or not valid_name(name):
        raise bad_request(
            f"invalid repo name {name!r}: letters, digits, '-', '_', '.', at most 96 characters"
        )
    if organization is None:
        raise unauthorized("Creating a repo needs a write token: pass token=... or set HF_TOKEN.")
    return kind, organization, name


@router.post("/api/repos/create")
async def create_repo(request: Request):
    body = await json_body(request)
    caller = viewer(request)
    kind, namespace, name = _target(body, caller.name)
    user = check_write(caller, namespace)
    visibility = body.get("visibility") or ("private" if body.get("private") else "public")
    if visibility not in ("public", "private", "protected"):
        raise bad_request(f"visibility must be public or private, not {visibility!r}")
    service = hub(request)
    existing = service.store.get_repo(kind, namespace, name)
    url = f"{base_url(request)}/{'' if kind == 'model' else kind + 's/'}{namespace}/{name}"
    if existing is not None:
        # huggingface_hub reads "url" from the 409 too (create_repo(exist_ok=True)).
        raise conflict(f"You already created this {kind} repo: {namespace}/{name}", body={"url": url})
    try:
        service.create_repo(kind, namespace, name, visibility != "public", user.name)
    except Conflict:
        raise conflict(
            f"You already created this {kind} repo: {namespace}/{name}", body={"url": url}
        ) from None
    return {"url": url, "name": f"{namespace}/{name}", "id": f"{namespace}/{name}"}


@router.delete("/api/repos/delete")
async def delete_repo(request: Request):
    body = await json_body(request)
    kind, namespace, name = _target(body, viewer(request).name)
    repo = writable_repo(request, kind, namespace, name)
    hub(request).store.delete_repo(repo)
    return {}


@router.put("/api/{kind}/{namespace}/{name}/settings")
async def repo_settings(request: Request, kind: str, namespace: str, name: str):
    body = await json_body(request)
    repo = writable_repo(request, repo_type(kind), namespace, name)
    private = body.get("private")
    if "visibility" in body:
        if body["visibility"] not in ("public", "private", "protected"):
            raise bad_request(f"visibility must be public or private, not {body['visibility']!r}")
        private = body["visibility"] != "public"
    if private is not None:
        if not isinstance(private, bool):
            raise bad_request("'private' must be true or false")
        hub(request).store.set_private(repo, private)
    if body.get("gated") not in (None, False, "false"):
        raise bad_request("gated repos are not supported by this hub")
    return {}


# -- reading ------------------------------------------------------------------------------------------------


def sibling(entry: FileEntry) -> dict:
    item = {"rfilename": entry.path, "size": entry.size, "blobId": entry.git_oid}
    if entry.lfs:
        item["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": entry.pointer_size}
    return item


def repo_json(repo: Repo, meta: dict, extra: dict) -> dict:
    """The fields list_models returns for every repo; model_info adds sha, siblings, cardData, ..."""
    return {
        "_id": str(repo.id),
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.namespace,
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "downloads": repo.downloads,
        "downloadsAllTime": repo.downloads,
        "likes": repo.likes,
        "trendingScore": 0,
        "tags": meta.get("tags", []),
        "pipeline_tag": meta.get("pipeline_tag"),
        "library_name": meta.get("library_name"),
        "createdAt": iso(repo.created_at),
        **extra,
    }


def info_json(request: Request, repo: Repo, revision: str | None) -> dict:
    service = hub(request)
    sha = service.resolve(repo, revision or "main")
    files = service.store.files(repo, sha)
    meta = repo.meta if revision in (None, "main") else service.describe(files)
    commit = service.store.get_commit(repo, sha)
    return repo_json(
        repo,
        meta,
        {
            "sha": sha,
            "lastModified": iso(commit.created_at),
            "cardData": meta.get("card_data"),
            "config": meta.get("config"),
            "safetensors": meta.get("safetensors"),
            "siblings": [sibling(entry) for entry in files.values()],
            "spaces": [],
            "usedStorage": sum(entry.size for entry in files.values()),
        },
    )


@router.get("/api/{kind}/{namespace}/{name}")
def repo_info(request: Request, kind: str, namespace: str, name: str):
    return info_json(request, readable_repo(request, repo_type(kind), namespace, name), None)


@router.get("/api/{kind}/{namespace}/{name}/revision/{revision:path}")
def repo_info_at(request: Request, kind: str, namespace: str, name: str, revision: str):
    return info_json(request, readable_repo(request, repo_type(kind), namespace, name), revision)


def _int_param(request: Request, name: str, default: int, low: int = 0) -> int:
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"'{name}' must be an integer, not {value!r}") from None
    if number < low:
        raise bad_request(f"'{name}' must be at least {low}")
    return number


def list_query(request: Request, type: str) -> RepoQuery:
    params = request.query_params
    sort = params.get("sort") or "downloads"
    if sort not in SORTS:
        raise bad_request(f"unknown sort {sort!r}: use one of downloads, likes, lastModified, createdAt, id")
    direction = params.get("direction")
    if direction not in (None, "", "-1", "1"):
        raise bad_request(f"direction must be -1 (descending) or 1, not {direction!r}")
    limit = _int_param(request, "limit", PAGE_SIZE, low=1)
    return RepoQuery(
        type=type,
        search=params.get("search") or None,
        author=params.get("author") or None,
        tags=tuple(tag for tag in params.getlist("filter") if tag),
        pipeline_tag=params.get("pipeline_tag") or None,
        sort=SORTS[sort],
        descending=direction != "1",
        offset=_int_param(request, "cursor", 0),
        limit=min(limit, PAGE_SIZE),
        viewer=viewer(request).name,
    )


def _truthy(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true")


@router.get("/api/{kind}")
def list_repos(request: Request, kind: str):
    query = list_query(request, repo_type(kind))
    store = hub(request).store
    # One row past the page says whether there is a next page.
    rows = store.list_repos(replace(query, limit=query.limit + 1))
    page, more = rows[: query.limit], len(rows) > query.limit
    full, expand = _truthy(request, "full"), set(request.query_params.getlist("expand"))
    items = []
    for repo in page:
        extra = {"lastModified": iso(repo.last_modified)}
        if _truthy(request, "cardData") or "cardData" in expand:
            extra["cardData"] = repo.meta.get("card_data")
        if _truthy(request, "config") or "config" in expand:
            extra["config"] = repo.meta.get("config")
        if full or "siblings" in expand or "sha" in expand:
            sha = hub(request).resolve(repo, "main")
            extra["sha"] = sha
            extra["siblings"] = [sibling(entry) for entry in store.files(repo, sha).values()]
        items.append(repo_json(repo, repo.meta, extra))
    headers = {}
    if more:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params.append(("cursor", str(query.offset + query.limit)))
        headers["Link"] = f'<{base_url(request)}/api/{kind}?{urlencode(params)}>; rel="next"'
    return JSONResponse(items, headers=headers)


# -- likes, card validation ---------------------------------------------------------------------------------


@router.post("/api/{kind}/{namespace}/{name}/like")
@router.delete("/api/{kind}/{namespace}/{name}/like")
def like(request: Request, kind: str, namespace: str, name: str):
    repo = readable_repo(request, repo_type(kind), namespace, name)
    caller = viewer(request)
    if caller.user is None:
        raise unauthorized("Liking a repo needs a token: pass token=... or set HF_TOKEN.")
    hub(request).store.set_like(caller.user, repo, request.method == "POST")
    return {}


@router.post("/api/validate-yaml")
async def validate_yaml(request: Request):
    body = await json_body(request)
    content = body.get("content")
    if not isinstance(content, str):
        raise bad_request("'content' (the README text) is required")
    _, _, error = cards.split_front_matter(content)
    if error:
        # huggingface_hub reads errors[].message from the body before looking at the status.
        raise HubError(400, "InvalidModelCard", error, body={"errors": [{"message": error}], "warnings": []})
    return {"errors": [], "warnings": []}


@router.get("/api/{kind}/{namespace}/{name}/discussions")
def discussions(request: Request, kind: str, namespace: str, name: str):
    readable_repo(request, repo_type(kind), namespace, name)
    return {"discussions": [], "count": 0, "start": 0, "numClosedDiscussions": 0}
