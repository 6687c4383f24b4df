"""GGUF reader: metadata, dequantisation and the llama -> HF mapping, checked against `gguf` and `transformers`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import oracle, tensor_digest
from fixtures import gguf_reading, smollm2_reference
from tinyformers.formats.gguf import GGML_TYPES, GGUFFile, dequantize, load_gguf_checkpoint
from tinyformers.formats.safetensors import CorruptWeightsError

gguf = oracle("gguf")
Q = gguf.GGMLQuantizationType
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Byte offsets of each block's fp16 scale/min fields: random bytes there could be inf/nan.
FP16_FIELDS = {
    Q.Q4_0: (0,), Q.Q4_1: (0, 2), Q.Q5_0: (0,), Q.Q5_1: (0, 2), Q.Q8_0: (0,),
    Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,),
}  # fmt: skip


def random_blocks(qtype, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Random raw blocks of ``qtype`` whose fp16 scales are finite."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    for at in FP16_FIELDS[qtype]:
        scales = rng.uniform(-2, 2, n_blocks).astype(np.float16)
        raw[:, at : at + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def assert_same_as_reference(raw: np.ndarray, qtype) -> None:
    expected = torch.from_numpy(np.array(gguf.quants.dequantize(raw, qtype), dtype=np.float32).reshape(-1))
    ours = dequantize(torch.from_numpy(raw.copy()), int(qtype))
    assert ours.dtype == torch.float32 and torch.equal(ours, expected), qtype.name


@pytest.mark.parametrize("qtype", list(FP16_FIELDS), ids=lambda q: q.name)
def test_dequantize_random_blocks_matches_reference(qtype):
    assert_same_as_reference(random_blocks(qtype, 64, np.random.default_rng(int(qtype))), qtype)


@pytest.mark.parametrize("qtype", [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.BF16], ids=lambda q: q.name)
def test_dequantize_quantized_values_matches_reference(qtype):
    values = np.random.default_rng(0).standard_normal((8, 256)).astype(np.float32)
    assert_same_as_reference(gguf.quants.quantize(values, qtype).reshape(-1).view(np.uint8), qtype)


@pytest.mark.parametrize(("qtype", "dtype"), [(Q.F32, np.float32), (Q.F16, np.float16)])
def test_dequantize_plain_floats(qtype, dtype):
    values = np.random.default_rng(1).standard_normal(100).astype(dtype)
    assert_same_as_reference(values.view(np.uint8), qtype)


# --- the real SmolLM2 file ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_path(smollm2_dir) -> Path:
    return smollm2_dir / SMOLLM2


@pytest.fixture(scope="module")
def reference(smollm2_path) -> dict:
    return gguf_reading(smollm2_path)


def test_metadata_matches_reference_reader(smollm2_path, reference):
    ours = GGUFFile(smollm2_path)
    assert ours.version == 3 and len(ours.metadata) == 33
    assert ours.metadata == reference["metadata"]  # includes the 49152 tokens and 48900 merges
    assert ours.metadata["llama.attention.layer_norm_rms_epsilon"] == 9.999999747378752e-06
    assert ours.data_start == reference["data_offset"]


def test_every_tensor_dequantizes_like_reference(smollm2_path, reference):
    ours = GGUFFile(smollm2_path)
    assert len(ours.tensors) == len(reference["tensors"]) == 272
    for ref in reference["tensors"]:
        info = ours.tensors[ref["name"]]
        assert info.ggml_type == ref["type"] and list(info.shape) == ref["shape"]
        assert tensor_digest(ours.load_tensor(ref["name"])) == ref["digest"], ref["name"]


def test_load_gguf_checkpoint_config_and_tokenizer(smollm2_path):
    seen = []
    config, state_dict, tokenizer = load_gguf_checkpoint(smollm2_path, progress=lambda *a: seen.append(a))
    assert seen[-1][:2] == (272, 272)
    assert config == {
        "model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "max_position_embeddings": 8192, "rms_norm_eps": 9.999999747378752e-06, "rope_theta": 100000.0,
        "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "unk_token_id": 0,
    }  # fmt: skip
    assert "lm_head.weight" not in state_dict and state_dict["model.embed_tokens.weight"].shape == (
        49152,
        576,
    )
    assert state_dict["model.layers.0.self_attn.k_proj.weight"].shape == (192, 576)
    assert (tokenizer["model"], tokenizer["pre"], tokenizer["add_bos_token"]) == ("gpt2", "smollm", False)
    assert len(tokenizer["tokens"]) == 49152 and len(tokenizer["merges"]) == 48900
    assert tokenizer["tokens"][:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert tokenizer["chat_template"].startswith("{% for message in messages %}")


CONFIG_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "tie_word_embeddings",
               "bos_token_id", "eos_token_id", "pad_token_id", "head_dim")  # fmt: skip


@pytest.fixture(scope="module")
def transformers_checkpoint(smollm2_dir):
    """What transformers makes of SmolLM2: its config, the weights of the model it loads (as digests) and its
    tokenizer's vocabulary and chat template (fixtures.smollm2_reference, cached on disk)."""
    oracle("transformers")
    return smollm2_reference(smollm2_dir)


