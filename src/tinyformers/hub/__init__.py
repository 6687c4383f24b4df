"""Finding model files: local folders and the Hugging Face cache layout. This package moves bytes only."""

from .resolve import ModelNotFoundError, resolve_dir

__all__ = ["ModelNotFoundError", "resolve_dir"]
