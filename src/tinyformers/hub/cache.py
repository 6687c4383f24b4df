"""The Hugging Face cache layout, read and written exactly as ``huggingface_hub`` does, so both share one cache.

    $HF_HUB_CACHE/models--org--name/
        blobs/<etag>                       file bytes; etag = git blob sha1, or sha256 for LFS files
        refs/<revision>                    the commit a branch or tag pointed at when last seen
        snapshots/<commit>/<path>          relative symlink to ../../blobs/<etag>
        trees/<commit>.json                the commit's file listing (huggingface_hub >= 2 format)
        .no_exist/<commit>/<path>          empty marker: this file is known to be absent at that commit
    $HF_HUB_CACHE/.locks/models--org--name/<etag>.lock

A commit never changes, so a commit whose listing and files are here needs no request at all.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..utils import atomic_write_text
from .http import hf_home

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
TREE_FORMAT_VERSION = 1


def hub_cache_dir() -> Path:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.path.expandvars(os.path.expanduser(os.environ[name])))
    return hf_home() / "hub"


def repo_folder(repo_id: str) -> Path:
    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def lock_path(repo_id: str, etag: str) -> Path:
    return hub_cache_dir() / ".locks" / repo_folder(repo_id).name / f"{etag}.lock"


@dataclass(frozen=True)
class RepoFile:
    """One file of a commit, as the tree endpoint lists it."""

    path: str
    size: int
    blob_id: str  # git blob sha1
    lfs_sha256: str | None = None

    @property
    def etag(self) -> str:
        """The name of its blob: what the server sends as ETag (sha256 for LFS files, else the git sha1)."""
        return self.lfs_sha256 or self.blob_id

    @classmethod
    def from_tree_entry(cls, entry: dict) -> RepoFile:
        lfs = entry.get("lfs") or {}
        return cls(entry["path"], int(entry["size"]), entry["oid"], lfs.get("oid") or lfs.get("sha256"))

    @classmethod
    def from_sibling(cls, sibling: dict) -> RepoFile:
        """From a ``model_info(..., blobs=true)`` sibling: ``rfilename``, ``size``, ``blobId``, ``lfs.sha256``."""
        lfs = sibling.get("lfs") or {}
        return cls(sibling["rfilename"], int(sibling["size"]), sibling["blobId"], lfs.get("sha256"))


def read_ref(folder: Path, revision: str) -> str | None:
    if COMMIT_RE.match(revision):
        return revision
    try:
        return (folder / "refs" / revision).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_ref(folder: Path, revision: str, commit: str) -> None:
    if revision == commit:
        return
    ref = folder / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    if not ref.is_file() or ref.read_text() != commit:
        atomic_write_text(ref, commit)


def read_tree(folder: Path, commit: str) -> dict[str, RepoFile] | None:
    """The cached listing of a commit (written by us or by huggingface_hub), or None."""
    try:
        data = json.loads((folder / "trees" / f"{commit}.json").read_text(encoding="utf-8"))
        if data.get("format_version") != TREE_FORMAT_VERSION:
            return None
        return {
            path: RepoFile(path, int(info["size"]), info["blob_id"], info.get("lfs_sha256"))
            for path, info in data["files"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_tree(folder: Path, commit: str, files: dict[str, RepoFile]) -> None:
    entries = {}
    for path in sorted(files):
        f = files[path]
        entries[path] = {"size": f.size, "blob_id": f.blob_id}
        if f.lfs_sha256:
            entries[path].update(lfs_sha256=f.lfs_sha256, lfs_size=f.size)
    (folder / "trees").mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        folder / "trees" / f"{commit}.json",
        json.dumps({"format_version": TREE_FORMAT_VERSION, "files": entries}, indent=1),
    )


def snapshot_path(folder: Path, commit: str, path: str = "") -> Path:
    return folder / "snapshots" / commit / path if path else folder / "snapshots" / commit


def blob_path(folder: Path, etag: str) -> Path:
    return folder / "blobs" / etag


def link(folder: Path, commit: str, file: RepoFile) -> Path:
    """Point ``snapshots/<commit>/<path>`` at its blob with a relative symlink, as huggingface_hub does."""
    pointer = snapshot_path(folder, commit, file.path)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob_path(folder, file.etag), pointer.parent)
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, pointer)
    return pointer


def mark_missing(folder: Path, commit: str, path: str) -> None:
    """Record that ``path`` does not exist at ``commit``: transformers reads this marker instead of asking."""
    marker = folder / ".no_exist" / commit / path
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def is_known_missing(folder: Path, commit: str, path: str) -> bool:
    return (folder / ".no_exist" / commit / path).is_file()
