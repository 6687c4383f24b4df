"""The C kernels for rows times quantised matrices (``models/kernels.py``, ``models/kernels.c``).

GGUF blocks are quantised by the ``gguf`` package (Q4_K and Q6_K, which it cannot quantise, are random blocks with
finite scales) and its dequantisation is the oracle; int8 rows are checked
against their own values times their scales in float32. The kernel's product must equal the dequantised matrix's
to float32 rounding, for every row count, odd rows (the kernel takes 4-bit rows in pairs), widths whose block
count is not a multiple of 8 (scales convert 8 at a time), and in both of its builds: the AVX2 one for this CPU
and the plain C one that CPUs without AVX2 get. Model-level parity (logits, greedy ids, the compiled step) is in
tests/test_gguf_blocks.py and the *_speed_options tests, which run through the kernels.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import oracle
from fixtures import gguf_blocks
from tinyformers.formats.gguf import GGUFBlocks
from tinyformers.models import inner_product, kernels
from tinyformers.models.gguf_quantized import GGUFLinear
from tinyformers.models.quantized import Int8Linear

gguf = oracle("gguf")
Q = gguf.GGMLQuantizationType
TYPES = [Q.Q4_0, Q.Q4_1, Q.Q8_0, Q.Q4_K, Q.Q6_K]
PORTABLE_FLAGS = ("-O2", "-fopenmp", "-shared", "-fPIC")  # no -march: the plain C loops


def blocks_of(qtype, rows: int, cols: int, seed: int = 0) -> tuple[GGUFLinear, torch.Tensor]:
    """A ``GGUFLinear`` on ``gguf``-quantised random values, and ``gguf``'s own dequantisation of them."""
    rng = np.random.default_rng(seed)
    raw = gguf_blocks((rng.standard_normal((rows, cols)) * 0.3).astype(np.float32), qtype, rng)
    linear = GGUFLinear(GGUFBlocks(int(qtype), (rows, cols), torch.from_numpy(raw.copy())))
    return linear, torch.from_numpy(gguf.quants.dequantize(raw, qtype).reshape(rows, cols))


def assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()


@pytest.fixture(scope="module")
def portable_library(tmp_path_factory):
    compiler = kernels._compiler()
    if compiler is None:
        pytest.skip("no C compiler here")
    return kernels.load(kernels.build(compiler, tmp_path_factory.mktemp("kernels"), PORTABLE_FLAGS))


SHAPES = [(37, 96), (64, 576), (5, 1536)]  # 3, 18 and 48 blocks a row; odd and even rows
K_SHAPES = [(37, 256), (64, 768), (5, 1536)]  # the K-quants' rows are whole super-blocks of 256


@pytest.mark.parametrize("qtype", TYPES, ids=lambda q: q.name)
@pytest.mark.parametrize("build", ["native", "portable"])
def test_rows_times_blocks_equal_the_dequantised_product(qtype, build, request):
    lib = kernels.library() if build == "native" else request.getfixturevalue("portable_library")
    assert lib is not None, "the kernel did not build here"
    for rows, cols in K_SHAPES if qtype in (Q.Q4_K, Q.Q6_K) else SHAPES:
        linear, weight = blocks_of(qtype, rows, cols, seed=rows)
        for n in (1, 2, 3, 5, 32):
            x = torch.randn(n, cols)
            got = kernels.run(lib, x, linear.fields(), kernels.GGML_KINDS[int(qtype)], rows)
            assert_close(got, x @ weight.T)


@pytest.mark.parametrize("build", ["native", "portable"])
def test_rows_times_int8_rows_equal_their_float32_product(build, request):
    lib = kernels.library() if build == "native" else request.getfixturevalue("portable_library")
    for rows, cols in SHAPES:
        int8 = Int8Linear(torch.nn.Linear(cols, rows, bias=False))
        weight = int8.qweight.float() * int8.scales.float()[:, None]
        for n in (1, 2, 3, 5, 16):
            x = torch.randn(n, cols)
            assert_close(kernels.run(lib, x, [int8.scales, int8.qweight], "int8", rows), x @ weight.T)


def kernel_calls(monkeypatch) -> list[str]:
    """The kinds ``kernels.run`` is called with from now on (it still runs: a spy, not a stand-in)."""
    calls, real = [], kernels.run

    def spy(lib, x, fields, kind, rows):
        calls.append(kind)
        return real(lib, x, fields, kind, rows)

    monkeypatch.setattr(kernels, "run", spy)
    return calls


@torch.inference_mode()
def test_an_int8_layer_multiplies_a_few_float32_rows_in_the_kernel(monkeypatch):
    int8 = Int8Linear(torch.nn.Linear(64, 40))
    assert int8.kernel == "int8"
    weight = int8.qweight.float() * int8.scales.float()[:, None]
    calls = kernel_calls(monkeypatch)
    x = torch.randn(2, 3, 64)
    assert_close(int8(x), x @ weight.T + int8.bias)  # float32 activations: float32 rounding only
    int8(torch.randn(kernels.MAX_ROWS["int8"] + 1, 64))  # more rows: torch's int8 kernel
    assert calls == ["int8"]
    odd = Int8Linear(torch.nn.Linear(40, 8))  # rows of 40: not whole blocks of 32
    assert odd.kernel is None and odd(torch.randn(1, 40)).shape == (1, 8)


