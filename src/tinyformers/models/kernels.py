"""Rows times quantised matrices in C (``kernels.c``): the ``tinyformers::quantized_matmul`` op; and a batched
decoding step's few float32 rows times float32 matrices (``float_linear``).

A decoding step multiplies one row (or a batch's few) by every matrix. For GGUF's Q4_0, Q4_1, Q8_0, Q4_K and Q6_K
blocks and for ``Int8Linear``'s int8 rows that product runs in a small C kernel that unpacks the values in
registers and multiplies them with float32 activations, in eager steps and compiled ones alike (a compiled graph
calls the op as it is), and so does a short prompt's (up to ``MAX_ROWS`` rows).

The kernel is built on first use with the C compiler ``torch.compile`` needs anyway (``$CC``, else ``cc``), with
``-march=native`` for this CPU and ``-fopenmp`` (it joins torch's own OpenMP runtime, already loaded), into
``$XDG_CACHE_HOME/tinyformers/kernels`` (default ``~/.cache``) under a name that hashes the source, the compiler
and the CPU's flags, so a build is reused only where it runs. Without a compiler, or with
``TINYFORMERS_KERNELS=0``, ``covers()`` is False and the matrices are multiplied as before (GGUF blocks by the
compiled ``gguf_layouts`` loop or dequantised, int8 rows by torch's int8 kernel); a build that fails says why
once, as a warning.

Float32 matrices: a batched step's rows (up to ``FLOAT_MAX_ROWS``) multiply faster in ``tf_f32`` than in oneDNN's
inner product, chiefly because it prefetches the matrix (benchmarks/README.md); ``inner_product.linear`` calls it
wherever it would have called oneDNN for so few rows. Results equal oneDNN's up to the order of the sums.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

from ..defaults import cache_home

SOURCE = Path(__file__).with_name("kernels.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
# kind -> (its C function, how many fields it takes): GGUF layouts' fields in their order; int8 rows (scales, int8)
KERNELS = {
    "q4_0": ("tf_q4_0", 2), "q4_1": ("tf_q4_1", 3), "q8_0": ("tf_q8_0", 2), "q4_k": ("tf_q4_k", 5),
    "q6_k": ("tf_q6_k", 4), "int8": ("tf_int8", 2),
}  # fmt: skip
# ggml type id -> kind
GGML_KINDS = {2: "q4_0", 3: "q4_1", 8: "q8_0", 12: "q4_k", 14: "q6_k"}
# Up to this many rows of x the kernel is faster; for more (a longer prompt) dequantising the matrix and
# multiplying is, or for int8 rows torch's int8 kernel (benchmarks/README.md).
MAX_ROWS = {"q4_0": 32, "q4_1": 32, "q8_0": 32, "q4_k": 32, "q6_k": 32, "int8": 16}
# Up to this many float32 rows ``tf_f32`` is faster than oneDNN's inner product (packed or not); at 32 they tie.
FLOAT_MAX_ROWS = 16


def cpu_info(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo, its value (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith(field):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def kernels_wanted(environ=os.environ) -> bool:
    return environ.get("TINYFORMERS_KERNELS", "").strip().lower() not in ("0", "false", "no", "off")


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "").strip() or "cc")


def build(compiler: str, cache: Path | None = None, flags: tuple[str, ...] = FLAGS) -> Path:
    """The kernels' shared library built by ``compiler`` for this CPU, reused from the cache when there."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), version, *flags, cpu_info("flags") or ""]).encode())
    cache = cache or cache_home() / "kernels"
    target = cache / f"kernels-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        built = Path(scratch) / target.name
        result = subprocess.run(
            [compiler, *flags, "-o", str(built), str(SOURCE)], capture_output=True, text=True
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"{compiler} failed: {last}")
        os.replace(built, target)  # whole or not at all, also when processes build at once
    return target


@functools.cache
def library() -> ctypes.CDLL | None:
    """The built kernels, or None (not wanted, no compiler, or a failed build: warned once)."""
    compiler = _compiler() if kernels_wanted() else None
    if compiler is None:
        return None
    try:
        return load(build(compiler))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        warnings.warn(
            f"quantised matrices and batches' float32 rows are multiplied without their C kernel, more slowly "
            f"({error}); set CC to a working C compiler, or TINYFORMERS_KERNELS=0 to skip the build",
            stacklevel=2,
        )
        return None


