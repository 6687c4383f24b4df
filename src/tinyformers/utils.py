"""Small helpers shared across the package: atomic writes and JSON reading with clear errors."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")


def _new_name(parent: Path, prefix: str, suffix: str, create: Callable[[Path], T]) -> T:
    """``create`` at a fresh hidden name in ``parent``, retrying the rare clash with an existing one."""
    for _ in range(100):
        try:
            return create(parent / f".{prefix}.{secrets.token_hex(4)}{suffix}")
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for '{prefix}' in '{parent}'")


def temp_file(parent: str | os.PathLike, prefix: str) -> tuple[BinaryIO, Path]:
    """A new hidden file in ``parent``, open for writing. Unlike ``tempfile.mkstemp`` (always 0600), it gets the
    permissions any file the user creates gets (0666 less the umask), so the file it becomes is readable as
    usual by the group or a server."""

    def create(path: Path):
        return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb"), path

    return _new_name(Path(parent), prefix, ".tmp", create)


def temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new hidden folder in ``parent`` with the user's usual permissions (0777 less the umask; mkdtemp's 0700
    would carry over to the folder it is renamed to)."""

    def create(path: Path) -> Path:
        path.mkdir(mode=0o777)
        return path

    return _new_name(Path(parent), prefix, ".tmp", create)


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path``; on success it replaces ``path`` whole, on error it is removed.

    Readers therefore see the old file or the complete new one, never a half-written one. Every file the package
    writes goes through here (or ``temp_file``), so all of them honour the umask.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write '{path}': there is no folder '{path.parent}'")
    f, tmp = temp_file(path.parent, path.name)
    try:
        with f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column instead of a bare decoder trace."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path} is not UTF-8 text ({e.reason}); replace it with a valid JSON file"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); fix or re-download the file"
        ) from None