@pytest.fixture(scope="module")
def our_checkpoint(smollm2_path):
    return load_gguf_checkpoint(smollm2_path, progress=False)


@pytest.mark.slow
def test_config_matches_transformers_autoconfig(our_checkpoint, transformers_checkpoint):
    config, _, _ = our_checkpoint
    theirs = transformers_checkpoint["config"]
    for key in CONFIG_KEYS:
        assert config.get(key, theirs[key]) == theirs[key], key
    assert config["rope_theta"] == transformers_checkpoint["rope_theta"]


@pytest.mark.slow
def test_state_dict_matches_transformers(our_checkpoint, transformers_checkpoint):
    _, ours, tokenizer = our_checkpoint
    theirs = transformers_checkpoint["tensors"]
    assert sorted(ours) == sorted(theirs)
    for name, digest in theirs.items():
        assert tensor_digest(ours[name]) == digest, name  # equal bytes: the q/k un-permutation included
    assert tokenizer["tokens"] == transformers_checkpoint["tokens"]
    assert tokenizer["merges"] == transformers_checkpoint["merges"]
    assert tokenizer["chat_template"] == transformers_checkpoint["chat_template"]


# --- hand-built files and bad inputs ------------------------------------------------------------------------


def write_gguf(path: Path, arch: str = "llama", fill=None) -> Path:
    writer = gguf.GGUFWriter(path, arch)
    if fill:
        fill(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_all_metadata_value_types(tmp_path):
    def fill(w):
        for kind, value in [("uint8", 200), ("int8", -5), ("uint16", 60000), ("int16", -300),
                            ("uint32", 4_000_000_000), ("int32", -70000), ("uint64", 2**63), ("int64", -(2**40)),
                            ("float32", 0.1), ("float64", 0.1), ("bool", True), ("string", "héllo")]:  # fmt: skip
            getattr(w, f"add_{kind}")(f"test.{kind}", value)
        w.add_array("test.ints", [1, 2, 3])
        w.add_array("test.floats", [0.5, -1.25])
        w.add_array("test.strings", ["a", "", "ü"])
        w.add_tensor("x", np.arange(6, dtype=np.float32).reshape(2, 3))

    path = write_gguf(tmp_path / "types.gguf", fill=fill)
    ours = GGUFFile(path)
    reference = gguf.GGUFReader(path)
    assert ours.metadata == {
        k: f.contents() for k, f in reference.fields.items() if not k.startswith("GGUF.")
    }
    assert ours.metadata["test.float32"] == float(np.float32(0.1))
    assert torch.equal(ours.load_tensor("x"), torch.arange(6.0).reshape(2, 3))


def test_version_2_reads_and_version_1_is_rejected(tmp_path):
    path = write_gguf(tmp_path / "v.gguf", fill=lambda w: w.add_tensor("x", np.ones(4, dtype=np.float32)))
    raw = bytearray(path.read_bytes())
    raw[4] = 2
    path.write_bytes(raw)
    assert GGUFFile(path).version == 2
    raw[4] = 1
    path.write_bytes(raw)
    with pytest.raises(CorruptWeightsError, match="version 1 is not supported"):
        GGUFFile(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(CorruptWeightsError, match=r"model.gguf is not a readable GGUF file \(starts with"):
        GGUFFile(path)


@pytest.mark.parametrize(("keep", "problem"), [(5000, "truncated header"), (2_000_000, "truncated: tensor")])
def test_truncated_file(smollm2_dir, tmp_path, keep, problem):
    path = tmp_path / "cut.gguf"
    with open(smollm2_dir / SMOLLM2, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(keep))
    with pytest.raises(CorruptWeightsError, match=problem) as err:
        GGUFFile(path)
    assert "\n" not in str(err.value) and "re-download" in str(err.value)


def test_unsupported_tensor_type_names_it(tmp_path):
    def fill(w):
        w.add_tensor("iq", np.zeros((1, 18), dtype=np.uint8), raw_dtype=Q.IQ4_NL)

    gf = GGUFFile(write_gguf(tmp_path / "iq.gguf", fill=fill))
    assert gf.tensors["iq"].type_name == "IQ4_NL" and GGML_TYPES[int(Q.IQ4_NL)][0] == "IQ4_NL"
    with pytest.raises(NotImplementedError, match=r"'iq' .* is IQ4_NL.*supported: F32, F16, .*Q4_1.*Q6_K"):
        gf.load_tensor("iq")


def test_other_architecture_is_refused(tmp_path):
    path = write_gguf(tmp_path / "gpt2.gguf", arch="gpt2")
    with pytest.raises(ValueError, match="'gpt2' model; tinyformers reads GGUF architectures llama"):
        load_gguf_checkpoint(path)


def test_reader_does_not_import_the_oracles():
    import tinyformers.formats.gguf as module

    source = Path(module.__file__).read_text()
    assert not re.search(r"^\s*(import|from) (gguf|transformers)\b", source, re.MULTILINE)


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's convert_hf_to_gguf.py does to HF q/k rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_tiny_llama_mapping_undoes_the_permutation_and_keeps_an_untied_head(tmp_path, capfd):
    rng = np.random.default_rng(0)
    hf = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in [
        ("model.embed_tokens.weight", (5, 8)), ("model.layers.0.self_attn.q_proj.weight", (8, 8)),
        ("model.layers.0.self_attn.k_proj.weight", (4, 8)), ("model.layers.0.input_layernorm.weight", (8,)),
        ("lm_head.weight", (5, 8))]}  # fmt: skip

    def fill(w):
        for key, value in [("block_count", 1), ("embedding_length", 8), ("feed_forward_length", 16),
                           ("attention.head_count", 2), ("attention.head_count_kv", 1), ("context_length", 32),
                           ("vocab_size", 5), ("rope.dimension_count", 4)]:  # fmt: skip
            w.add_uint32(f"llama.{key}", value)
        w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        w.add_tensor("token_embd.weight", hf["model.embed_tokens.weight"])
        w.add_tensor(
            "blk.0.attn_q.weight", llama_cpp_permute(hf["model.layers.0.self_attn.q_proj.weight"], 2)
        )
        w.add_tensor(
            "blk.0.attn_k.weight", llama_cpp_permute(hf["model.layers.0.self_attn.k_proj.weight"], 1)
        )
        w.add_tensor("blk.0.attn_norm.weight", hf["model.layers.0.input_layernorm.weight"])
        w.add_tensor("output.weight", hf["lm_head.weight"])
        w.add_tensor("rope_freqs.weight", np.ones(2, dtype=np.float32))  # llama.cpp-only: dropped

    config, state_dict, _ = load_gguf_checkpoint(write_gguf(tmp_path / "tiny.gguf", fill=fill))
    assert (
        config["tie_word_embeddings"] is False
        and "head_dim" not in config
        and config["rope_theta"] == 10000.0
    )
    assert sorted(state_dict) == sorted(hf)
    for name, value in hf.items():
        assert torch.equal(state_dict[name], torch.from_numpy(value)), name
    assert capfd.readouterr().err == ""  # no progress bar when stderr is not a terminal