def load(path: Path) -> ctypes.CDLL:
    """A built library, its functions declared: (y, x, rows of x, fields..., rows, blocks a row, threads)."""
    lib = ctypes.CDLL(str(path))
    pointer, size = ctypes.c_void_p, ctypes.c_long
    for name, fields in KERNELS.values():
        getattr(lib, name).argtypes = [pointer, pointer, size, *[pointer] * fields, size, size, ctypes.c_int]
        getattr(lib, name).restype = None
    # (y, x, rows of x, W, bias or NULL, rows of W, width, threads)
    lib.tf_f32.argtypes = [pointer, pointer, size, pointer, pointer, size, size, ctypes.c_int]
    lib.tf_f32.restype = None
    return lib


def covers(kind: str | None) -> bool:
    """Whether rows times a matrix of ``kind`` (``KERNELS``) can run in the kernel here (building it if need be)."""
    return kind in KERNELS and library() is not None


def runs(kind: str | None, x: torch.Tensor) -> bool:
    """Whether a matrix multiplied by the kernel ``kind`` (None: by none) multiplies ``x`` [..., in] there: float32
    rows on the CPU, at most ``MAX_ROWS`` of them."""
    return (
        kind is not None
        and x.device.type == "cpu"
        and x.dtype is torch.float32
        and x.numel() // x.shape[-1] <= MAX_ROWS[kind]
    )


# A torch.library.Library op costs about half the dispatch of a torch.library.custom_op (benchmarks/README.md);
# a step calls it once per matrix.
_LIBRARY = torch.library.Library("tinyformers", "FRAGMENT")
_LIBRARY.define("quantized_matmul(Tensor x, Tensor[] fields, str kind, int rows) -> Tensor")


def run(lib: ctypes.CDLL, x: torch.Tensor, fields: list[torch.Tensor], kind: str, rows: int) -> torch.Tensor:
    """``lib``'s kernel for ``kind`` on float32 ``x`` [n, in] and a matrix's ``fields``: [n, rows]."""
    x = x.contiguous()
    y = torch.empty(x.shape[0], rows)
    kernel = getattr(lib, KERNELS[kind][0])
    kernel(y.data_ptr(), x.data_ptr(), x.shape[0], *(f.data_ptr() for f in fields), rows, x.shape[1] // 32,
           torch.get_num_threads())  # fmt: skip
    return y


def _quantized_matmul(x: torch.Tensor, fields: list[torch.Tensor], kind: str, rows: int) -> torch.Tensor:
    return run(library(), x, fields, kind, rows)


def _quantized_matmul_shape(
    x: torch.Tensor, fields: list[torch.Tensor], kind: str, rows: int
) -> torch.Tensor:
    return x.new_empty(x.shape[0], rows)


_LIBRARY.impl("quantized_matmul", _quantized_matmul, "CPU")
_LIBRARY.impl("quantized_matmul", _quantized_matmul_shape, "Meta")


def matmul(x: torch.Tensor, fields: list[torch.Tensor], kind: str, rows: int) -> torch.Tensor:
    """Float32 rows [n, in] times the [rows, in] matrix of ``kind`` held as ``fields``, transposed: [n, rows].

    A graph being compiled gets the op; eager code calls the kernel directly, as the op's dispatch (~6 us) is
    about what a small matrix's product takes (T5's 512 x 512)."""
    if torch.compiler.is_compiling():
        return torch.ops.tinyformers.quantized_matmul(x, fields, kind, rows)
    return run(library(), x, fields, kind, rows)


def float_runs(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``tf_f32`` multiplies float32 ``x`` [..., in] by ``weight`` [out, in] here: at most
    ``FLOAT_MAX_ROWS`` rows, a contiguous weight, ``in`` a multiple of 8, the kernels built."""
    return (
        x.numel() <= FLOAT_MAX_ROWS * x.shape[-1]
        and weight.is_contiguous()
        and weight.shape[1] % 8 == 0
        and library() is not None
    )


def float_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, lib: ctypes.CDLL | None = None
) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for float32 CPU tensors that ``float_runs`` accepts (in ``lib``, default
    the built kernels)."""
    lib = lib or library()
    rows = x.reshape(-1, x.shape[-1]).contiguous()
    y = torch.empty(rows.shape[0], weight.shape[0])
    bias = None if bias is None else bias.contiguous()  # kept alive across the call
    bias_pointer = None if bias is None else bias.data_ptr()
    out_features, in_features = weight.shape
    threads = torch.get_num_threads()
    lib.tf_f32(
        y.data_ptr(),
        rows.data_ptr(),
        rows.shape[0],
        weight.data_ptr(),
        bias_pointer,
        out_features,
        in_features,
        threads,
    )
    return y.view(*x.shape[:-1], weight.shape[0])
