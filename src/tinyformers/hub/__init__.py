"""Finding model files: local folders and the Hugging Face cache layout. This package moves bytes only."""

from .resolve import ModelNotFoundError, resolve_dir, resolve_gguf

__all__ = ["ModelNotFoundError", "resolve_dir", "resolve_gguf"]
