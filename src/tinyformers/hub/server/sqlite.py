"""The metadata store of one machine: one SQLite file in WAL mode.

WAL lets the server read while ``tinyformers hub token create`` or another request writes; writers take the
database lock with ``BEGIN IMMEDIATE``, which is what serialises two commits to one repo (the second one sees
the moved branch and gets a Conflict). Each thread has its own connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from .storage import Commit, Conflict, FileEntry, MetadataStore, Ref, Repo, RepoQuery, Token, User

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
    role TEXT NOT NULL CHECK (role IN ('read', 'write')), display_name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
    id INTEGER PRIMARY KEY, type TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    private INTEGER NOT NULL, created_at REAL NOT NULL, last_modified REAL NOT NULL,
    downloads INTEGER NOT NULL DEFAULT 0, likes INTEGER NOT NULL DEFAULT 0,
    pipeline_tag TEXT, tags TEXT NOT NULL DEFAULT '', meta TEXT NOT NULL DEFAULT '{}',
    UNIQUE (type, namespace, name));
CREATE TABLE IF NOT EXISTS commits (
    repo_id INTEGER NOT NULL, sha TEXT NOT NULL, parent TEXT, title TEXT NOT NULL, message TEXT NOT NULL,
    author TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (repo_id, sha));
CREATE TABLE IF NOT EXISTS files (
    repo_id INTEGER NOT NULL, commit_sha TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    sha256 TEXT NOT NULL, git_oid TEXT NOT NULL, lfs INTEGER NOT NULL, PRIMARY KEY (repo_id, commit_sha, path));
CREATE TABLE IF NOT EXISTS refs (
    repo_id INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, commit_sha TEXT NOT NULL,
    PRIMARY KEY (repo_id, kind, name));
CREATE TABLE IF NOT EXISTS likes (
    user_id INTEGER NOT NULL, repo_id INTEGER NOT NULL, PRIMARY KEY (user_id, repo_id));
CREATE TABLE IF NOT EXISTS lfs_uploads (
    ticket TEXT PRIMARY KEY, repo_id INTEGER NOT NULL, oid TEXT NOT NULL, size INTEGER NOT NULL,
    expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS repos_by_downloads ON repos (type, downloads);
"""

SORT_COLUMNS = {
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "last_modified",
    "createdAt": "created_at",
    "id": "namespace || '/' || name",
}


def _tags_column(tags) -> str:
    # Tab-delimited so that "tag = x" is one instr() on an indexed-free scan, fast enough for 10^4-10^5 repos.
    return "\t" + "\t".join(tags) + "\t" if tags else ""


