"""Turn what a user passes to ``from_pretrained`` into a local folder.

Accepted: a local directory, or a hub id (``org/name``) already present in the Hugging Face cache
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), in the layout
``models--org--name/{refs/<revision>, snapshots/<commit>/...}`` that ``huggingface_hub`` writes. Nothing here
touches the network: a missing model is a clear error, never a silent download.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class ModelNotFoundError(OSError):
    """The name given to ``from_pretrained`` points at nothing we can read."""


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    repo_dir = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        return None
    revision = revision or "main"
    if _COMMIT_RE.match(revision):
        commit = revision
    else:
        ref = repo_dir / "refs" / revision
        if not ref.is_file():
            return None
        commit = ref.read_text().strip()
    snapshot = repo_dir / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def resolve_dir(name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    """Return the local folder holding the model files for ``name_or_path``."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        return path.parent
    name = str(name_or_path)
    looks_like_id = re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name) is not None and ".." not in name
    if looks_like_id:
        snapshot = _cached_snapshot(name, revision)
        if snapshot is not None:
            return snapshot
    raise ModelNotFoundError(
        f"'{name}' is neither a local directory nor a hub id found in the cache ({hub_cache_dir()}); "
        "pass the path of a folder holding config.json, or download the model into the cache first"
    )


def resolve_gguf(
    name_or_path: str | os.PathLike, gguf_file: str | None, revision: str | None = None
) -> Path | None:
    """The GGUF file meant by ``from_pretrained(folder, gguf_file=name)`` or ``from_pretrained("x.gguf")``, or None."""
    path = Path(name_or_path).expanduser()
    if gguf_file is None:
        return path if path.is_file() and path.suffix == ".gguf" else None
    candidate = Path(gguf_file).expanduser()
    if not candidate.is_absolute():
        candidate = resolve_dir(name_or_path, revision=revision) / gguf_file
    if not candidate.is_file():
        raise ModelNotFoundError(
            f"no GGUF file '{gguf_file}' in '{name_or_path}'; check the file name (gguf_file=...)"
        )
    return candidate
