"""What the model commands check about a model before loading it: that it is there at all (answered before torch
is imported), and that the checkpoint holds the trained head its task needs. The Python API loads a model without
its head with a warning, as transformers does; on the command line a random head would print confident answers
that change on every run, so the command refuses instead."""

from __future__ import annotations

from pathlib import Path

from ..hub import is_hub_id, resolve_dir
from .common import CommandError

# The weights named in the refusal; the rest are counted.
NAMES_SHOWN = 4


def check_found(model: str | None) -> None:
    """Raise the loader's one-line error at once when ``model`` is neither an existing path nor a hub id (a
    mistyped folder), instead of after the seconds that importing torch takes. Hub ids are left to the loader,
    which fetches them once."""
    if model is not None and not is_hub_id(model) and not Path(model).expanduser().exists():
        resolve_dir(model)  # a bare name may still be in the hub cache; else this raises


def refuse_untrained(task: str, model: str | None) -> None:
    """Raise a one-line ``CommandError`` when ``model`` (a folder or hub id) lacks weights that ``task`` needs.

    Without a model the task's default is used, which is complete; a GGUF file is a whole causal LM."""
    check_found(model)
    if model is None or (Path(model).expanduser().is_file() and Path(model).suffix == ".gguf"):
        return
    from ..auto import AutoConfig
    from ..formats.checkpoint import load_state_dict
    from ..pipelines import canonical_task, check_fits, untrained_weights

    name = canonical_task(task)
    config = AutoConfig.from_pretrained(model)
    check_fits(name, config.model_type, f"'{model}'")
    missing = untrained_weights(name, config, load_state_dict(resolve_dir(model)))
    if not missing:
        return
    shown = ", ".join(missing[:NAMES_SHOWN]) + (
        f" and {len(missing) - NAMES_SHOWN} more" if missing[NAMES_SHOWN:] else ""
    )
    raise CommandError(
        f"'{model}' has no trained {name} head: its checkpoint lacks {shown}, which would be random (answers "
        f"that mean nothing and change on every run); pass a model fine-tuned for {name}, or fine-tune this one "
        "first (tinyformers train MODEL --data FILE --output-dir DIR trains text classifiers)"
    )
