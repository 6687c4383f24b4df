"""The Git LFS batch API, the upload PUT and verify: how files above the regular limit arrive.

huggingface_hub (with ``HF_HUB_DISABLE_XET=1``) asks the batch endpoint where to PUT each object, PUTs the raw
bytes there without its token, then calls verify. So the batch answer hands out a one-off upload URL (a random
ticket stored in the database, valid for a day) that authorises the PUT by itself. The PUT streams into the
blob store, hashing as it writes, and keeps nothing unless the sha256 and size are the announced ones.
"""

from __future__ import annotations

import re
import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .deps import base_url, hub, json_body, repo_type, writable_repo
from .errors import HubError, bad_request, too_large

router = APIRouter()
LFS_JSON = "application/vnd.git-lfs+json"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
BUFFER = 1 << 20


def _split_repo(name_git: str) -> str:
    if not name_git.endswith(".git"):
        raise HubError(404, "NotFound", "LFS endpoints live under /{namespace}/{name}.git/info/lfs/")
    return name_git[: -len(".git")]


async def _batch(request: Request, type: str, namespace: str, name_git: str):
    name = _split_repo(name_git)
    body = await json_body(request)
    repo = writable_repo(request, type, namespace, name)
    if body.get("operation") != "upload":
        raise bad_request("only the 'upload' operation is served: download files through /resolve/ URLs")
    objects = body.get("objects")
    if not isinstance(objects, list):
        raise bad_request("'objects' must be a list of {oid, size}")
    service, answer = hub(request), []
    base = base_url(request)
    prefix = "" if type == "model" else f"{type}s/"
    for item in objects:
        oid, size = (item.get("oid"), item.get("size")) if isinstance(item, dict) else (None, None)
        if not isinstance(oid, str) or not SHA256.match(oid) or not isinstance(size, int) or size < 0:
            answer.append(
                {"oid": str(oid), "size": size, "error": {"code": 422, "message": "bad oid or size"}}
            )
        elif size > service.settings.max_file_size:
            message = (
                f"{size:,} bytes is above this hub's limit of {service.settings.max_file_size:,} per file"
            )
            answer.append({"oid": oid, "size": size, "error": {"code": 422, "message": message}})
        elif service.blobs.size(oid) == size:
            answer.append({"oid": oid, "size": size})  # already stored: nothing to send
        else:
            ticket = secrets.token_urlsafe(24)
            service.store.add_upload(ticket, repo, oid, size, time.time() + service.settings.upload_ttl)
            verify = f"{base}/{prefix}{namespace}/{name}.git/info/lfs/objects/verify"
            actions = {"upload": {"href": f"{base}/api/lfs/upload/{ticket}"}, "verify": {"href": verify}}
            answer.append({"oid": oid, "size": size, "authenticated": True, "actions": actions})
    return JSONResponse({"transfer": "basic", "objects": answer}, media_type=LFS_JSON)


@router.post("/{namespace}/{name_git}/info/lfs/objects/batch")
async def batch_model(request: Request, namespace: str, name_git: str):
    return await _batch(request, "model", namespace, name_git)


@router.post("/{kind}/{namespace}/{name_git}/info/lfs/objects/batch")
async def batch_other(request: Request, kind: str, namespace: str, name_git: str):
    return await _batch(request, repo_type(kind), namespace, name_git)


@router.put("/api/lfs/upload/{ticket}")
async def upload(request: Request, ticket: str):
    service = hub(request)
    pending = service.store.get_upload(ticket)
    if pending is None or pending[3] < time.time():
        raise HubError(404, "UploadNotFound", "unknown or expired upload URL: ask the batch endpoint again")
    _, oid, size, _ = pending
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > size:
        raise too_large(f"{announced} bytes sent for an object announced as {size} bytes")
    writer, buffered, received = service.blobs.writer(), [], 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > size:
                raise too_large(f"more bytes than the {size} announced for {oid[:12]}")
            buffered.append(chunk)
            if sum(map(len, buffered)) >= BUFFER:
                # Hashing and writing off the event loop: hashlib releases the GIL on large buffers.
                await run_in_threadpool(writer.write, b"".join(buffered))
                buffered = []
        if buffered:
            await run_in_threadpool(writer.write, b"".join(buffered))
        try:
            await run_in_threadpool(writer.finish, oid, size)
        except ValueError as e:
            raise bad_request(f"LFS upload rejected: {e}; nothing was stored", "LfsObjectMismatch") from None
    except BaseException:
        writer.abort()
        raise
    service.store.drop_upload(ticket)
    return {}


async def _verify(request: Request, type: str, namespace: str, name_git: str):
    repo = writable_repo(request, type, namespace, _split_repo(name_git))
    body = await json_body(request)
    oid, size = body.get("oid"), body.get("size")
    if not isinstance(oid, str) or not SHA256.match(oid) or hub(request).blobs.size(oid) != size:
        raise HubError(
            404, "LfsObjectNotFound", f"LFS object {str(oid)[:12]} of size {size} is not in {repo.repo_id}"
        )
    return JSONResponse({"message": "ok"}, media_type=LFS_JSON)


@router.post("/{namespace}/{name_git}/info/lfs/objects/verify")
async def verify_model(request: Request, namespace: str, name_git: str):
    return await _verify(request, "model", namespace, name_git)


@router.post("/{kind}/{namespace}/{name_git}/info/lfs/objects/verify")
async def verify_other(request: Request, kind: str, namespace: str, name_git: str):
    return await _verify(request, repo_type(kind), namespace, name_git)