@torch.inference_mode()
def test_a_linear_layer_multiplies_a_few_rows_in_the_kernel_and_more_rows_dequantised(monkeypatch):
    linear, weight = blocks_of(Q.Q4_1, 40, 64)
    assert linear.kernel == "q4_1"
    bias = torch.randn(40)
    linear.bias = torch.nn.Parameter(bias, requires_grad=False)
    for shape in [(64,), (1, 1, 64), (2, 3, 64), (1, kernels.MAX_ROWS["q4_1"] + 1, 64)]:
        x = torch.randn(shape)
        assert_close(linear(x), x @ weight.T + bias)
    calls = kernel_calls(monkeypatch)
    linear(torch.randn(3, 64))
    linear(torch.randn(kernels.MAX_ROWS["q4_1"] + 1, 64))
    assert calls == ["q4_1"]  # once: the longer input was dequantised and multiplied


def test_a_compiled_graph_calls_the_kernel(monkeypatch):
    linear, weight = blocks_of(Q.Q8_0, 48, 96)
    # fullgraph: the op must not break the graph
    step = torch.compile(lambda x: linear(x) * 2, fullgraph=True)
    x = torch.randn(1, 96)
    calls = kernel_calls(monkeypatch)
    with torch.inference_mode():
        assert_close(step(x), 2 * (x @ weight.T))
    assert calls == ["q8_0"]  # through the op, which the graph calls as it is


def test_a_build_is_reused_and_the_cache_keeps_nothing_half_written(tmp_path):
    compiler = kernels._compiler()
    if compiler is None:
        pytest.skip("no C compiler here")
    first = kernels.build(compiler, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert kernels.build(compiler, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert kernels.build(compiler, tmp_path, PORTABLE_FLAGS) != first  # other flags, another library
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in tmp_path.glob("*.so"))


def test_without_a_working_compiler_blocks_are_multiplied_as_before(tmp_path, monkeypatch):
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'cc: error: no such compiler' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(RuntimeError, match="cc failed: .*no such compiler"):
        kernels.build(str(failing), tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("CC", str(failing))
    kernels.library.cache_clear()
    try:
        with pytest.warns(
            UserWarning, match="without their C kernel, more slowly .* set CC to a working C compiler"
        ):
            assert not kernels.covers("q4_1")
        linear, weight = blocks_of(Q.Q4_1, 8, 64)
        assert linear.kernel is None and Int8Linear(torch.nn.Linear(64, 8)).kernel is None
        x = torch.randn(1, 64)
        with torch.inference_mode():
            assert_close(linear(x), x @ weight.T)
        monkeypatch.setenv("TINYFORMERS_KERNELS", "0")
        kernels.library.cache_clear()
        assert not kernels.covers("q8_0")  # switched off: no build, no warning
    finally:
        monkeypatch.undo()
        kernels.library.cache_clear()
    assert os.environ.get("TINYFORMERS_KERNELS") is None and kernels.covers("q4_1")


FLOAT_SHAPES = [(37, 96), (64, 576), (5, 1536), (1, 8)]  # rows of W not a multiple of 3 (taken 3 at a time)


@pytest.mark.parametrize("build", ["native", "portable"])
def test_float32_rows_times_a_float32_matrix_equal_f_linear(build, request):
    lib = kernels.library() if build == "native" else request.getfixturevalue("portable_library")
    for rows, cols in FLOAT_SHAPES:
        weight, bias = torch.randn(rows, cols), torch.randn(rows)
        for n in (1, 2, 3, 4, 5, 8, 13, kernels.FLOAT_MAX_ROWS):
            x = torch.randn(n, cols)
            assert_close(kernels.float_linear(x, weight, None, lib), F.linear(x, weight))
            assert_close(kernels.float_linear(x, weight, bias, lib), F.linear(x, weight, bias))
        x = torch.randn(2, 3, cols)  # [sequences, positions, in], as a batched step's products get it
        assert_close(kernels.float_linear(x, weight, bias, lib), F.linear(x, weight, bias))


@pytest.mark.skipif(
    inner_product.ONEDNN_INNER_PRODUCT is None, reason="decoding steps do not use oneDNN here"
)
@torch.inference_mode()
def test_a_decoding_step_multiplies_up_to_float_max_rows_in_the_kernel(monkeypatch):
    calls = []
    run = kernels.float_linear
    monkeypatch.setattr(kernels, "float_linear", lambda *a: (calls.append(a[0].shape), run(*a))[1])
    weight = torch.randn(512, 1024)  # as many weights as oneDNN takes (ONEDNN_MIN_WEIGHTS)
    assert weight.numel() >= inner_product.ONEDNN_MIN_WEIGHTS

    @inner_product.decoding_step
    def step(_model, x):
        return inner_product.linear(x, weight)

    for n in (1, kernels.FLOAT_MAX_ROWS, kernels.FLOAT_MAX_ROWS + 1):
        x = torch.randn(n, 1, 1024)
        assert_close(step(None, x), F.linear(x, weight))
    inner_product.linear(torch.randn(1, 1024), weight)  # outside a decoding step: F.linear
    assert calls == [(1, 1, 1024), (kernels.FLOAT_MAX_ROWS, 1, 1024)]
