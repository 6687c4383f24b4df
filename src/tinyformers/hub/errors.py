"""What can go wrong between a name and its files; every message is one line naming the fix."""

from __future__ import annotations


class ModelNotFoundError(OSError):
    """The name given to ``from_pretrained`` points at nothing we can read."""


class HubError(OSError):
    """A request to the hub failed; the message is one line saying what and how to fix it."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
        self.retryable = False  # the request may succeed if sent again later (408, 429, 5xx)
        self.retry_after: float | None = None  # the server's Retry-After, in seconds


class RepositoryNotFoundError(HubError, ModelNotFoundError):
    pass


class RevisionNotFoundError(HubError, ModelNotFoundError):
    pass


class EntryNotFoundError(HubError, FileNotFoundError):
    pass


class HubAuthError(HubError, PermissionError):
    pass


class HubConnectionError(HubError, ConnectionError):
    pass
