"""T5's speed options: the compiled decoder step and weight-only int8, on a seeded-random Flan-T5-shaped
checkpoint, against transformers."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import oracle
from fixtures import T5_SHAPE, T5_VARIANTS, reference_t5
from tinyformers.models.inner_product import PREFER_MKL
from tinyformers.models.quantized import Int8Linear, greedy_agreement
from tinyformers.models.t5 import T5Config, T5ForConditionalGeneration

transformers = oracle("transformers")

GREEDY = dict(max_new_tokens=10, min_new_tokens=10, do_sample=False)


@pytest.fixture(scope="module")
def flan(tmp_path_factory):
    directory = tmp_path_factory.mktemp("flan")
    reference_t5("flan").save_pretrained(directory)
    return transformers.T5ForConditionalGeneration.from_pretrained(directory).eval(), directory


def inputs(count: int, length: int = 11, seed: int = 3) -> torch.Tensor:
    """``count`` inputs ending in </s>, as a T5 tokenizer ends them."""
    ids = torch.randint(3, 1000, (count, length), generator=torch.Generator().manual_seed(seed))
    ids[:, -1] = 1
    return ids


@pytest.mark.slow  # two compilations (batch 1, then a padded batch of 3), ~10-20 s each
@torch.inference_mode()
def test_compiled_t5_greedy_ids_equal_transformers(flan):
    ref, directory = flan
    model = T5ForConditionalGeneration.from_pretrained(directory, compile=True)
    gate_up = model.decoder.blocks[
        0
    ].ffn.gate_up  # [out, in] rows for the compiled matvec, but on Intel's CPUs
    assert gate_up.compiled_matvec is not PREFER_MKL
    assert gate_up.weight.is_contiguous() is gate_up.compiled_matvec
    ids = inputs(3)
    assert torch.equal(model.generate(ids[:1], **GREEDY), ref.generate(input_ids=ids[:1], **GREEDY))
    mask = (torch.arange(11)[None, :] < torch.tensor([[11], [7], [4]])).long()  # right padded, as T5 pads
    ids = ids.masked_fill(mask == 0, 0)
    got = model.generate(ids, attention_mask=mask, **GREEDY)
    assert torch.equal(got, ref.generate(input_ids=ids, attention_mask=mask, **GREEDY))


@pytest.mark.slow  # two compilations of two small models
@torch.inference_mode()
def test_compiled_t5s_of_two_shapes_in_one_process(flan):
    """torch records which input dimensions changed between calls by the function's file, line and name; a step
    shared by name across models made the second model's head counts symbolic, which SDPA refuses (each model's
    step now has a name of its own: ``compiled.own_copy``)."""
    ids = inputs(1)
    first = T5ForConditionalGeneration.from_pretrained(flan[1], compile=True)
    assert torch.equal(first.generate(ids, **GREEDY), flan[0].generate(input_ids=ids, **GREEDY))
    torch.manual_seed(1)
    config = T5Config(**{**T5_SHAPE, **T5_VARIANTS["flan"], "num_heads": 2, "d_kv": 32})
    second = T5ForConditionalGeneration(config).eval()
    eager = second.generate(ids, **GREEDY)
    assert torch.equal(second.compile_decoding().generate(ids, **GREEDY), eager)


def dequantised(model: T5ForConditionalGeneration) -> T5ForConditionalGeneration:
    """A float32 copy of ``model`` whose matrices hold exactly the values int8 quantisation keeps."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                q = Int8Linear(module)
                module.weight.copy_(q.qweight.float() * q.scales.float()[:, None])
    return model


# A random T5 is chaotic: scaling its float32 weights by 1 + 0.3 % noise already changes 10-50 % of teacher-forced
# greedy picks (fp32 against fp32), so int8 is checked against a float32 model holding its own rounded weights. How closely int8
# follows the original float32 weights is measured (benchmarks/bench_t5.py), not asserted.
@torch.inference_mode()
def test_int8_t5_multiplies_its_rounded_weights(flan):
    int8 = T5ForConditionalGeneration.from_pretrained(flan[1], quantize="int8")
    decoder, encoder = int8.decoder.blocks[0], int8.encoder.blocks[0]
    matrices = (decoder.attn.qkv, decoder.cross.kv, decoder.ffn.wo, encoder.attn.o, int8.lm_head)
    assert all(isinstance(m, Int8Linear) for m in matrices)  # the encoder's too
    ids = inputs(2)
    reference = dequantised(T5ForConditionalGeneration.from_pretrained(flan[1]))
    decoder_ids = reference.generate(ids, **GREEDY)
    got, want = (m(ids, decoder_input_ids=decoder_ids).logits for m in (int8, reference))
    # Only the bfloat16 activations differ. Its attention is nearly hard (unscaled scores of large random
    # weights), so where two keys almost tie a rounding flips it: the largest error is not bounded, the mean is.
    assert (got - want).abs().mean() < 0.01 * want.abs().max()
    with pytest.raises(ValueError, match="quantised to int8 in memory"):
        int8.save_pretrained(flan[1] / "int8")


@pytest.mark.slow
@torch.inference_mode()
def test_int8_compiled_t5_follows_its_rounded_weights(flan):
    _, directory = flan
    model = T5ForConditionalGeneration.from_pretrained(directory, quantize="int8", compile=True)
    reference = dequantised(T5ForConditionalGeneration.from_pretrained(directory))
    # inside the graph the int8 rows multiply float32 activations: the float32 reference's arithmetic
    _, forced = greedy_agreement(model, reference, [inputs(1, seed=seed) for seed in range(3)], new_tokens=10)
    assert forced >= 0.9
