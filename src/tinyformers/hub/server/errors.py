"""Errors the hub answers with: an HTTP status, an ``X-Error-Code`` the client maps to an exception, a message.

huggingface_hub turns ``X-Error-Code`` into its exceptions (``RepoNotFound`` -> RepositoryNotFoundError,
``RevisionNotFound``, ``EntryNotFound``) and shows ``X-Error-Message`` / the JSON ``error`` to the user, so
every error, including FastAPI's own (bad JSON, unknown route), goes out with both headers.
"""

from __future__ import annotations


class HubError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict | None = None, body: dict | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.body = body or {}


def repo_not_found(repo_id: str) -> HubError:
    # Private repos the caller may not read get the same answer: their existence is not revealed.
    return HubError(
        404,
        "RepoNotFound",
        f"Repository {repo_id} not found: check the id, or pass a token that may read it.",
    )


def revision_not_found(repo_id: str, revision: str) -> HubError:
    return HubError(
        404,
        "RevisionNotFound",
        f"Revision '{revision}' not found in {repo_id}: use a branch, a tag or a full commit sha.",
    )


def entry_not_found(repo_id: str, path: str, commit: str) -> HubError:
    # X-Repo-Commit lets the client remember the absence (.no_exist/<commit>/<path>) and not ask again.
    return HubError(
        404,
        "EntryNotFound",
        f"{path} not found in {repo_id} at {commit[:12]}.",
        headers={"X-Repo-Commit": commit},
    )


def bad_request(message: str, code: str = "BadRequest") -> HubError:
    return HubError(400, code, message)


def unauthorized(message: str) -> HubError:
    return HubError(401, "Unauthorized", message)


def forbidden(message: str) -> HubError:
    return HubError(403, "Forbidden", message)


def conflict(message: str, code: str = "Conflict", body: dict | None = None) -> HubError:
    return HubError(409, code, message, body=body)


def too_large(message: str) -> HubError:
    return HubError(413, "PayloadTooLarge", message)
