"""Find and read the weight files of a model folder, and write them back in the same layouts.

Layouts (the ones ``transformers`` reads and writes): ``model.safetensors``; sharded safetensors with
``model.safetensors.index.json``; ``pytorch_model.bin`` and its sharded index. Safetensors wins when both exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..utils import atomic_write_json, atomic_writer, read_json
from .safetensors import CorruptWeightsError, load_file, save_file

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
BIN_WEIGHTS = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"


def find_weights(directory: Path) -> list[Path]:
    """The weight files of ``directory`` in load order, or a clear error naming what was looked for."""
    for single, index in ((SAFE_WEIGHTS, SAFE_INDEX), (BIN_WEIGHTS, BIN_INDEX)):
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            weight_map = read_json(directory / index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise CorruptWeightsError(
                    f"{directory / index} has no 'weight_map'; re-download or re-save it"
                )
            shards = [directory / name for name in dict.fromkeys(weight_map.values())]
            missing = [s.name for s in shards if not s.is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{directory / index} lists shards that are missing: {', '.join(missing)}; download them too"
                )
            return shards
    raise FileNotFoundError(
        f"no weights in '{directory}': expected {SAFE_WEIGHTS}, {SAFE_INDEX}, {BIN_WEIGHTS} or {BIN_INDEX} "
        "(use from_config(config) to build an untrained model instead)"
    )


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(path)
    try:
        # weights_only: a .bin is a pickle, and a pickle can run code; this refuses anything but tensors.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises several types for a bad pickle/zip
        raise CorruptWeightsError(
            f"{path} could not be read as a PyTorch checkpoint ({e}); re-download it"
        ) from None
    if not isinstance(state, dict):
        raise CorruptWeightsError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def load_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in find_weights(directory):
        state.update(load_weights(path))
    return state


def parse_size(size: int | str) -> int:
    """'5GB' / '200MB' / '10KiB' / 1000 -> bytes."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B\s*", size.upper().replace("IB", "iB"))
    if not m:
        raise ValueError(f"max_shard_size '{size}' is not a size; use an int of bytes or e.g. '5GB', '500MB'")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** " KMGT".index(m.group(2) or " "))


def save_state_dict(
    state: dict[str, torch.Tensor],
    directory: Path,
    safe_serialization: bool = True,
    max_shard_size: int | str = "5GB",
) -> None:
    """Write ``state`` as one file, or as shards plus an index when it exceeds ``max_shard_size``."""
    limit = parse_size(max_shard_size)
    shards: list[dict[str, torch.Tensor]] = [{}]
    current = 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and current + nbytes > limit:
            shards.append({})
            current = 0
        shards[-1][name] = t
        current += nbytes
    single, index_name = (SAFE_WEIGHTS, SAFE_INDEX) if safe_serialization else (BIN_WEIGHTS, BIN_INDEX)
    stem, ext = single.rsplit(".", 1)
    names = (
        [single]
        if len(shards) == 1
        else [f"{stem}-{i + 1:05d}-of-{len(shards):05d}.{ext}" for i in range(len(shards))]
    )
    # Stale files from an earlier save with another layout would shadow the new one on load.
    for old in [
        directory / SAFE_WEIGHTS,
        directory / SAFE_INDEX,
        directory / BIN_WEIGHTS,
        directory / BIN_INDEX,
    ]:
        if old.name not in names:
            old.unlink(missing_ok=True)
    for pattern in (f"{stem}-*-of-*.{ext}",):
        for old in directory.glob(pattern):
            if old.name not in names:
                old.unlink()
    for shard, name in zip(shards, names):
        if safe_serialization:
            save_file(shard, directory / name)
        else:
            with atomic_writer(directory / name) as f:
                torch.save({k: v.detach().contiguous() for k, v in shard.items()}, f)
    if len(shards) > 1:
        total = sum(t.numel() * t.element_size() for t in state.values())
        weight_map = {k: name for shard, name in zip(shards, names) for k in shard}
        atomic_write_json(
            directory / index_name, {"metadata": {"total_size": total}, "weight_map": weight_map}
        )
