"""Checkpoints in transformers' layout, written so that a crash never leaves a broken one behind.

``<output_dir>/checkpoint-<step>/`` holds ``model.safetensors`` + ``config.json`` (``save_pretrained``, so any
checkpoint loads with ``from_pretrained`` here or in transformers), ``optimizer.pt``, ``scheduler.pt``,
``rng_state.pth`` (``rng_state_<rank>.pth`` per process in data-parallel runs), ``trainer_state.json`` and the
arguments of the run (``training_args.json``, and ``training_args.bin``: see ``write_training_args``).
Everything is written into ``tmp-checkpoint-<step>`` first and renamed when complete: a run killed while saving
leaves a temporary folder that is ignored, and the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from ..utils import atomic_write_json, atomic_writer
from .state import STATE_FILE, TrainerState

PREFIX = "checkpoint"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
ARGS_JSON = "training_args.json"
ARGS_BIN = "training_args.bin"
_NUMBERED = re.compile(rf"^{PREFIX}-(\d+)$")


def rng_file(rank: int, world_size: int) -> str:
    return "rng_state.pth" if world_size == 1 else f"rng_state_{rank}.pth"


def rng_states() -> dict:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cpu": torch.random.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.random.get_rng_state_all()
    return states


def restore_rng(folder: Path, rank: int, world_size: int) -> None:
    path = folder / rng_file(rank, world_size)
    if not path.exists():
        return  # transformers also carries on without one (the run then differs in dropout only)
    states = torch.load(path, weights_only=False)
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.random.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.random.set_rng_state_all(states["cuda"])


def sorted_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints (they have a trainer_state.json), oldest step first; temporary folders are skipped."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        m = _NUMBERED.match(child.name)
        if m and child.is_dir() and (child / STATE_FILE).exists():
            found.append((int(m.group(1)), child))
    return [path for _, path in sorted(found)]


def last_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = sorted_checkpoints(output_dir)
    return found[-1] if found else None


def check_checkpoint(folder: str | os.PathLike) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(
            f"resume_from_checkpoint: '{path}' is not a folder; pass a checkpoint-N folder or True"
        )
    missing = [
        name
        for name in (STATE_FILE, "config.json", OPTIMIZER_FILE, SCHEDULER_FILE)
        if not (path / name).exists()
    ]
    if missing:
        raise ValueError(
            f"resume_from_checkpoint: '{path}' is not a training checkpoint (no {', '.join(missing)}); pass a "
            "checkpoint-N folder that Trainer wrote, or True for the latest one in output_dir"
        )
    return path


def _replace_dir(temporary: Path, final: Path) -> None:
    """Move a finished folder into place; an older folder of that name is moved aside first, then removed."""
    old = final.with_name(f"old-{final.name}")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(temporary, final)
    shutil.rmtree(old, ignore_errors=True)


def temporary_dir(output_dir: str | os.PathLike, step: int) -> Path:
    return Path(output_dir) / f"tmp-{PREFIX}-{step}"


def start_checkpoint(output_dir: str | os.PathLike, step: int) -> Path:
    temporary = temporary_dir(output_dir, step)
    shutil.rmtree(temporary, ignore_errors=True)  # left by a run killed while saving
    temporary.mkdir(parents=True)
    return temporary


def write_training_state(folder: Path, optimizer, scheduler, state: TrainerState) -> None:
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    torch.save(scheduler.state_dict(), folder / SCHEDULER_FILE)
    state.save_to_json(folder / STATE_FILE)


def write_training_args(folder: Path, args) -> None:
    """The run's arguments as JSON, and as ``training_args.bin`` where transformers has it. transformers pickles
    its own ``TrainingArguments`` object there, which only unpickles with transformers installed and
    ``weights_only=False``; ours is the same values as a plain dict, which ``torch.load(path, weights_only=True)``
    reads anywhere and ``TrainingArguments(**values)`` turns back into arguments."""
    values = args.to_dict()
    atomic_write_json(folder / ARGS_JSON, values)
    with atomic_writer(folder / ARGS_BIN) as f:
        torch.save(values, f)


def write_rng(folder: Path, rank: int, world_size: int) -> None:
    torch.save(rng_states(), folder / rng_file(rank, world_size))


def finish_checkpoint(output_dir: str | os.PathLike, step: int) -> Path:
    final = Path(output_dir) / f"{PREFIX}-{step}"
    _replace_dir(temporary_dir(output_dir, step), final)
    return final


def rotate(output_dir: str | os.PathLike, limit: int | None, keep: str | None) -> None:
    """Delete the oldest checkpoints beyond ``save_total_limit``, never the best one (as transformers)."""
    if not limit or limit < 1:
        return
    found = sorted_checkpoints(output_dir)
    if keep is not None and Path(keep) in found and limit == 1 and found[-1] != Path(keep):
        limit = 2  # keep the best and the latest, or resuming would go back in time
    if keep is not None and Path(keep) in found:  # move the best to the end: it is never among the oldest
        found.remove(Path(keep))
        found.append(Path(keep))
    for old in found[: max(0, len(found) - limit)]:
        shutil.rmtree(old, ignore_errors=True)


def load_optimizer_state(folder: Path, optimizer, scheduler) -> None:
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, weights_only=True))
    scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, weights_only=False))
