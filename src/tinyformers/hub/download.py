"""Download a repo's files into the shared cache: parallel, one progress bar, resumable, verified.

A revision that is a commit sha whose listing and files are cached is answered from disk with no request;
a branch or tag costs one request (which commit is it now?) and the listing one more the first time. Each file
is fetched to ``blobs/<etag>.incomplete``; an interrupted download is resumed with a ``Range`` request next time,
and the file is renamed to its blob only when its size and hash (git sha1, or sha256 for LFS) are right.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import http.client
import logging
import os
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from ..utils import atomic_writer
from . import cache
from .api import check_repo_id, commit_of, list_files
from .cache import RepoFile
from .errors import EntryNotFoundError, HubConnectionError, HubError, ModelNotFoundError
from .http import endpoint, is_offline, request, retry_delay

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_WORKERS = 8
ATTEMPTS = 5  # tries per file; waits between them add up to about 4 s (or what Retry-After asks)
DOWNLOAD_TIMEOUT = 30.0  # seconds without a byte before a download is retried
# Files another framework or format would load instead; from_pretrained never reads them.
OTHER_FORMATS = (
    "*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "*.tflite", "*.mlmodel", "*.gguf", "*.ckpt",
    "onnx/*", "openvino/*", "coreml/*", "tf_model*", "flax_model*", "rust_model*",
)  # fmt: skip
TORCH_PICKLES = ("*.bin", "*.pt", "*.pth")
# Files transformers looks for in every repo; when a listing lacks them, a `.no_exist` marker lets it (and us)
# know without asking the server.
OPTIONAL_FILES = (
    "generation_config.json", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json",
    "added_tokens.json", "chat_template.jinja", "model.safetensors.index.json", "adapter_config.json",
)  # fmt: skip


def for_from_pretrained(paths: Iterable[str], extra: Iterable[str] = ()) -> set[str]:
    """The files ``from_pretrained`` may read: all but other formats, and no pickles when safetensors exist."""
    paths, extra = set(paths), set(extra)
    skip = OTHER_FORMATS + (TORCH_PICKLES if any(p.endswith(".safetensors") for p in paths) else ())
    return {p for p in paths if p in extra or not any(fnmatch.fnmatch(p, pattern) for pattern in skip)}


def _new_digest(file: RepoFile):
    """The hash a file's id is: sha256 of the bytes for an LFS file, else git's blob sha1 (a header, then the
    bytes)."""
    if file.lfs_sha256:
        return hashlib.sha256()
    return hashlib.sha1(f"blob {file.size}\0".encode())


def _digest_prefix(path: Path, file: RepoFile, size: int):
    """A digest fed the first ``size`` bytes of ``path``: what a resumed download has already kept."""
    digest = _new_digest(file)
    with open(path, "rb") as f:
        while size > 0 and (chunk := f.read(min(CHUNK, size))):
            digest.update(chunk)
            size -= len(chunk)
    return digest


def _expected_digest(file: RepoFile) -> str:
    return file.lfs_sha256 or file.blob_id


@contextmanager
def _locked(path: Path):
    """An exclusive flock on huggingface_hub's lock file for the blob, so the two tools never write it at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_url(repo_id: str, commit: str, path: str) -> str:
    return f"{endpoint()}/{repo_id}/resolve/{commit}/{urllib.parse.quote(path)}"


def download_timeout() -> float:
    """Seconds a file download may wait for the next bytes (huggingface_hub's ``HF_HUB_DOWNLOAD_TIMEOUT``)."""
    value = os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", "")
    try:
        return float(value) if value else DOWNLOAD_TIMEOUT
    except ValueError:
        raise ValueError(f"HF_HUB_DOWNLOAD_TIMEOUT must be a number of seconds, not {value!r}") from None


