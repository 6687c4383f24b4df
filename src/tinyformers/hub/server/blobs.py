"""The blob store of one machine: a folder of files named by their sha256, written atomically.

``blobs/ab/<sha256>`` holds the bytes. A blob is written to ``tmp/`` while its hash is computed, fsynced, then
renamed into place, so a reader never sees a partial blob and a crashed upload leaves only a temp file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ...utils import temp_file
from .storage import BlobStore, BlobWriter

CHUNK = 1 << 20


def _valid_sha256(sha256: str) -> bool:
    return len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)


class _FolderWriter(BlobWriter):
    def __init__(self, store: BlobFolder):
        self.store = store
        self.file, self.temp = temp_file(store.tmp, "blob")
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def finish(self, expected_sha256=None, expected_size=None) -> tuple[str, int]:
        sha256 = self.hash.hexdigest()
        try:
            if expected_size is not None and self.size != expected_size:
                raise ValueError(f"received {self.size} bytes, expected {expected_size}")
            if expected_sha256 is not None and sha256 != expected_sha256:
                raise ValueError(f"content has sha256 {sha256}, expected {expected_sha256}")
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            target = self.store.path(sha256)
            target.parent.mkdir(exist_ok=True)
            os.replace(self.temp, target)
        except BaseException:
            self.abort()
            raise
        return sha256, self.size

    def abort(self) -> None:
        self.file.close()
        Path(self.temp).unlink(missing_ok=True)


class BlobFolder(BlobStore):
    def __init__(self, root: Path):
        self.root = Path(root) / "blobs"
        self.tmp = Path(root) / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not _valid_sha256(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def writer(self) -> BlobWriter:
        return _FolderWriter(self)

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except (OSError, ValueError):
            return None

    def read(self, sha256: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        with open(self.path(sha256), "rb") as f:
            f.seek(start)
            remaining = float("inf") if length is None else length
            while remaining > 0:
                chunk = f.read(int(min(CHUNK, remaining)))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
