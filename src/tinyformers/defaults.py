"""The default models and their home: what ``pipeline(task)`` and the commands use when no model is named.

Kept apart from the pipelines (and free of torch) so that `tinyformers setup`, and a command whose default model
is missing, answer without loading torch first."""

from __future__ import annotations

import os
from pathlib import Path

# Default models: real checkpoints in the models home (``models_home()``), where `tinyformers setup` fetches
# them. Tasks that need a trained head have none: a random head would give confident nonsense.
DEFAULT_MODELS = {
    "feature-extraction": "minilm",
    "sentence-embedding": "minilm",
    "text-generation": os.path.join("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_home() -> Path:
    """``tinyformers`` in the user's cache folder (``$XDG_CACHE_HOME``, default ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "tinyformers"


def models_home() -> Path:
    """Where the default models live, whatever the current directory: ``$TINYFORMERS_HOME``, else
    ``cache_home()``."""
    if os.environ.get("TINYFORMERS_HOME"):
        return Path(os.environ["TINYFORMERS_HOME"]).expanduser()
    return cache_home()


def default_model(task: str) -> str:
    if task not in DEFAULT_MODELS:
        raise ValueError(
            f"task '{task}' has no default model (it needs a trained head); pass a model fine-tuned for it "
            "(model=... or --model)"
        )
    path = models_home() / DEFAULT_MODELS[task]
    if not path.exists():
        raise FileNotFoundError(
            f"the default model for '{task}' is not set up ({path} is missing): run `tinyformers setup` to "
            "fetch it (into $TINYFORMERS_HOME), or pass a model (model=... or --model)"
        )
    return str(path)
