"""``quantize="gguf"``: GGUF matrices kept as their quantised blocks, against the same file dequantised to float32.

Small llama files are written with the ``gguf`` package: Q4_0, Q4_1 and Q8_0 quantised by it, Q4_K and Q6_K
(which it cannot quantise) as random blocks with finite scales; ``gguf``'s own dequantisation is the oracle for
the blocks (tests/test_gguf.py checks ours against it), and the dequantised model for the products.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import oracle
from fixtures import gguf_blocks, llama_block_shapes, write_llama_blocks
from tinyformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
from tinyformers.models import kernels
from tinyformers.models.gguf_quantized import GGUFEmbedding, GGUFLinear
from tinyformers.models.layers import Linear
from tinyformers.models.quantized import greedy_agreement

gguf = oracle("gguf")
Q = gguf.GGMLQuantizationType
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Every width a multiple of 256, the K-quants' super-block.
HIDDEN, FFN, HEADS, KV_HEADS, VOCAB, LAYERS = 256, 512, 4, 2, 96, 2


def write_llama(path, types: dict[str, object], seed: int = 0):
    """A two-layer llama GGUF with a tied head: ``types`` maps a tensor kind (token_embd, attn_q, ffn_down...)
    to its ggml type (default Q4_1); norms are F32."""
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(path, "llama")
    for key, value in [("block_count", LAYERS), ("embedding_length", HIDDEN), ("feed_forward_length", FFN),
                       ("attention.head_count", HEADS), ("attention.head_count_kv", KV_HEADS),
                       ("context_length", 64), ("vocab_size", VOCAB)]:  # fmt: skip
        writer.add_uint32(f"llama.{key}", value)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    shapes = llama_block_shapes(HIDDEN, HEADS, KV_HEADS, FFN)

    def add(name, kind, shape):
        qtype = types.get(kind, Q.Q4_1)
        values = (rng.standard_normal(shape) * 0.3).astype(np.float32)
        if qtype == Q.F32:
            writer.add_tensor(name, values)
        else:
            writer.add_tensor(name, gguf_blocks(values, qtype, rng), raw_dtype=qtype)

    add("token_embd.weight", "token_embd", (VOCAB, HIDDEN))
    writer.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
    write_llama_blocks(writer, LAYERS, shapes, add)
    return path


def assert_relative(got: torch.Tensor, want: torch.Tensor, tolerance: float = 1e-4) -> None:
    assert (got - want).abs().max() <= tolerance * want.abs().max()


def assert_picks_differ_only_at_ties(got: torch.Tensor, want: torch.Tensor) -> None:
    """Logits [positions, vocab]: wherever the two argmaxes differ, the reference scores both picks within the
    tolerance of the logits themselves (summing in another order may flip a tie, nothing more)."""
    picked, wanted = got.argmax(-1), want.argmax(-1)
    rows = (picked != wanted).nonzero().squeeze(1)
    gaps = want[rows, wanted[rows]] - want[rows, picked[rows]]
    assert (gaps <= 2e-4 * want.abs().max()).all(), gaps


PROMPT = torch.tensor([[5, 17, 42, 8, 91, 3, 60, 33]])
TYPES = [Q.Q4_0, Q.Q4_1, Q.Q8_0, Q.Q4_K, Q.Q6_K]


@pytest.mark.parametrize("qtype", TYPES, ids=lambda q: q.name)
@torch.inference_mode()
def test_blocks_multiply_like_the_dequantised_model(tmp_path, qtype):
    path = write_llama(tmp_path / "m.gguf", dict.fromkeys(["token_embd", *"attn_q attn_k attn_v".split(),
                                                            "attn_output", "ffn_gate", "ffn_up", "ffn_down"], qtype))  # fmt: skip
    blocks = AutoModelForCausalLM.from_pretrained(path, quantize="gguf")
    fp32 = AutoModelForCausalLM.from_pretrained(path)
    layer = blocks.model.layers[0]
    assert all(isinstance(m, GGUFLinear) for m in (layer.qkv, layer.attn_out, layer.gate_up, layer.down))
    assert isinstance(blocks.model.embed_tokens, GGUFEmbedding) and isinstance(blocks.lm_head, GGUFLinear)
    head, embedding = blocks.lm_head.fields(), blocks.model.embed_tokens.fields()
    assert all(a.data_ptr() == b.data_ptr() for a, b in zip(head, embedding))  # tied: one copy of the blocks
    # the fused, row-permuted matrices are the dequantised model's, exactly
    assert torch.equal(layer.qkv.dequantized(), fp32.model.layers[0].qkv.weight)
    assert torch.equal(layer.gate_up.dequantized(), fp32.model.layers[0].gate_up.weight)
    assert_relative(blocks(PROMPT).logits, fp32(PROMPT).logits)
    # what the compiled step runs for one row (its loop, here evaluated eagerly)
    x = torch.randn(HIDDEN)
    for module in (layer.qkv, blocks.lm_head):
        assert_relative(module.matvec(x), module.dequantized() @ x, 1e-5)
    prefix, forced = greedy_agreement(blocks, fp32, [PROMPT], new_tokens=12)
    assert (prefix, forced) == (1.0, 1.0)  # activations stay float32: nothing for a token to flip on


def test_fused_parts_of_different_types_are_dequantised(tmp_path):
    path = write_llama(tmp_path / "mixed.gguf", {"attn_v": Q.Q8_0, "ffn_up": Q.Q4_0})
    blocks = AutoModelForCausalLM.from_pretrained(path, quantize="gguf")
    fp32 = AutoModelForCausalLM.from_pretrained(path)
    layer = blocks.model.layers[1]
    assert type(layer.qkv) is Linear and type(layer.gate_up) is Linear  # float32, as without quantize=
    assert isinstance(layer.attn_out, GGUFLinear) and isinstance(layer.down, GGUFLinear)
    with torch.inference_mode():
        assert_relative(blocks(PROMPT).logits, fp32(PROMPT).logits)


@pytest.fixture(params=[True, False], ids=["C kernel", "without the C kernel"])
def with_kernel(request, monkeypatch):
    """Models loaded in the test multiply their blocks in the C kernel, or (TINYFORMERS_KERNELS=0) as they do
    where it cannot be built: inductor's loop inside the compiled step, dequantised otherwise."""
    if not request.param:
        monkeypatch.setenv("TINYFORMERS_KERNELS", "0")
    kernels.library.cache_clear()
    yield request.param
    monkeypatch.undo()
    kernels.library.cache_clear()


