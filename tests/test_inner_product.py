"""Decoding steps multiply float32 matrices with oneDNN's inner product (``models/inner_product.py``); a forward,
training and other dtypes keep ``F.linear``. On a machine that does not use it (an Intel CPU), this file runs
with ``TINYFORMERS_ONEDNN=1`` from ``test_inner_product_choice.py``."""

import copy
import gc
import pickle

import pytest
import torch
import torch.nn.functional as F

from tinyformers import GPT2Config, GPT2LMHeadModel
from tinyformers.models import inner_product, kernels
from tinyformers.models.inner_product import (
    ONEDNN_INNER_PRODUCT,
    ONEDNN_MIN_WEIGHTS,
    decoding_step,
    linear,
    pack_in_graphs,
    packing_wanted,
)
from tinyformers.models.layers import Linear

pytestmark = pytest.mark.skipif(
    ONEDNN_INNER_PRODUCT is None,
    reason="decoding does not use oneDNN here (an Intel CPU, or a torch without oneDNN); "
    "test_inner_product_choice.py runs this file with TINYFORMERS_ONEDNN=1",
)


@pytest.fixture(autouse=True)
def without_the_float_kernel(monkeypatch):
    """These tests are about oneDNN's products: a batched step's few rows multiply in ``kernels.tf_f32`` instead
    where it is built (tests/test_kernels.py), and oneDNN takes only more rows than ``FLOAT_MAX_ROWS``."""
    monkeypatch.setattr(kernels, "float_runs", lambda x, weight: False)


@decoding_step
def step_function(_model, x, weight, bias=None):
    """A model's step reduced to one product; ``x`` stands in for ``input_ids`` (its first dimension counts the
    sequences)."""
    return linear(x, weight, bias)


def in_step(x, weight, bias=None):
    return step_function(None, x, weight, bias)


def layer_step(layer):
    """``layer`` called inside a decoding step, as a model's ``next_token_logits`` calls its layers."""
    step = decoding_step(lambda _model, x: layer(x))
    return lambda x: step(None, x)


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


def packed_copy(layer) -> torch.Tensor | None:
    holder = layer.__dict__.get("_packed_weight")
    return None if holder is None else holder.packed


@torch.inference_mode()
def test_steps_of_several_sequences_use_a_packed_copy_that_gives_the_same_bits():
    for rows, cols in ((1536, 576), (576, 1536), (2304, 768)):
        layer = Linear(cols, rows)
        layer.weight.copy_(weight(rows, cols))
        step = layer_step(layer)
        step(torch.randn(1, 45, cols))  # one sequence's prompt, then one of its steps
        step(torch.randn(1, 1, cols))
        assert packed_copy(layer) is None, "one sequence never pays for a packed copy"
        for batch in (2, 3, 8, 16):
            x = torch.randn(batch, 1, cols)
            plain = ONEDNN_INNER_PRODUCT(x, layer.weight, layer.bias, "none", [], "")
            assert torch.equal(step(x), plain), (rows, cols, batch)
        assert packed_copy(layer).is_mkldnn
        prompts = torch.randn(2, 45, cols)  # a batched prefill
        assert torch.equal(
            step(prompts), ONEDNN_INNER_PRODUCT(prompts, layer.weight, layer.bias, "none", [], "")
        )


@torch.inference_mode()
def test_a_compiled_graph_multiplies_the_matrices_of_layers_it_may_pack_packed_with_the_same_bits():
    layer = Linear(576, 1536)
    layer.weight.copy_(weight(1536, 576))
    compiled = torch.compile(layer, fullgraph=True)
    x = torch.randn(4, 576)
    plain = compiled(x)
    assert packed_copy(layer) is None, "a layer not registered keeps its plain weight"
    pack_in_graphs(layer)
    assert torch.equal(compiled(x), plain)
    assert packed_copy(layer).is_mkldnn
    layer.weight = torch.nn.Parameter(weight(1536, 576, seed=1))  # a weight no registered layer holds: plain
    torch.testing.assert_close(compiled(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
    address = layer.weight.data_ptr()
    pack_in_graphs(layer)
    assert inner_product._GRAPH_LAYERS[address]() is layer
    del layer, compiled
    gc.collect()
    assert address not in inner_product._GRAPH_LAYERS, "a layer that is gone is forgotten"


def test_a_packed_copy_follows_its_weight_and_is_not_copied_with_the_layer():
    layer = Linear(576, 1536)
    step = layer_step(layer)
    x = torch.randn(4, 1, 576)
    with torch.no_grad():
        layer.weight.copy_(weight(1536, 576))
        first = step(x)
        layer.weight.mul_(2)  # written in place: the copy is made again
        torch.testing.assert_close(step(x), 2 * first - layer.bias, atol=1e-5, rtol=1e-5)
        twin = copy.deepcopy(layer)
        assert packed_copy(twin) is None and packed_copy(layer) is not None
        assert torch.equal(layer_step(twin)(x), step(x))
        restored = pickle.loads(pickle.dumps(layer))
        assert packed_copy(restored) is None


@torch.inference_mode()
def test_packing_can_be_turned_off(monkeypatch):
    assert packing_wanted({}) and packing_wanted({"TINYFORMERS_PACK_WEIGHTS": "1"})
    assert not packing_wanted({"TINYFORMERS_PACK_WEIGHTS": "0"})
    monkeypatch.setattr(inner_product, "PACK_WEIGHTS", False)
    layer = Linear(576, 1536)
    layer_step(layer)(torch.randn(4, 1, 576))
    assert packed_copy(layer) is None


@torch.inference_mode()
def test_batched_generation_packs_its_matrices_and_a_dtype_change_drops_them():
    torch.manual_seed(0)
    config = GPT2Config(n_embd=512, n_layer=2, n_head=8, vocab_size=1000, n_positions=64)
    model = GPT2LMHeadModel(config).eval()
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    alone = [model.generate(row[None], max_new_tokens=6, do_sample=False) for row in ids]
    assert not any(packed_copy(m) is not None for m in model.modules()), "batch 1 packs nothing"
    together = model.generate(ids, max_new_tokens=6, do_sample=False)
    assert torch.equal(together, torch.cat(alone))
    packed = [m for m in model.modules() if packed_copy(m) is not None]
    assert {type(m).__name__ for m in packed} == {"Conv1D", "Linear"}  # the blocks' matrices and the head
    model.double()
    assert not any(packed_copy(m) is not None for m in model.modules())
