"""The hub client: resolve ids to files in the shared Hugging Face cache, download, upload, model cards.

This package moves bytes only: it never imports models or tokenizers (they call into it).
"""

from .errors import (
    EntryNotFoundError,
    HubAuthError,
    HubConnectionError,
    HubError,
    ModelNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from .resolve import is_hub_id, pin_revision, resolve_dir, resolve_gguf

__all__ = [
    "EntryNotFoundError",
    "HubAuthError",
    "HubConnectionError",
    "HubError",
    "ModelNotFoundError",
    "RepositoryNotFoundError",
    "RevisionNotFoundError",
    "is_hub_id",
    "pin_revision",
    "resolve_dir",
    "resolve_gguf",
]
