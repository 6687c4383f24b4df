"""Upload a folder to a hub repo in one commit, and ``push_to_hub`` for anything with ``save_pretrained``.

The protocol is the one ``huggingface_hub`` speaks without Xet: ``preupload`` says per file whether it goes
``regular`` (base64 inside the NDJSON commit) or ``lfs`` (the LFS batch API, a PUT of the raw bytes, a verify
call); then one ``commit/{revision}`` NDJSON request adds every file, so the repo moves from its previous
commit to the new one with nothing in between. Files are streamed from disk, never held whole in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .api import check_repo_id, create_repo, model_info
from .card import model_card
from .errors import HubError, RevisionNotFoundError
from .http import endpoint, repo_url, request, request_json

CHUNK = 3 << 18  # a multiple of 3, so base64 chunks concatenate without padding in between
PREUPLOAD_BATCH = 256
SKIPPED_DIRS = {".git", ".cache"}


def _files_of(folder: Path) -> list[str]:
    paths = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not SKIPPED_DIRS & set(relative.parts[:-1]) and relative.name != ".DS_Store":
            paths.append(relative.as_posix())
    return paths


def _hash_file(path: Path) -> tuple[str, str]:
    """(git blob sha1, sha256) of a file, read once."""
    sha1 = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    sha256 = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha1.update(chunk)
            sha256.update(chunk)
    return sha1.hexdigest(), sha256.hexdigest()


def _preupload(repo_id: str, revision: str, folder: Path, paths: list[str], token) -> dict[str, dict]:
    """path -> {"uploadMode", "shouldIgnore", "oid"?} as the server decides."""
    modes: dict[str, dict] = {}
    for start in range(0, len(paths), PREUPLOAD_BATCH):
        batch = []
        for path in paths[start : start + PREUPLOAD_BATCH]:
            with open(folder / path, "rb") as f:
                sample = f.read(512)
            batch.append(
                {
                    "path": path,
                    "sample": base64.b64encode(sample).decode(),
                    "size": (folder / path).stat().st_size,
                }
            )
        answer = request_json(
            "POST", repo_url(repo_id, "preupload", revision), payload={"files": batch}, token=token, repo_id=repo_id,
            revision=revision,
        )  # fmt: skip
        modes.update({entry["path"]: entry for entry in answer["files"]})
    return modes


def _upload_lfs(repo_id: str, revision: str, objects: dict[str, tuple[Path, int]], token) -> None:
    """Send LFS files (sha256 -> (path, size)) through the batch API; already stored objects are skipped."""
    lfs_headers = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
    payload = {
        "operation": "upload",
        "transfers": ["basic"],
        "objects": [{"oid": oid, "size": size} for oid, (_, size) in objects.items()],
        "hash_algo": "sha256",
        "ref": {"name": revision},
    }
    answer = request_json(
        "POST", f"{endpoint()}/{repo_id}.git/info/lfs/objects/batch", payload=payload, headers=lfs_headers,
        token=token, repo_id=repo_id,
    )  # fmt: skip
    for obj in answer.get("objects", []):
        path, size = objects[obj["oid"]]
        if obj.get("error"):
            raise HubError(f"the hub refused '{path.name}' for LFS upload: {obj['error'].get('message')}")
        actions = obj.get("actions") or {}
        if "upload" not in actions:
            continue  # the server already has these bytes
        upload = actions["upload"]
        if "chunk_size" in (upload.get("header") or {}):
            raise HubError(
                "the hub asked for a multipart LFS upload, which tinyformers does not send; use basic"
            )
        with open(path, "rb") as f:
            # Like huggingface_hub: no bearer token on the PUT; the href authorises itself.
            request(
                "PUT", upload["href"], body=f, headers={"Content-Length": str(size)}, token=False, attempts=3,
                path=path.name,
            ).close()  # fmt: skip
        if "verify" in actions:
            verify = actions["verify"]
            request_json(
                "POST", verify["href"], payload={"oid": obj["oid"], "size": size},
                headers={**lfs_headers, **(verify.get("header") or {})}, token=token,
            )  # fmt: skip


def _write_ndjson(
    out: IO[bytes], message: str, parent: str | None, regular: list[tuple[str, Path]], lfs
) -> None:
    header: dict[str, Any] = {"summary": message, "description": ""}
    if parent:
        header["parentCommit"] = parent
    out.write(json.dumps({"key": "header", "value": header}).encode() + b"\n")
    for path, local in regular:
        # Field order as huggingface_hub writes it (content first): a server may stream the content on that prefix.
        out.write(b'{"key":"file","value":{"content":"')
        with open(local, "rb") as f:
            while chunk := f.read(CHUNK):
                out.write(base64.b64encode(chunk))
        out.write(b'","path":' + json.dumps(path).encode() + b',"encoding":"base64"}}\n')
    for path, oid, size in lfs:
        value = {"path": path, "algo": "sha256", "oid": oid, "size": size}
        out.write(json.dumps({"key": "lfsFile", "value": value}).encode() + b"\n")


def upload_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    message: str = "Upload with tinyformers",
    revision: str = "main",
    parent_commit: str | None = None,
    create: bool = False,
    private: bool | None = None,
    token=None,
) -> dict[str, Any]:
    """Add every file under ``folder`` to ``repo_id`` in one commit; returns {"commitOid", "commitUrl"}.

    With ``create`` the repo is created first if needed (after the folder was checked). Files whose bytes the
    branch already holds are left out; when nothing changed no commit is made and the current commit is returned.
    """
    check_repo_id(repo_id)
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"'{folder}' is not a folder; pass the directory to upload")
    paths = _files_of(folder)
    if not paths:
        raise ValueError(f"'{folder}' holds no files to upload")
    if create:
        create_repo(repo_id, private=private, exist_ok=True, token=token)
    modes = _preupload(repo_id, revision, folder, paths, token)
    regular, lfs, lfs_objects = [], [], {}
    for path in paths:
        mode = modes.get(path) or {"uploadMode": "regular"}
        if mode.get("shouldIgnore"):
            continue
        sha1, sha256 = _hash_file(folder / path)
        if mode.get("oid") in (sha1, sha256):
            continue  # unchanged on the server
        if mode.get("uploadMode") == "lfs":
            size = (folder / path).stat().st_size
            lfs.append((path, sha256, size))
            lfs_objects[sha256] = (folder / path, size)
        else:
            regular.append((path, folder / path))
    if not regular and not lfs:
        sha = model_info(repo_id, revision, sizes=False, token=token)["sha"]
        return {"commitOid": sha, "commitUrl": f"{endpoint()}/{repo_id}/commit/{sha}"}
    if lfs_objects:
        _upload_lfs(repo_id, revision, lfs_objects, token)
    with tempfile.TemporaryFile() as body:
        _write_ndjson(body, message, parent_commit, regular, lfs)
        size = body.tell()
        body.seek(0)
        with request(
            "POST", repo_url(repo_id, "commit", revision), body=body,
            headers={"Content-Type": "application/x-ndjson", "Content-Length": str(size)}, token=token,
            attempts=1, repo_id=repo_id, revision=revision,
        ) as response:  # fmt: skip
            return json.loads(response.read())


def _remote_has(repo_id: str, path: str, revision: str, token) -> bool:
    try:
        info = model_info(repo_id, revision, sizes=False, token=token)
    except RevisionNotFoundError:
        return False
    return any(sibling.get("rfilename") == path for sibling in info.get("siblings") or [])


def push_to_hub(
    save: Callable[[Path], Any],
    repo_id: str,
    *,
    config: dict | None = None,
    commit_message: str | None = None,
    private: bool | None = None,
    revision: str = "main",
    token=None,
    **card: Any,
) -> dict[str, Any]:
    """Create ``repo_id`` if needed, ``save`` into a temp folder, add a model card when the repo has none, and
    upload it all in one commit. ``card``: license, base_model, tags, datasets, metrics for that card."""
    create_repo(repo_id, private=private, exist_ok=True, token=token)
    with tempfile.TemporaryDirectory(prefix="tinyformers-push-") as tmp:
        save(Path(tmp))
        readme = Path(tmp) / "README.md"
        if not readme.exists() and not _remote_has(repo_id, "README.md", revision, token):
            readme.write_text(model_card(repo_id, config, **card), encoding="utf-8")
        message = commit_message or f"Upload {'model' if config else 'tokenizer'} with tinyformers"
        return upload_folder(tmp, repo_id, message=message, revision=revision, token=token)
