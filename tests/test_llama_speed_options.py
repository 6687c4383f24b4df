"""Llama's speed options: the [in, out] weight layout, the compiled decoding step, weight-only int8."""

from __future__ import annotations

import pytest
import torch

from conftest import oracle
from fixtures import assert_int8_close, llama_batch, llama_config, random_checkpoint
from tinyformers import AutoModelForCausalLM, AutoTokenizer
from tinyformers.models import compiled as compiled_module
from tinyformers.models.compiled import ENV_FLAG
from tinyformers.models.inner_product import ONEDNN_INNER_PRODUCT, PREFER_MKL
from tinyformers.models.quantized import Int8Linear, greedy_agreement, int8_loop_wanted

transformers = oracle("transformers")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("llama")
    config = llama_config(max_position_embeddings=512, tie_word_embeddings=True)  # tied, as SmolLM2
    random_checkpoint(directory, "LlamaForCausalLM", config)
    return directory


def _in_out(weight: torch.Tensor) -> bool:
    return weight.stride() == (1, weight.shape[0])


def test_float32_matrices_are_stored_for_their_kernel_and_bf16_out_in(checkpoint, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    block = model.model.layers[0]
    # oneDNN streams [out, in] rows fastest, MKL's mat-vec [in, out] memory (layers.decode_layout)
    want_in_out = ONEDNN_INNER_PRODUCT is None
    assert all(
        _in_out(m.weight) == want_in_out for m in (block.qkv, block.attn_out, block.gate_up, block.down)
    )
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tied: the lookup keeps rows
    assert model.lm_head.weight.is_contiguous()
    model.to(torch.bfloat16)
    assert block.qkv.weight.is_contiguous()
    model.float().save_pretrained(tmp_path)  # saved in the checkpoint's own layout, loadable by transformers
    again = transformers.LlamaForCausalLM.from_pretrained(tmp_path)
    torch.testing.assert_close(
        again.model.layers[0].self_attn.q_proj.weight, block.qkv.weight[:64].float(), atol=0, rtol=0
    )


def test_from_pretrained_options(checkpoint, monkeypatch):
    assert AutoModelForCausalLM.from_pretrained(checkpoint)._compiled_step is None
    monkeypatch.setenv(ENV_FLAG, "1")
    assert AutoModelForCausalLM.from_pretrained(checkpoint)._compiled_step is not None
    assert AutoModelForCausalLM.from_pretrained(checkpoint, compile=False)._compiled_step is None
    monkeypatch.delenv(ENV_FLAG)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, quantize="int8")
    assert isinstance(model.model.layers[1].gate_up, Int8Linear) and isinstance(model.lm_head, Int8Linear)
    with pytest.raises(ValueError, match="quantize='int3' is not supported"):
        AutoModelForCausalLM.from_pretrained(checkpoint, quantize="int3")


