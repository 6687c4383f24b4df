"""A small safetensors reader/writer.

Reading memory-maps the file (copy-on-write) and builds each tensor with ``torch.frombuffer`` over the map, so a
weight is never copied on load: the pages come from the OS page cache on first touch. Our own header parser
also lets a truncated or foreign file fail with a message that names the file and the fix.

Format: 8-byte little-endian header length N, N bytes of JSON ``{name: {dtype, shape, data_offsets}}`` (plus an
optional ``__metadata__``), then the raw little-endian tensor bytes.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from pathlib import Path

import torch

from ..utils import atomic_writer
from .errors import CorruptWeightsError

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def _fail(path: Path, problem: str) -> CorruptWeightsError:
    return CorruptWeightsError(
        f"{path} is not a readable safetensors file ({problem}); re-download or re-save it"
    )


def read_header(path: str | os.PathLike) -> tuple[dict, int]:
    """Return (tensor entries, byte offset where tensor data starts)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _fail(path, f"only {size} bytes, too short for a header")
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER, size - 8):
            raise _fail(path, f"header claims {n} bytes but the file has {size}")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(path, "header is not JSON") from None
    if not isinstance(header, dict):
        raise _fail(path, "header is not a JSON object")
    header.pop("__metadata__", None)
    data_start = 8 + n
    data_size = size - data_start
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise _fail(path, f"entry '{name}' lacks dtype/shape/data_offsets") from None
        if dtype not in DTYPES:
            raise _fail(path, f"tensor '{name}' has unsupported dtype {dtype}")
        expected = math.prod(shape) * DTYPES[dtype].itemsize
        if end - begin != expected or begin < 0:
            raise _fail(path, f"tensor '{name}' has {end - begin} bytes but shape {shape} needs {expected}")
        if end > data_size:
            raise _fail(path, f"truncated: tensor '{name}' ends at byte {end} of {data_size} data bytes")
    return header, data_start


def load_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Memory-map a safetensors file into a ``{name: tensor}`` dict without copying the data."""
    path = Path(path)
    header, data_start = read_header(path)
    if not header:
        return {}
    with open(path, "rb") as f:
        # ACCESS_COPY: pages are shared with the page cache until written; writes never reach the file.
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    tensors = {}
    for name, entry in header.items():
        dtype = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        count = (end - begin) // dtype.itemsize
        if count == 0:
            tensors[name] = torch.empty(entry["shape"], dtype=dtype)
            continue
        t = torch.frombuffer(mm, dtype=dtype, count=count, offset=data_start + begin)
        tensors[name] = t.reshape(entry["shape"])
    return tensors


def save_file(
    tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict | None = None
) -> None:
    """Write tensors as safetensors (atomically: a reader never sees half a file)."""
    header: dict = {"__metadata__": {"format": "pt", **(metadata or {})}}
    ordered, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in DTYPE_NAMES:
            raise TypeError(f"cannot save tensor '{name}' of dtype {t.dtype} as safetensors")
        nbytes = t.numel() * t.element_size()
        header[name] = {
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        ordered.append(t)
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # data must start 8-byte aligned, as the reference writer does
    with atomic_writer(path) as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for t in ordered:  # stream tensor by tensor: no second copy of the whole model in memory
            if t.numel():
                f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
