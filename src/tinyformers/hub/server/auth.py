"""Bearer tokens with ``read`` / ``write`` roles, stored as sha256 digests only.

A token is 32 random bytes, so a plain (unsalted, fast) digest is enough: there is nothing to brute-force,
and a leaked database does not leak usable tokens. Anonymous callers read public repos; reading a private
repo needs any token of its namespace's owner; every write needs that owner's ``write`` token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from .errors import forbidden, repo_not_found, unauthorized
from .storage import MetadataStore, Repo, User

ROLES = ("read", "write")
# First URL segments the hub itself uses: a user of that name would shadow them.
RESERVED_NAMESPACES = {"api", "models", "datasets", "spaces", "docs", "static", "new", "settings", "login"}
# huggingface_hub and tools built on it expect user tokens to look like the Hub's ("hf_..."), never "api_org".
TOKEN_PREFIX = "hf_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: MetadataStore, user_name: str, role: str, display_name: str = "cli") -> str:
    """A new token for ``user_name`` (created if needed); only its digest is stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not valid_name(user_name):
        raise ValueError(f"invalid user name {user_name!r}: use letters, digits, '-', '_' or '.'")
    if user_name.lower() in RESERVED_NAMESPACES:
        raise ValueError(
            f"'{user_name}' is reserved (it starts the hub's own URLs): choose another user name"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_token(store.ensure_user(user_name), hash_token(token), role, display_name)
    return token


def valid_name(name: str) -> bool:
    """Names of users and repos: what huggingface.co accepts, at most 96 characters."""
    return (
        0 < len(name) <= 96
        and all(c.isascii() and (c.isalnum() or c in "-_.") for c in name)
        and not name.startswith(("-", "."))
        and not name.endswith(".git")
        and ".." not in name
        and "--" not in name
    )


@dataclass(frozen=True)
class Viewer:
    """Who is calling: ``user`` is None for anonymous callers."""

    user: User | None = None
    role: str | None = None
    display_name: str | None = None

    @property
    def name(self) -> str | None:
        return self.user.name if self.user else None


def authenticate(store: MetadataStore, authorization: str | None) -> Viewer:
    if not authorization:
        return Viewer()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(
            "Invalid credentials in Authorization header: send 'Authorization: Bearer <token>'."
        )
    found = store.find_token(hash_token(token.strip()))
    if found is None:
        # The exact message huggingface_hub recognises as a bad token rather than a missing repo.
        raise unauthorized("Invalid credentials in Authorization header")
    return Viewer(found.user, found.role, found.display_name)


def can_read(viewer: Viewer, repo: Repo) -> bool:
    return not repo.private or viewer.name == repo.namespace


def check_read(viewer: Viewer, repo: Repo | None, repo_id: str) -> Repo:
    if repo is None or not can_read(viewer, repo):
        raise repo_not_found(repo_id)
    return repo


def check_write(viewer: Viewer, namespace: str) -> User:
    if viewer.user is None:
        raise unauthorized(f"Writing to '{namespace}' needs a write token: pass token=... or set HF_TOKEN.")
    if viewer.name != namespace:
        raise forbidden(f"Your token belongs to '{viewer.name}', which may not write to '{namespace}'.")
    if viewer.role != "write":
        raise forbidden(f"This is a read token; writing to '{namespace}' needs a write token.")
    return viewer.user
