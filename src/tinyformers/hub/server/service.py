"""The hub's behaviour over its two stores: revisions, commits, file entries. Routes are thin wrappers of this."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from . import cards
from .blobs import BlobFolder
from .errors import HubError, conflict, entry_not_found, revision_not_found
from .sqlite import SQLiteStore
from .storage import LFS_POINTER, BlobStore, Commit, Conflict, FileEntry, MetadataStore, Repo

MiB = 1 << 20
# Files at least this large (or with a weights suffix) are LFS files, as on huggingface.co: their ETag is the
# sha256 and model_info lists their "lfs" entry.
LFS_THRESHOLD = 10 * MiB
# huggingface.co's own default, so a new repo behaves like one created there.
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gguf *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy "
        "*.npz *.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* *.tar.* "
        "*.tar *.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents*"
    ).split()
)


@dataclass(frozen=True)
class Settings:
    """Limits, from ``tinyformers hub serve`` flags or TINYFORMERS_HUB_* environment variables."""

    root: Path
    # Preupload answers "regular" (content base64 in the commit) while a request's files stay under this; the
    # default client then never needs LFS or Xet. Larger files go through the LFS batch API.
    regular_limit: int = 100 * MiB
    max_file_size: int = 50 * 1000**3  # huggingface_hub refuses plain-HTTP downloads above 50 GB
    upload_ttl: float = 24 * 3600.0

    @classmethod
    def from_env(
        cls, root: Path, regular_limit: int | None = None, max_file_size: int | None = None
    ) -> Settings:
        def pick(value, name, default):
            if value is not None:
                return value
            return int(os.environ[name]) if os.environ.get(name) else default

        return cls(
            root=Path(root),
            regular_limit=pick(regular_limit, "TINYFORMERS_HUB_REGULAR_LIMIT", cls.regular_limit),
            max_file_size=pick(max_file_size, "TINYFORMERS_HUB_MAX_FILE_SIZE", cls.max_file_size),
        )


def git_blob_sha1(chunks, size: int) -> str:
    digest = hashlib.sha1(f"blob {size}\0".encode())
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


class Hub:
    def __init__(
        self, settings: Settings, store: MetadataStore | None = None, blobs: BlobStore | None = None
    ):
        self.settings = settings
        self.store = store or SQLiteStore(settings.root / "hub.sqlite")
        self.blobs = blobs or BlobFolder(settings.root)
        # Request bodies are spooled here (local disk, whatever the blob store is).
        self.blobs_tmp = settings.root / "tmp"
        self.blobs_tmp.mkdir(parents=True, exist_ok=True)
        self._content_oids: dict[str, str] = {}

    # -- files ----------------------------------------------------------------------------------------------

    def entry(self, path: str, sha256: str, size: int, via_lfs: bool) -> FileEntry:
        """The file entry for a stored blob: an LFS file if it came through LFS or is large or weights."""
        lfs = via_lfs or size >= LFS_THRESHOLD or path.endswith(cards.WEIGHT_SUFFIXES)
        if lfs:
            pointer = LFS_POINTER.format(oid=sha256, size=size).encode()
            git_oid = git_blob_sha1([pointer], len(pointer))
        else:
            git_oid = git_blob_sha1(self.blobs.read(sha256), size)
        return FileEntry(path, size, sha256, git_oid, lfs)

    def content_git_oid(self, entry: FileEntry) -> str:
        """git's sha1 of the content itself, which clients compare for files they send as regular."""
        if not entry.lfs:
            return entry.git_oid
        if entry.sha256 not in self._content_oids:
            if len(self._content_oids) > 4096:
                self._content_oids.clear()
            self._content_oids[entry.sha256] = git_blob_sha1(self.blobs.read(entry.sha256), entry.size)
        return self._content_oids[entry.sha256]

    def store_bytes(self, path: str, data: bytes) -> FileEntry:
        writer = self.blobs.writer()
        writer.write(data)
        sha256, size = writer.finish()
        return self.entry(path, sha256, size, via_lfs=False)

    def read_small(self, entry: FileEntry) -> bytes | None:
        if entry.size > cards.MAX_CARD_BYTES:
            return None
        return b"".join(self.blobs.read(entry.sha256))

    def read_head(self, entry: FileEntry, size: int) -> bytes:
        return b"".join(self.blobs.read(entry.sha256, 0, size))

    def describe(self, files: dict[str, FileEntry]) -> dict:
        return cards.describe(files, self.read_small, self.read_head)

    # -- revisions ------------------------------------------------------------------------------------------

    def resolve(self, repo: Repo, revision: str) -> str:
        """The commit sha a branch, tag (also as refs/heads/x, refs/tags/x) or full sha names."""
        for ref in self.store.refs(repo):
            if revision in (ref.name, f"refs/{'heads' if ref.kind == 'branch' else 'tags'}/{ref.name}"):
                return ref.commit
        if len(revision) == 40 and self.store.get_commit(repo, revision) is not None:
            return revision
        raise revision_not_found(repo.repo_id, revision)

    def branch_head(self, repo: Repo, branch: str) -> str:
        name = branch.removeprefix("refs/heads/")
        for ref in self.store.refs(repo):
            if ref.kind == "branch" and ref.name == name:
                return ref.commit
        raise revision_not_found(repo.repo_id, branch)

    def last_commits(self, repo: Repo, sha: str) -> dict[str, Commit]:
        """For each file at ``sha``, the most recent commit up to ``sha`` that changed it."""
        current = self.store.files(repo, sha)
        found: dict[str, Commit] = {}
        commit = self.store.get_commit(repo, sha)
        while commit is not None and len(found) < len(current):
            before = self.store.files(repo, commit.parent) if commit.parent else {}
            for path, entry in current.items():
                if path not in found and (path not in before or before[path].git_oid != entry.git_oid):
                    found[path] = commit
            commit = self.store.get_commit(repo, commit.parent) if commit.parent else None
        return found

    # -- commits --------------------------------------------------------------------------------------------

    def new_commit(self, repo_key: str, parent, title, message, author, files) -> Commit:
        created = time.time()
        identity = json.dumps(
            [repo_key, parent, title, message, author, created, secrets.token_hex(8)]
            + sorted((f.path, f.git_oid) for f in files.values())
        )
        sha = hashlib.sha1(identity.encode()).hexdigest()
        return Commit(sha, parent, title, message, author, created)

    def create_repo(self, type: str, namespace: str, name: str, private: bool, author: str) -> Repo:
        files = {".gitattributes": self.store_bytes(".gitattributes", GITATTRIBUTES.encode())}
        commit = self.new_commit(f"{type}/{namespace}/{name}", None, "initial commit", "", author, files)
        return self.store.create_repo(
            type, namespace, name, private, commit, list(files.values()), self.describe(files)
        )

    def commit(
        self,
        repo: Repo,
        branch: str,
        author: str,
        title: str,
        message: str,
        parent: str | None,
        additions: dict[str, FileEntry],
        deleted_files: list[str],
        deleted_folders: list[str],
    ) -> Commit:
        """Apply the operations on top of ``branch`` in one transaction.

        With ``parent`` (the client's ``parent_commit``) the branch must still be there, else 412. Without it,
        a commit that lost the race to another one is re-applied on top of it: both land, one after the other.
        """
        branch = branch.removeprefix("refs/heads/")
        for _attempt in range(20):
            head = self.branch_head(repo, branch)
            if parent is not None and parent != head:
                raise HubError(
                    412,
                    "PreconditionFailed",
                    f"parent_commit {parent[:12]} is not the head of '{branch}' ({head[:12]}): "
                    "a commit happened since; fetch the new head and retry.",
                )
            files = dict(self.store.files(repo, head))
            for path in deleted_files:
                if files.pop(path, None) is None:
                    raise entry_not_found(repo.repo_id, path, head)
            for folder in deleted_folders:
                prefix = folder.rstrip("/") + "/"
                doomed = [path for path in files if path.startswith(prefix)]
                if not doomed:
                    raise entry_not_found(repo.repo_id, folder, head)
                for path in doomed:
                    del files[path]
            files.update(additions)
            commit = self.new_commit(repo.repo_id, head, title, message, author, files)
            meta = self.describe(files) if branch == "main" else None
            try:
                self.store.commit(repo, branch, head, commit, list(files.values()), meta)
                return commit
            except Conflict:
                if parent is not None:
                    continue  # reported as 412 by the check above
        raise conflict(f"'{branch}' of {repo.repo_id} keeps moving; retry the commit.")