@pytest.mark.slow  # one compilation, ~30-60 s
@torch.inference_mode()
def test_compiled_step_multiplies_with_every_kept_type(tmp_path, with_kernel):
    types = {"token_embd": Q.Q8_0, "attn_q": Q.Q4_0, "attn_k": Q.Q4_0, "attn_v": Q.Q4_0,
             "attn_output": Q.Q4_K, "ffn_gate": Q.Q6_K, "ffn_up": Q.Q6_K, "ffn_down": Q.Q4_1}  # fmt: skip
    path = write_llama(tmp_path / "all.gguf", types)
    compiled = AutoModelForCausalLM.from_pretrained(path, quantize="gguf", compile=True)
    layer = compiled.model.layers[0]
    kinds = [m.kernel for m in (layer.qkv, layer.attn_out, layer.gate_up, layer.down, compiled.lm_head)]
    assert kinds == (["q4_0", "q4_k", "q6_k", "q4_1", "q8_0"] if with_kernel else [None] * 5)
    fp32 = AutoModelForCausalLM.from_pretrained(path)
    logits = []
    for model in (compiled, fp32):
        cache = model.allocate_cache(1, 16)
        positions = torch.arange(PROMPT.shape[1] + 1)[None]
        model.next_token_logits(PROMPT, positions[:, :-1], cache)  # prefill: eager
        logits.append(model.next_token_logits(PROMPT[:, -1:], positions[:, -1:], cache))  # compiled step
    assert compiled.model.layers[0].qkv.compiled_matvec
    assert_relative(*logits)
    prefix, forced = greedy_agreement(compiled, fp32, [PROMPT, PROMPT[:, 2:]], new_tokens=16)
    assert (prefix, forced) == (1.0, 1.0)
    # two rows a step (a server's batch): the C kernel, or the blocks dequantised without it
    batch = torch.cat([PROMPT, PROMPT.flip(1)])
    kw = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert torch.equal(compiled.generate(batch, **kw), fp32.generate(batch, **kw))