class SQLiteStore(MetadataStore):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(SCHEMA)
            self.trigrams = self._create_name_index(db)

    @staticmethod
    def _create_name_index(db) -> bool:
        """A trigram full-text index of the repo ids, so that a substring search does not scan every repo.

        Optional: SQLite builds without FTS5 fall back to scanning (fine for a few thousand repos).
        """
        try:
            db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS repo_names USING fts5(repo_id, tokenize='trigram')"
            )
        except sqlite3.OperationalError:
            return False
        db.execute(
            "INSERT INTO repo_names (rowid, repo_id) SELECT id, namespace || '/' || name FROM repos "
            "WHERE id NOT IN (SELECT rowid FROM repo_names)"
        )
        return True

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    def _write(self):
        return _Transaction(self._connect())

    # -- users and tokens -----------------------------------------------------------------------------------

    def ensure_user(self, name: str) -> User:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO users (name, created_at) VALUES (?, ?)", (name, time.time()))
            row = db.execute("SELECT id, name FROM users WHERE name = ?", (name,)).fetchone()
        return User(row["id"], row["name"])

    def add_token(self, user: User, token_hash: str, role: str, display_name: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens (hash, user_id, role, display_name, created_at) VALUES (?, ?, ?, ?, ?)",
                (token_hash, user.id, role, display_name, time.time()),
            )

    def find_token(self, token_hash: str) -> Token | None:
        row = (
            self._connect()
            .execute(
                "SELECT users.id, users.name, role, display_name FROM tokens JOIN users ON users.id = user_id "
                "WHERE hash = ?",
                (token_hash,),
            )
            .fetchone()
        )
        return Token(User(row["id"], row["name"]), row["role"], row["display_name"]) if row else None

    # -- repos ----------------------------------------------------------------------------------------------

    @staticmethod
    def _repo(row) -> Repo:
        return Repo(
            id=row["id"],
            type=row["type"],
            namespace=row["namespace"],
            name=row["name"],
            private=bool(row["private"]),
            created_at=row["created_at"],
            last_modified=row["last_modified"],
            downloads=row["downloads"],
            likes=row["likes"],
            meta=json.loads(row["meta"]),
        )

    def create_repo(self, type, namespace, name, private, initial: Commit, files, meta) -> Repo:
        with self._write() as db:
            try:
                cursor = db.execute(
                    "INSERT INTO repos (type, namespace, name, private, created_at, last_modified) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (type, namespace, name, int(private), initial.created_at, initial.created_at),
                )
            except sqlite3.IntegrityError as e:
                raise Conflict(f"{namespace}/{name} exists") from e
            repo_id = cursor.lastrowid
            if self.trigrams:
                db.execute(
                    "INSERT INTO repo_names (rowid, repo_id) VALUES (?, ?)", (repo_id, f"{namespace}/{name}")
                )
            self._insert_commit(db, repo_id, initial, files)
            self._set_meta(db, repo_id, initial.created_at, meta)
            db.execute(
                "INSERT INTO refs (repo_id, kind, name, commit_sha) VALUES (?, 'branch', 'main', ?)",
                (repo_id, initial.sha),
            )
        return self.get_repo(type, namespace, name)

    def get_repo(self, type, namespace, name) -> Repo | None:
        row = (
            self._connect()
            .execute(
                "SELECT * FROM repos WHERE type = ? AND namespace = ? AND name = ?", (type, namespace, name)
            )
            .fetchone()
        )
        return self._repo(row) if row else None

    def delete_repo(self, repo: Repo) -> None:
        with self._write() as db:
            for table in ("files", "commits", "refs", "likes", "lfs_uploads"):
                db.execute(f"DELETE FROM {table} WHERE repo_id = ?", (repo.id,))
            db.execute("DELETE FROM repos WHERE id = ?", (repo.id,))
            if self.trigrams:
                db.execute("DELETE FROM repo_names WHERE rowid = ?", (repo.id,))

    def set_private(self, repo: Repo, private: bool) -> None:
        with self._write() as db:
            db.execute("UPDATE repos SET private = ? WHERE id = ?", (int(private), repo.id))

    def list_repos(self, query: RepoQuery) -> list[Repo]:
        where, args = ["type = ?", "(private = 0 OR namespace = ?)"], [query.type, query.viewer or ""]
        if query.search and self.trigrams and len(query.search) >= 3:
            # The trigram index finds candidates (case-insensitively); instr() keeps the exact substring rule.
            where.append("id IN (SELECT rowid FROM repo_names WHERE repo_names MATCH ?)")
            args.append('"' + query.search.replace('"', '""') + '"')
        if query.search:
            where.append("instr(lower(namespace || '/' || name), ?) > 0")
            args.append(query.search.lower())
        if query.author:
            where.append("namespace = ?")
            args.append(query.author)
        if query.pipeline_tag:
            where.append("pipeline_tag = ?")
            args.append(query.pipeline_tag)
        for tag in query.tags:
            where.append("instr(tags, ?) > 0")
            args.append(f"\t{tag}\t")
        order = "DESC" if query.descending else "ASC"
        sql = (
            f"SELECT * FROM repos WHERE {' AND '.join(where)} "
            f"ORDER BY {SORT_COLUMNS[query.sort]} {order}, id {order} LIMIT ? OFFSET ?"
        )
        rows = self._connect().execute(sql, [*args, query.limit, query.offset]).fetchall()
        return [self._repo(row) for row in rows]

    def pipeline_tags(self, type: str, viewer: str | None) -> list[str]:
        rows = (
            self._connect()
            .execute(
                "SELECT DISTINCT pipeline_tag FROM repos WHERE type = ? AND (private = 0 OR namespace = ?) "
                "AND pipeline_tag IS NOT NULL ORDER BY pipeline_tag",
                (type, viewer or ""),
            )
            .fetchall()
        )
        return [row[0] for row in rows]

    # -- history --------------------------------------------------------------------------------------------

    def refs(self, repo: Repo) -> list[Ref]:
        rows = (
            self._connect()
            .execute(
                "SELECT kind, name, commit_sha FROM refs WHERE repo_id = ? ORDER BY kind, name", (repo.id,)
            )
            .fetchall()
        )
        return [Ref(row["kind"], row["name"], row["commit_sha"]) for row in rows]

    def set_ref(self, repo: Repo, kind: str, name: str, commit: str) -> None:
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO refs (repo_id, kind, name, commit_sha) VALUES (?, ?, ?, ?)",
                    (repo.id, kind, name, commit),
                )
            except sqlite3.IntegrityError as e:
                raise Conflict(f"{kind} {name} exists") from e

    def delete_ref(self, repo: Repo, kind: str, name: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM refs WHERE repo_id = ? AND kind = ? AND name = ?", (repo.id, kind, name)
            )
        return cursor.rowcount > 0

    def get_commit(self, repo: Repo, sha: str) -> Commit | None:
        row = (
            self._connect()
            .execute("SELECT * FROM commits WHERE repo_id = ? AND sha = ?", (repo.id, sha))
            .fetchone()
        )
        if row is None:
            return None
        return Commit(
            row["sha"], row["parent"], row["title"], row["message"], row["author"], row["created_at"]
        )

    def files(self, repo: Repo, commit: str) -> dict[str, FileEntry]:
        rows = (
            self._connect()
            .execute(
                "SELECT path, size, sha256, git_oid, lfs FROM files WHERE repo_id = ? AND commit_sha = ? "
                "ORDER BY path",
                (repo.id, commit),
            )
            .fetchall()
        )
        return {
            row["path"]: FileEntry(row["path"], row["size"], row["sha256"], row["git_oid"], bool(row["lfs"]))
            for row in rows
        }

    @staticmethod
    def _insert_commit(db, repo_id: int, commit: Commit, files: list[FileEntry]) -> None:
        db.execute(
            "INSERT INTO commits (repo_id, sha, parent, title, message, author, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                repo_id,
                commit.sha,
                commit.parent,
                commit.title,
                commit.message,
                commit.author,
                commit.created_at,
            ),
        )
        db.executemany(
            "INSERT INTO files (repo_id, commit_sha, path, size, sha256, git_oid, lfs) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(repo_id, commit.sha, f.path, f.size, f.sha256, f.git_oid, int(f.lfs)) for f in files],
        )

    def commit(self, repo, branch, parent, commit: Commit, files, meta) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT commit_sha FROM refs WHERE repo_id = ? AND kind = 'branch' AND name = ?",
                (repo.id, branch),
            ).fetchone()
            if row is None or row["commit_sha"] != parent:
                raise Conflict(f"branch {branch} moved")
            self._insert_commit(db, repo.id, commit, files)
            db.execute(
                "UPDATE refs SET commit_sha = ? WHERE repo_id = ? AND kind = 'branch' AND name = ?",
                (commit.sha, repo.id, branch),
            )
            if meta is not None:
                self._set_meta(db, repo.id, commit.created_at, meta)

    @staticmethod
    def _set_meta(db, repo_id: int, modified: float, meta: dict) -> None:
        db.execute(
            "UPDATE repos SET last_modified = ?, pipeline_tag = ?, tags = ?, meta = ? WHERE id = ?",
            (
                modified,
                meta.get("pipeline_tag"),
                _tags_column(meta.get("tags", [])),
                json.dumps(meta),
                repo_id,
            ),
        )

    # -- counters -------------------------------------------------------------------------------------------

    def count_download(self, repo: Repo) -> None:
        with self._write() as db:
            db.execute("UPDATE repos SET downloads = downloads + 1 WHERE id = ?", (repo.id,))

    def set_like(self, user: User, repo: Repo, liked: bool) -> None:
        with self._write() as db:
            if liked:
                db.execute("INSERT OR IGNORE INTO likes (user_id, repo_id) VALUES (?, ?)", (user.id, repo.id))
            else:
                db.execute("DELETE FROM likes WHERE user_id = ? AND repo_id = ?", (user.id, repo.id))
            db.execute(
                "UPDATE repos SET likes = (SELECT count(*) FROM likes WHERE repo_id = ?) WHERE id = ?",
                (repo.id, repo.id),
            )

    # -- pending LFS uploads --------------------------------------------------------------------------------

    def add_upload(self, ticket, repo, oid, size, expires_at) -> None:
        with self._write() as db:
            db.execute("DELETE FROM lfs_uploads WHERE expires_at < ?", (time.time(),))
            db.execute(
                "INSERT INTO lfs_uploads (ticket, repo_id, oid, size, expires_at) VALUES (?, ?, ?, ?, ?)",
                (ticket, repo.id, oid, size, expires_at),
            )

    def get_upload(self, ticket):
        row = self._connect().execute("SELECT * FROM lfs_uploads WHERE ticket = ?", (ticket,)).fetchone()
        return (row["repo_id"], row["oid"], row["size"], row["expires_at"]) if row else None

    def drop_upload(self, ticket) -> None:
        with self._write() as db:
            db.execute("DELETE FROM lfs_uploads WHERE ticket = ?", (ticket,))


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")