def _fetch_once(url: str, incomplete: Path, file: RepoFile, token, bar) -> str:
    """One GET into ``incomplete``, continuing from its current size with a Range request; returns the hash of
    what ``incomplete`` then holds. The bytes are hashed as they arrive, so a finished file is not read again."""
    have = incomplete.stat().st_size if incomplete.exists() else 0
    if have > file.size:
        incomplete.unlink()
        have = 0
    digest = _digest_prefix(incomplete, file, have) if have else _new_digest(file)
    if have == file.size:
        return digest.hexdigest()
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    # One try here: download_blob retries, resuming from what arrived.
    with request(
        "GET", url, headers=headers, token=token, attempts=1, timeout=download_timeout(), path=file.path
    ) as response:
        if have and response.status != 206:  # the server ignored the range: start over
            bar.update(-have)
            have, digest = 0, _new_digest(file)
        announced, got = int(response.headers.get("Content-Length") or -1), 0
        with open(incomplete, "ab" if have else "wb") as out:
            while chunk := response.read1(CHUNK):  # what arrived, without waiting for a whole CHUNK
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
        if got < announced:  # http.client ends a cut-off body quietly
            raise ConnectionError(f"the connection closed after {got:,} of {announced:,} bytes")
    return digest.hexdigest()


def _worth_retrying(error: Exception) -> bool:
    """A network failure, a cut-off or stalled body, or a busy server (408, 429, 5xx)."""
    if isinstance(error, HubError):
        return isinstance(error, HubConnectionError) or error.retryable
    return isinstance(error, (ConnectionError, TimeoutError, http.client.HTTPException))


def download_blob(repo_id: str, commit: str, file: RepoFile, *, token=None, bar=None) -> Path:
    """Make ``blobs/<etag>`` hold the file's verified bytes (resuming a leftover ``.incomplete``).

    Up to ATTEMPTS tries with backoff; each resumes with a Range request from the bytes already kept.
    """
    folder = cache.repo_folder(repo_id)
    blob = cache.blob_path(folder, file.etag)
    if blob.exists():
        return blob
    blob.parent.mkdir(parents=True, exist_ok=True)
    bar = bar if bar is not None else tqdm(disable=True)
    with _locked(cache.lock_path(repo_id, file.etag)):
        if blob.exists():
            return blob
        incomplete = blob.with_name(blob.name + ".incomplete")
        url = file_url(repo_id, commit, file.path)
        corrupt = 0
        for attempt in range(ATTEMPTS):
            try:
                digest = _fetch_once(url, incomplete, file, token, bar)
            except Exception as e:
                if not _worth_retrying(e):
                    raise
                kept = incomplete.stat().st_size if incomplete.exists() else 0
                reason = " ".join(str(e).split()) or type(e).__name__
                if attempt == ATTEMPTS - 1:
                    raise HubConnectionError(
                        f"gave up downloading '{file.path}' from '{repo_id}' after {ATTEMPTS} attempts (last: "
                        f"{reason}); {kept:,} of {file.size:,} bytes are kept and the next run resumes there",
                        getattr(e, "status", None),
                    ) from None
                logger.warning(
                    "download of %s interrupted (%s); resuming from byte %d", file.path, reason, kept
                )
                time.sleep(retry_delay(attempt, getattr(e, "retry_after", None)))
                continue
            got = incomplete.stat().st_size
            if got == file.size and digest == _expected_digest(file):
                os.replace(incomplete, blob)
                return blob
            incomplete.unlink()
            corrupt += 1
            if corrupt == 2:
                raise HubError(
                    f"'{file.path}' from '{repo_id}' arrived corrupt twice ({got} bytes, expected {file.size} with "
                    f"hash {file.etag}); the server's copy may be damaged"
                )
    raise HubError(f"'{file.path}' from '{repo_id}' could not be downloaded intact in {ATTEMPTS} attempts")


def _download_all(repo_id: str, commit: str, files: list[RepoFile], token) -> None:
    folder = cache.repo_folder(repo_id)
    resumed = 0
    for f in files:
        partial = cache.blob_path(folder, f.etag).with_name(f.etag + ".incomplete")
        resumed += min(partial.stat().st_size, f.size) if partial.exists() else 0
    disable = bool(os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")) or None
    total = sum(f.size for f in files)
    with tqdm(
        total=total,
        initial=resumed,
        unit="B",
        unit_scale=True,
        desc=f"Fetching {len(files)} files",
        disable=disable,
    ) as bar:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(files))) as pool:
            list(pool.map(lambda f: download_blob(repo_id, commit, f, token=token, bar=bar), files))


def _complete(folder: Path, commit: str, wanted: set[str]) -> bool:
    return all(cache.snapshot_path(folder, commit, p).exists() for p in wanted)


