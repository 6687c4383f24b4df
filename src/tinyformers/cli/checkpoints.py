"""What the pipeline commands check about a model before loading it: that the checkpoint holds the trained head
its task needs. The Python API loads such a model with a warning, as transformers does; on the command line a
random head would print confident answers that change on every run, so the command refuses instead."""

from __future__ import annotations

from pathlib import Path

from .common import CommandError

# The weights named in the refusal; the rest are counted.
NAMES_SHOWN = 4


def refuse_untrained(task: str, model: str | None) -> None:
    """Raise a one-line ``CommandError`` when ``model`` (a folder or hub id) lacks weights that ``task`` needs.

    Without a model the task's default is used, which is complete; a GGUF file is a whole causal LM."""
    if model is None or (Path(model).expanduser().is_file() and Path(model).suffix == ".gguf"):
        return
    from ..auto import AutoConfig
    from ..formats.checkpoint import load_state_dict
    from ..hub import resolve_dir
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