def test_saving_a_quantised_model_is_refused(checkpoint, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(checkpoint, quantize="int8")
    with pytest.raises(ValueError, match="quantised to int8 in memory"):
        model.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


@torch.inference_mode()
def test_int8_follows_float32(checkpoint):
    fp32 = AutoModelForCausalLM.from_pretrained(checkpoint)
    int8 = AutoModelForCausalLM.from_pretrained(checkpoint, quantize="int8")
    ids, mask = llama_batch()
    got, want = int8(ids, mask).logits, fp32(ids, mask).logits
    assert_int8_close(got, want)
    _, forced = greedy_agreement(int8, fp32, [ids[i : i + 1, 9:] for i in range(3)], new_tokens=24)
    assert forced >= 0.9


@pytest.mark.slow  # each compilation takes 30-150 s on 2 busy cores
@torch.inference_mode()
def test_compiled_decoding_matches_eager(checkpoint):
    eager = AutoModelForCausalLM.from_pretrained(checkpoint)
    compiled = AutoModelForCausalLM.from_pretrained(checkpoint, compile=True)
    ids, mask = llama_batch()
    for batch in ((ids[:1],), (ids[:1, 3:],), (ids, mask)):  # a shorter prompt lands in the same cache bucket
        kw = dict(max_new_tokens=24, do_sample=False)
        assert torch.equal(compiled.generate(*batch, **kw), eager.generate(*batch, **kw))
    # Compiled one-row products stream [out, in] rows (layers.matvec), except on Intel's CPUs, where the graph
    # keeps MKL's product on [in, out] storage (inner_product.PREFER_MKL). Prefill keeps F.linear either way.
    gate_up = compiled.model.layers[0].gate_up
    assert gate_up.compiled_matvec is not PREFER_MKL
    assert gate_up.weight.is_contiguous() is gate_up.compiled_matvec


@pytest.mark.slow
@pytest.mark.parametrize("loop", [True, False], ids=["matvec-loop", "int8-kernel"])
@torch.inference_mode()
def test_int8_compiled_follows_float32_with_either_product(checkpoint, monkeypatch, loop):
    """Int8 one-row products in the graph run as the matvec loop (float32 activations) where the CPU has AVX-512,
    else as torch's int8 kernel (bfloat16 activations, as eagerly); both are tested whatever this CPU is."""
    monkeypatch.setattr(compiled_module, "INT8_LOOP", loop)
    eager = AutoModelForCausalLM.from_pretrained(checkpoint)
    int8_compiled = AutoModelForCausalLM.from_pretrained(checkpoint, quantize="int8", compile=True)
    assert int8_compiled.model.layers[0].gate_up.compiled_matvec is loop
    ids, _ = llama_batch()
    _, forced = greedy_agreement(int8_compiled, eager, [ids[i : i + 1, 9:] for i in range(3)], new_tokens=24)
    assert forced >= 0.9


def test_the_cpu_decides_how_compiled_int8_multiplies_unless_the_environment_does():
    assert int8_loop_wanted({}, capability=lambda: "AVX512")
    assert not int8_loop_wanted({}, capability=lambda: "AVX2")
    assert not int8_loop_wanted({}, capability=lambda: "DEFAULT")
    assert int8_loop_wanted({"TINYFORMERS_INT8_LOOP": "1"}, capability=lambda: "AVX2")
    assert not int8_loop_wanted({"TINYFORMERS_INT8_LOOP": "0"}, capability=lambda: "AVX512")


@pytest.mark.slow
@torch.inference_mode()
def test_changing_a_compiled_model_traces_it_again(checkpoint):
    eager = AutoModelForCausalLM.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, compile=True)
    ids = llama_batch()[0][:1]
    model.generate(ids, max_new_tokens=4, do_sample=False)  # traced with float matrices
    step = model._compiled_step
    model.quantize_weights("int8")  # that graph would read float matrices: a new step traces the int8 ones
    assert model._compiled_step is not step
    _, forced = greedy_agreement(model, eager, [ids], new_tokens=8)
    assert forced >= 0.75
    step = model._compiled_step
    model.to(torch.bfloat16)  # so does a dtype or device change
    assert model._compiled_step is not step


@pytest.mark.slow
@torch.inference_mode()
def test_int8_smollm2_agrees_and_knows_paris(smollm2_dir):
    gguf = smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(gguf)
    fp32 = AutoModelForCausalLM.from_pretrained(gguf)
    int8 = AutoModelForCausalLM.from_pretrained(gguf, quantize="int8")
    questions = ["What is the capital of France?", "Write a haiku about the sea.", "What is 2 + 2?"]
    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": q}], add_generation_prompt=True, return_tensors="pt"
        )["input_ids"]
        for q in questions
    ]
    _, forced = greedy_agreement(int8, fp32, prompts, new_tokens=32)
    assert forced >= 0.9
    answer = int8.generate(prompts[0], max_new_tokens=12, do_sample=False)[0, prompts[0].shape[1] :]
    assert "Paris" in tok.decode(answer)
