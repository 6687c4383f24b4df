"""GPT-2's speed options: the compiled decoding step (one-row products as ``layers.matvec`` on [out, in] rows
of the same [in, out] parameters) and weight-only int8, against transformers' GPT-2."""

from __future__ import annotations

import pytest
import torch

from conftest import oracle
from fixtures import assert_int8_close, left_padded, random_checkpoint
from tinyformers.models.gpt2 import GPT2LMHeadModel
from tinyformers.models.inner_product import PREFER_MKL
from tinyformers.models.quantized import Int8Linear, greedy_agreement

transformers = oracle("transformers")

VOCAB = 300
# initializer_range 0.2: large enough that greedy decoding does not collapse onto one token
TINY = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB, n_positions=128, initializer_range=0.2)
GREEDY = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2")
    config = transformers.GPT2Config(**TINY, bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    return random_checkpoint(directory, "GPT2LMHeadModel", config), directory


def prompts(count: int, length: int = 7) -> list[torch.Tensor]:
    return [left_padded(VOCAB, [0], length, seed)[0] for seed in range(count)]


@pytest.mark.slow  # compiling takes ~10-20 s
@torch.inference_mode()
def test_compiled_greedy_ids_equal_transformers_and_saving_keeps_conv1d(tiny, tmp_path):
    ref_model, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory, compile=True)
    layer = model.transformer.layers[0].qkv
    assert layer.compiled_matvec is not PREFER_MKL  # MKL's product on Intel's CPUs, the matvec loop elsewhere
    # an [in, out] parameter, stored as [out, in] rows where the compiled matvec streams them
    assert layer.weight.shape == (64, 192) and layer.weight.t().is_contiguous() is layer.compiled_matvec
    ids = prompts(1, 9)[0]
    for prompt in (ids, ids[:, 4:]):  # a second prompt length reuses the graph (same cache bucket)
        assert torch.equal(model.generate(prompt, **GREEDY), ref_model.generate(prompt, **GREEDY))
    model.save_pretrained(tmp_path)  # GPT-2's names and [in, out] layout, as transformers reads them
    again = transformers.GPT2LMHeadModel.from_pretrained(tmp_path)
    for name, weight in ref_model.state_dict().items():
        if not name.endswith("attn.bias"):
            assert torch.equal(again.state_dict()[name], weight), name


def test_eager_gpt2_keeps_its_in_out_memory(tiny):
    block = GPT2LMHeadModel.from_pretrained(tiny[1]).transformer.layers[1]
    assert all(m.weight.is_contiguous() for m in (block.qkv, block.attn_out, block.mlp_in, block.mlp_out))


@torch.inference_mode()
def test_int8_gpt2_follows_float32(tiny):
    _, directory = tiny
    fp32 = GPT2LMHeadModel.from_pretrained(directory)
    int8 = GPT2LMHeadModel.from_pretrained(directory, quantize="int8")
    block = int8.transformer.layers[0]
    assert all(isinstance(m, Int8Linear) for m in (block.qkv, block.mlp_out, int8.lm_head))
    ids, mask = left_padded(VOCAB, [0, 3], length=10, seed=5)
    got, want = int8(ids, mask).logits, fp32(ids, mask).logits
    assert_int8_close(got, want)
    _, forced = greedy_agreement(int8, fp32, prompts(3), new_tokens=16)
    assert forced >= 0.9


@pytest.mark.slow
@torch.inference_mode()
def test_int8_compiled_gpt2_follows_float32(tiny):
    _, directory = tiny
    fp32 = GPT2LMHeadModel.from_pretrained(directory)
    model = GPT2LMHeadModel.from_pretrained(directory, quantize="int8", compile=True)
    _, forced = greedy_agreement(model, fp32, prompts(3), new_tokens=16)
    assert forced >= 0.9
