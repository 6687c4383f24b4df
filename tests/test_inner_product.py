"""Decoding steps multiply float32 matrices with oneDNN's inner product (``models/inner_product.py``); a forward,
training and other dtypes keep ``F.linear``."""

import pytest
import torch
import torch.nn.functional as F

from tinyformers import GPT2Config, GPT2LMHeadModel
from tinyformers.models.inner_product import ONEDNN_INNER_PRODUCT, ONEDNN_MIN_WEIGHTS, decoding_step, linear

pytestmark = pytest.mark.skipif(ONEDNN_INNER_PRODUCT is None, reason="this torch has no oneDNN")


@decoding_step
def in_step(x, weight, bias=None):
    return linear(x, weight, bias)


def in_out(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """A [rows, cols] weight stored [in, out] in memory, as ``decode_layout`` keeps float32 matrices."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(cols, rows, generator=g) / cols**0.5).t()


@torch.inference_mode()
def test_a_row_gets_the_same_result_whatever_rows_share_the_step():
    weight, bias = in_out(1536, 576), torch.randn(1536)
    x = torch.randn(8, 576)
    batch = in_step(x, weight, bias)
    for rows in range(1, 8):
        assert torch.equal(in_step(x[:rows], weight, bias), batch[:rows]), rows
    torch.testing.assert_close(batch, F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_outside_a_step_it_is_f_linear_bit_for_bit():
    weight, bias = in_out(1536, 576), torch.randn(1536)
    x = torch.randn(4, 576)
    assert torch.equal(linear(x, weight, bias), F.linear(x, weight, bias))


def test_products_that_record_gradients_keep_f_linear():
    # oneDNN's op has no backward: it must never run where autograd records.
    weight = torch.nn.Parameter(in_out(1024, 512).contiguous())
    x = torch.randn(3, 512)
    in_step(x, weight).sum().backward()
    torch.testing.assert_close(weight.grad, x.sum(0).expand(1024, 512))


@torch.inference_mode()
def test_small_matrices_bfloat16_and_tensors_of_other_sizes_keep_f_linear():
    small = in_out(64, 64)
    assert small.numel() < ONEDNN_MIN_WEIGHTS
    x = torch.randn(2, 64)
    assert torch.equal(in_step(x, small), F.linear(x, small))
    big = in_out(1024, 512).bfloat16()
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
    assert "mkldnn::_linear_pointwise" in ops_run(lambda: model.generate(ids, max_new_tokens=3, do_sample=False))
    assert "mkldnn::_linear_pointwise" not in ops_run(lambda: model(ids))
