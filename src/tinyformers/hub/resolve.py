"""Turn what a user passes to ``from_pretrained`` into a local folder.

Accepted: a local directory, or a hub id (``org/name``) with an optional ``revision`` (branch, tag or commit
sha). A hub id is served from the shared Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``) and downloaded there from ``$HF_ENDPOINT`` when missing; see ``download.py`` for
when that costs requests (a cached commit sha costs none; ``HF_HUB_OFFLINE=1`` never makes any).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .cache import COMMIT_RE, hub_cache_dir
from .download import cached_snapshot, for_from_pretrained, snapshot_download
from .errors import HubConnectionError, ModelNotFoundError

_ID_RE = re.compile(r"[\w.-]+(/[\w.-]+)?")

__all__ = ["ModelNotFoundError", "hub_cache_dir", "is_hub_id", "pin_revision", "resolve_dir", "resolve_gguf"]


def _looks_like_id(name: str) -> bool:
    """``name`` or ``namespace/name``; a part starting with a dot is a path (``.assets/minilm``), never an id."""
    return _ID_RE.fullmatch(name) is not None and not any(part.startswith(".") for part in name.split("/"))


def is_hub_id(name: str | os.PathLike) -> bool:
    """``namespace/name`` that is not an existing local path: a model to look up on the hub."""
    text = str(name)
    return "/" in text and _looks_like_id(text) and not Path(text).expanduser().exists()


def resolve_dir(
    name_or_path: str | os.PathLike, revision: str | None = None, *, include: Iterable[str] = ()
) -> Path:
    """Return the local folder holding the model files for ``name_or_path`` (``include``: extra files to fetch
    that ``from_pretrained`` skips by default, such as one GGUF file)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        return path.parent
    name = str(name_or_path)
    if _looks_like_id(name):
        if "/" in name:
            try:
                return snapshot_download(
                    name, revision, select=lambda paths: for_from_pretrained(paths, include)
                )
            except HubConnectionError as e:
                raise ModelNotFoundError(
                    f"'{name}' is neither a local directory nor a hub id found in the cache ({hub_cache_dir()}), "
                    f"and {e}"
                ) from None
        # a bare name (no namespace) is looked up in the cache only
        try:
            return cached_snapshot(name, revision or "main", None)
        except ModelNotFoundError:
            pass
    raise ModelNotFoundError(
        f"'{name}' is neither a local directory nor a hub id found in the cache ({hub_cache_dir()}); "
        "pass the path of a folder holding config.json, or a hub id as namespace/name"
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
        candidate = resolve_dir(name_or_path, revision=revision, include=[gguf_file]) / gguf_file
    if not candidate.is_file():
        raise ModelNotFoundError(
            f"no GGUF file '{gguf_file}' in '{name_or_path}'; check the file name (gguf_file=...)"
        )
    return candidate


def pin_revision(
    name_or_path: str | os.PathLike, revision: str | None = None, gguf_file: str | None = None
) -> str | None:
    """The commit a hub id's branch or tag points at now (fetching its files), else ``revision`` unchanged.

    A load that reads several files (config, weights, tokenizer) pins once and passes the commit on: every file
    then comes from the same commit even if the branch moves meanwhile, and the later look-ups cost no request.
    """
    if gguf_file is not None and Path(gguf_file).expanduser().is_absolute():
        return revision
    name = str(name_or_path)
    if Path(name).expanduser().exists() or "/" not in name or not _looks_like_id(name):
        return revision
    directory = resolve_dir(name, revision, include=[gguf_file] if gguf_file else ())
    return directory.name if COMMIT_RE.match(directory.name) else revision