def cached_snapshot(repo_id: str, revision: str, why: Exception | None) -> Path:
    """The cached snapshot of ``revision`` when the hub cannot (or must not) be asked."""
    folder = cache.repo_folder(repo_id)
    commit = cache.read_ref(folder, revision)
    if commit and cache.snapshot_path(folder, commit).is_dir():
        listing = cache.read_tree(folder, commit)
        if listing is not None and not _complete(folder, commit, for_from_pretrained(listing)):
            logger.warning("the cached snapshot of %s at %s is incomplete", repo_id, commit[:8])
        return cache.snapshot_path(folder, commit)
    if why is None:
        raise ModelNotFoundError(
            f"'{repo_id}' (revision '{revision}') is not in the cache ({cache.hub_cache_dir()}) and HF_HUB_OFFLINE "
            "is set; unset HF_HUB_OFFLINE to download it, or pass a local folder"
        )
    raise why


def snapshot_download(
    repo_id: str,
    revision: str | None = None,
    *,
    select: Callable[[Iterable[str]], set[str]] | None = None,
    local_dir: str | os.PathLike | None = None,
    token=None,
) -> Path:
    """The cached snapshot folder of ``repo_id`` at ``revision`` holding the selected files (default: all).

    With ``local_dir`` the files are also copied there (plain files) and that folder is returned.
    """
    check_repo_id(repo_id)
    revision = revision or "main"
    folder = cache.repo_folder(repo_id)
    if is_offline():
        snapshot = cached_snapshot(repo_id, revision, None)
        return _copy_to(snapshot, local_dir) if local_dir else snapshot
    select = select or set
    commit = revision if cache.COMMIT_RE.match(revision) else None
    listing = cache.read_tree(folder, commit) if commit else None
    if listing is None or not _complete(folder, commit, select(listing)):
        try:
            if commit is None:
                commit = commit_of(repo_id, revision, token=token)
                cache.write_ref(folder, revision, commit)
                listing = cache.read_tree(folder, commit)
            if listing is None:
                listing = list_files(repo_id, commit, token=token)
                remember_listing(repo_id, commit, listing)
        except HubError as e:
            if not isinstance(e, HubConnectionError) and (e.status or 0) < 500:
                raise  # the hub answered: unknown repo or revision, bad token
            snapshot = cached_snapshot(repo_id, revision, e)  # the hub is unreachable or down: use the cache
            logger.warning("%s; using the cached snapshot %s", e, snapshot)
            return _copy_to(snapshot, local_dir) if local_dir else snapshot
        wanted = [listing[p] for p in sorted(select(listing))]
        missing = [f for f in wanted if not cache.snapshot_path(folder, commit, f.path).exists()]
        fetch = {f.etag: f for f in missing if not cache.blob_path(folder, f.etag).exists()}
        if fetch:
            _download_all(repo_id, commit, list(fetch.values()), token)
        for f in missing:
            cache.link(folder, commit, f)
    snapshot = cache.snapshot_path(folder, commit)
    snapshot.mkdir(parents=True, exist_ok=True)
    return _copy_to(snapshot, local_dir, select(listing)) if local_dir else snapshot


def remember_listing(repo_id: str, commit: str, listing: dict[str, RepoFile]) -> None:
    """Cache a commit's file list, and mark the files transformers looks for that it lacks."""
    folder = cache.repo_folder(repo_id)
    cache.write_tree(folder, commit, listing)
    for name in set(OPTIONAL_FILES) - set(listing):
        cache.mark_missing(folder, commit, name)


def _copy_to(snapshot: Path, local_dir, paths: Iterable[str] | None = None) -> Path:
    """Copy snapshot files into ``local_dir`` as plain files (temp file + rename each)."""
    target = Path(local_dir).expanduser()
    if paths is None:
        paths = [str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()]
    for path in paths:
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        with open(snapshot / path, "rb") as source, atomic_writer(destination) as f:
            shutil.copyfileobj(source, f)
    return target


def hub_file(repo_id: str, filename: str, revision: str | None = None, *, token=None) -> Path:
    """One file of a repo, from the cache or downloaded into it (like ``hf_hub_download``)."""
    snapshot = snapshot_download(repo_id, revision, select=lambda paths: {filename} & set(paths), token=token)
    path = snapshot / filename
    if not path.is_file():
        raise EntryNotFoundError(
            f"file '{filename}' not found in '{repo_id}' at revision '{revision or 'main'}'; check the file name"
        )
    return path