@pytest.fixture(scope="module")
def smollm2_models(smollm2_dir):
    path = smollm2_dir / SMOLLM2
    return (
        path,
        AutoModelForCausalLM.from_pretrained(path, quantize="gguf"),
        AutoModelForCausalLM.from_pretrained(path),
    )


def test_smollm2_keeps_its_blocks_in_about_the_file_size(smollm2_models):
    path, blocks, _ = smollm2_models
    tensors = {id(t): t for t in [*blocks.parameters(), *blocks.buffers()]}.values()
    resident = sum(t.numel() * t.element_size() for t in tensors)
    assert resident <= 1.3 * path.stat().st_size  # float32: 540 MB
    assert blocks.model.embed_tokens.ggml_type == int(Q.Q8_0)
    assert blocks.model.layers[0].down.ggml_type == int(Q.Q4_1)


@torch.inference_mode()
def test_smollm2_logits_and_greedy_answers_follow_the_dequantised_model(smollm2_models):
    path, blocks, fp32 = smollm2_models
    tok = AutoTokenizer.from_pretrained(path)
    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": q}], add_generation_prompt=True, return_tensors="pt"
        )["input_ids"]
        for q in ("What is the capital of France?", "Write a haiku about the sea.")
    ]
    assert_relative(blocks(prompts[0]).logits, fp32(prompts[0]).logits)
    prefix, forced = greedy_agreement(blocks, fp32, prompts, new_tokens=16)
    assert prefix >= 0.9 and forced >= 0.9  # measured: 1.0 and 0.97 (one near-tie of 32 positions)
    answer = fp32.generate(prompts[1], max_new_tokens=16, do_sample=False)
    assert_picks_differ_only_at_ties(blocks(answer).logits[0], fp32(answer).logits[0])


def test_bad_inputs_get_one_line_errors(tmp_path, smollm2_models):
    from fixtures import llama_config, random_checkpoint

    path, blocks, _ = smollm2_models
    folder = tmp_path / "folder"
    random_checkpoint(folder, "LlamaForCausalLM", llama_config())
    with pytest.raises(
        ValueError, match=r"quantize='gguf' keeps the quantised blocks of a GGUF file, and .* is not"
    ):
        AutoModelForCausalLM.from_pretrained(folder, quantize="gguf")
    floats = write_llama(tmp_path / "f32.gguf", dict.fromkeys(["token_embd", "attn_q", "attn_k", "attn_v",
                                                               "attn_output", "ffn_gate", "ffn_up", "ffn_down"], Q.F32))  # fmt: skip
    with pytest.raises(
        ValueError, match=r"found no Q4_0, Q4_1, Q8_0, Q4_K, Q6_K matrix .* use quantize=None"
    ):
        AutoModelForCausalLM.from_pretrained(floats, quantize="gguf")
    with pytest.raises(TypeError, match="quantize='gguf' applies to decoder models; LlamaModel is not one"):
        AutoModel.from_pretrained(path, quantize="gguf")
    with pytest.raises(ValueError, match="cannot re-quantise GGUF blocks"):
        blocks.quantize_weights("int8")
    with pytest.raises(ValueError, match="quantised to gguf in memory"):
        blocks.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()
