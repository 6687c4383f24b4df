"""Decoding steps multiply float32 matrices with oneDNN's inner product (``models/inner_product.py``); a forward,
training and other dtypes keep ``F.linear``. On a machine that does not use it (an Intel CPU), this file runs
with ``TINYFORMERS_ONEDNN=1`` from ``test_inner_product_choice.py``."""

import pytest
import torch
import torch.nn.functional as F

from tinyformers import GPT2Config, GPT2LMHeadModel
from tinyformers.models.inner_product import ONEDNN_INNER_PRODUCT, ONEDNN_MIN_WEIGHTS, decoding_step, linear

pytestmark = pytest.mark.skipif(
    ONEDNN_INNER_PRODUCT is None,
    reason="decoding does not use oneDNN here (an Intel CPU, or a torch without oneDNN); "
    "test_inner_product_choice.py runs this file with TINYFORMERS_ONEDNN=1",
)


@decoding_step
def in_step(x, weight, bias=None):
    return linear(x, weight, bias)


def weight(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) / cols**0.5


@torch.inference_mode()
def test_a_step_computes_what_f_linear_does_up_to_rounding():
    w, bias = weight(1536, 576), torch.randn(1536)
    for rows in (1, 2, 8, 45):
        x = torch.randn(rows, 576)
        torch.testing.assert_close(in_step(x, w, bias), F.linear(x, w, bias), atol=1e-5, rtol=1e-5)
    x = torch.randn(2, 3, 576)  # any leading shape, as F.linear
    torch.testing.assert_close(in_step(x, w.t().contiguous().t()), F.linear(x, w), atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_outside_a_step_it_is_f_linear_bit_for_bit():
    w, bias = weight(1536, 576), torch.randn(1536)
    x = torch.randn(4, 576)
    assert torch.equal(linear(x, w, bias), F.linear(x, w, bias))


def test_products_that_record_gradients_keep_f_linear():
    # oneDNN's op has no backward: it must never run where autograd records.
    w = torch.nn.Parameter(weight(1024, 512))
    x = torch.randn(3, 512)
    in_step(x, w).sum().backward()
    torch.testing.assert_close(w.grad, x.sum(0).expand(1024, 512))


@torch.inference_mode()
def test_small_matrices_bfloat16_and_tensors_of_other_sizes_keep_f_linear():
    small = weight(64, 64)
    assert small.numel() < ONEDNN_MIN_WEIGHTS
    x = torch.randn(2, 64)
    assert torch.equal(in_step(x, small), F.linear(x, small))
    big = weight(1024, 512).bfloat16()
    xb = torch.randn(2, 512, dtype=torch.bfloat16)
    assert torch.equal(in_step(xb, big), F.linear(xb, big))


def ops_run(fn) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {event.key for event in prof.key_averages()}


@torch.inference_mode()
def test_generate_runs_its_steps_through_onednn_and_a_forward_does_not():
    torch.manual_seed(0)
    config = GPT2Config(n_embd=512, n_layer=1, n_head=8, vocab_size=1000, n_positions=64)
    model = GPT2LMHeadModel(config).eval()
    ids = torch.tensor([[1, 2, 3, 4]])
    assert "mkldnn::_linear_pointwise" in ops_run(
        lambda: model.generate(ids, max_new_tokens=3, do_sample=False)
    )
    assert "mkldnn::_linear_pointwise" not in ops_run(lambda: model(ids))


@torch.inference_mode()
def test_a_compiled_graph_multiplies_several_rows_with_the_inner_product():
    # the compiled decoding step's batches (one row runs as layers.matvec instead)
    w = weight(1024, 512)
    compiled = torch.compile(lambda x: linear(x, w), fullgraph=True)
    x = torch.randn(4, 512)
    assert "tinyformers::onednn_linear" in ops_run(lambda: compiled(x))
    torch.testing.assert_close(compiled(x), F.linear(x, w), atol=1e-5, rtol=1e-5)
