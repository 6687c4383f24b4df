"""The hub's two stores, as interfaces: a metadata database and a content-addressed blob store.

This machine's implementations are SQLite (``sqlite.py``) and a blob folder (``blobs.py``). Everything else in
the server talks only to these interfaces, so a multi-machine deployment can swap in Postgres and an
S3-compatible object store without touching the routes (docs/hub.md has the plan and what each store must
guarantee). The records here are plain frozen dataclasses: what the routes read, never database rows.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


@dataclass(frozen=True)
class User:
    id: int
    name: str


@dataclass(frozen=True)
class Token:
    user: User
    role: str  # "read" | "write"
    display_name: str


@dataclass(frozen=True)
class FileEntry:
    """One file of one commit. ``git_oid`` is git's blob sha1 (of the LFS pointer for LFS files)."""

    path: str
    size: int
    sha256: str
    git_oid: str
    lfs: bool

    @property
    def etag(self) -> str:
        # The hub's convention, which becomes the blob's name in the client cache: sha256 for LFS files.
        return self.sha256 if self.lfs else self.git_oid

    @property
    def pointer_size(self) -> int:
        return len(LFS_POINTER.format(oid=self.sha256, size=self.size))


@dataclass(frozen=True)
class Commit:
    sha: str
    parent: str | None
    title: str
    message: str
    author: str
    created_at: float


@dataclass(frozen=True)
class Repo:
    id: int
    type: str
    namespace: str
    name: str
    private: bool
    created_at: float
    last_modified: float
    downloads: int
    likes: int
    # Read from the head of ``main`` at commit time (model card, config.json), so listing never opens blobs.
    meta: dict = field(default_factory=dict)

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Ref:
    kind: str  # "branch" | "tag"
    name: str
    commit: str


@dataclass(frozen=True)
class RepoQuery:
    """A listing: every field narrows it; ``viewer`` sees their own private repos too."""

    type: str = "model"
    search: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    sort: str = "downloads"  # downloads | likes | lastModified | createdAt | id
    descending: bool = True
    offset: int = 0
    limit: int = 1000
    viewer: str | None = None


class Conflict(Exception):
    """An optimistic check failed: the repo exists, or the branch moved since the caller looked."""


class MetadataStore(abc.ABC):
    """Users, hashed tokens, repos, commits with their file lists, refs, downloads, likes, pending LFS uploads.

    Guarantees every implementation gives: ``commit`` is one transaction (the commit, its files and the
    branch move land together or not at all) and compares the branch head with the expected parent inside
    that transaction, so concurrent commits to one branch serialise; reads never see half a commit.
    """

    # users and tokens
    @abc.abstractmethod
    def ensure_user(self, name: str) -> User: ...

    @abc.abstractmethod
    def add_token(self, user: User, token_hash: str, role: str, display_name: str) -> None: ...

    @abc.abstractmethod
    def find_token(self, token_hash: str) -> Token | None: ...

    # repos
    @abc.abstractmethod
    def create_repo(
        self,
        type: str,
        namespace: str,
        name: str,
        private: bool,
        initial: Commit,
        files: list[FileEntry],
        meta: dict,
    ) -> Repo:
        """Create the repo with its first commit on ``main``; raise Conflict if it exists."""

    @abc.abstractmethod
    def get_repo(self, type: str, namespace: str, name: str) -> Repo | None: ...

    @abc.abstractmethod
    def delete_repo(self, repo: Repo) -> None: ...

    @abc.abstractmethod
    def set_private(self, repo: Repo, private: bool) -> None: ...

    @abc.abstractmethod
    def list_repos(self, query: RepoQuery) -> list[Repo]: ...

    @abc.abstractmethod
    def pipeline_tags(self, type: str, viewer: str | None) -> list[str]:
        """The distinct tasks of the repos ``viewer`` can see (for the web page's task filter)."""

    # history
    @abc.abstractmethod
    def refs(self, repo: Repo) -> list[Ref]: ...

    @abc.abstractmethod
    def set_ref(self, repo: Repo, kind: str, name: str, commit: str) -> None:
        """Create a ref; raise Conflict if it exists."""

    @abc.abstractmethod
    def delete_ref(self, repo: Repo, kind: str, name: str) -> bool: ...

    @abc.abstractmethod
    def get_commit(self, repo: Repo, sha: str) -> Commit | None: ...

    @abc.abstractmethod
    def files(self, repo: Repo, commit: str) -> dict[str, FileEntry]: ...

    @abc.abstractmethod
    def commit(
        self, repo: Repo, branch: str, parent: str, commit: Commit, files: list[FileEntry], meta: dict | None
    ) -> None:
        """Record ``commit`` (whose full file list is ``files``) and move ``branch`` to it, atomically.

        Raises Conflict when ``branch`` no longer points at ``parent``. ``meta`` (for ``main``) replaces the
        repo's listing metadata in the same transaction.
        """

    # counters
    @abc.abstractmethod
    def count_download(self, repo: Repo) -> None: ...

    @abc.abstractmethod
    def set_like(self, user: User, repo: Repo, liked: bool) -> None: ...

    # LFS uploads announced by a batch call, waiting for their PUT
    @abc.abstractmethod
    def add_upload(self, ticket: str, repo: Repo, oid: str, size: int, expires_at: float) -> None: ...

    @abc.abstractmethod
    def get_upload(self, ticket: str) -> tuple[int, str, int, float] | None:
        """(repo id, oid, size, expires_at) of a pending upload."""

    @abc.abstractmethod
    def drop_upload(self, ticket: str) -> None: ...


class BlobWriter(abc.ABC):
    """A blob being written: hashed as it streams, visible under its sha256 only once ``finish`` succeeds."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def finish(self, expected_sha256: str | None = None, expected_size: int | None = None) -> tuple[str, int]:
        """Publish the blob atomically; raise ValueError (and keep nothing) if it is not what was expected."""

    @abc.abstractmethod
    def abort(self) -> None: ...


class BlobStore(abc.ABC):
    """Immutable content addressed by sha256. Writing the same content twice is harmless."""

    @abc.abstractmethod
    def writer(self) -> BlobWriter: ...

    @abc.abstractmethod
    def size(self, sha256: str) -> int | None:
        """The blob's size, or None when it is not stored."""

    @abc.abstractmethod
    def read(self, sha256: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The bytes [start, start + length), in chunks, never the whole blob at once."""
