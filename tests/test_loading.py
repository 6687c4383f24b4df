"""Config and weight files: round trips with transformers, every weight layout, and clear errors on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

import tinyformers
from conftest import oracle
from tinyformers import AutoConfig, AutoModel, BertConfig
from tinyformers.formats.safetensors import CorruptWeightsError
from tinyformers.hub import ModelNotFoundError

transformers = oracle("transformers")

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


@pytest.fixture()
def tiny_dir(tmp_path):
    """A small BertModel checkpoint written by transformers."""
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(**TINY)).save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


def _ids():
    return torch.tensor([[2, 5, 7, 9, 11], [3, 4, 5, 6, 0]])


def _same_as_transformers(ours_dir, ref_dir=None):
    ref = transformers.BertModel.from_pretrained(ref_dir or ours_dir).eval()
    ours = AutoModel.from_pretrained(ours_dir)
    with torch.inference_mode():
        torch.testing.assert_close(
            ours(_ids()).last_hidden_state, ref(_ids()).last_hidden_state, atol=1e-5, rtol=0
        )


# ---- config -----------------------------------------------------------------------------------------------------


def test_config_keeps_unknown_keys_and_round_trips(minilm_dir, tmp_path):
    config = AutoConfig.from_pretrained(minilm_dir)
    assert isinstance(config, BertConfig) and config.hidden_size == 384
    assert config.gradient_checkpointing is False  # not a BertConfig field: kept as is
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["gradient_checkpointing"] is False and saved["model_type"] == "bert"
    assert AutoConfig.from_pretrained(tmp_path) == config
    ref = transformers.AutoConfig.from_pretrained(tmp_path)
    assert ref.hidden_size == 384 and ref.num_hidden_layers == 6


def test_config_labels(minilm_dir, tmp_path):
    config = AutoConfig.from_pretrained(minilm_dir, num_labels=3)
    assert config.num_labels == 3 and config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    named = AutoConfig.from_pretrained(minilm_dir, id2label={"0": "neg", "1": "pos"})
    assert named.id2label == {0: "neg", 1: "pos"} and named.label2id == {"neg": 0, "pos": 1}
    named.save_pretrained(tmp_path)
    ref = transformers.AutoConfig.from_pretrained(tmp_path)
    assert ref.id2label == {0: "neg", 1: "pos"} and ref.label2id == {"neg": 0, "pos": 1}


def test_config_written_by_transformers_loads(tmp_path):
    transformers.BertConfig(num_labels=4, hidden_size=48, num_attention_heads=6).save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert (config.num_labels, config.hidden_size, config.num_attention_heads) == (4, 48, 6)


def test_unknown_model_type_lists_supported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "wizard"}))
    with pytest.raises(ValueError, match="model_type 'wizard'.*supported model types: .*bert"):
        AutoConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="supported model types"):
        AutoModel.from_pretrained(tmp_path)


def test_bad_json_names_file_and_position(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert",\n "hidden_size": }')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON \(line 2"):
        AutoConfig.from_pretrained(tmp_path)


def test_invalid_config_values(tmp_path):
    with pytest.raises(ValueError, match="divisible by num_attention_heads"):
        BertConfig(hidden_size=50, num_attention_heads=12)
    with pytest.raises(ValueError, match="unknown activation 'gelu9'"):
        BertConfig(hidden_act="gelu9")


def test_missing_config_and_nonexistent_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json in"):
        AutoModel.from_pretrained(tmp_path)
    with pytest.raises(ModelNotFoundError, match="neither a local directory nor a hub id"):
        AutoModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ModelNotFoundError, match="neither a local directory nor a hub id"):
        AutoConfig.from_pretrained("some-org/some-model-that-is-not-cached")


def test_missing_weights(tmp_path):
    BertConfig(**TINY).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no weights in .*from_config"):
        AutoModel.from_pretrained(tmp_path)


def test_hub_cache_layout_is_found(tiny_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    commit = "a" * 40
    snapshot = cache / "models--org--tiny" / "snapshots" / commit
    shutil.copytree(tiny_dir, snapshot)
    (cache / "models--org--tiny" / "refs").mkdir()
    (cache / "models--org--tiny" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert AutoModel.from_pretrained("org/tiny").config.hidden_size == 32
    assert AutoConfig.from_pretrained("org/tiny", revision=commit).hidden_size == 32
    with pytest.raises(ModelNotFoundError):
        AutoConfig.from_pretrained("org/tiny", revision="v2")


# ---- weights ----------------------------------------------------------------------------------------------------


def test_corrupt_safetensors(tiny_dir):
    weights = tiny_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CorruptWeightsError, match="model.safetensors is not a readable safetensors file.*truncated"
    ):
        AutoModel.from_pretrained(tiny_dir)
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + data[24:])
    with pytest.raises(CorruptWeightsError, match="header is not JSON"):
        AutoModel.from_pretrained(tiny_dir)
    weights.write_bytes(b"abc")
    with pytest.raises(CorruptWeightsError, match="too short"):
        AutoModel.from_pretrained(tiny_dir)


def test_corrupt_pytorch_bin(tmp_path):
    BertConfig(**TINY).save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"garbage" * 10)
    with pytest.raises(CorruptWeightsError, match="could not be read as a PyTorch checkpoint"):
        AutoModel.from_pretrained(tmp_path)


def test_shape_mismatch(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    config["vocab_size"] = 120
    (tiny_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match=r"has shape \[99, 32\] .* expects \[120, 32\].*ignore_mismatched_sizes"
    ):
        AutoModel.from_pretrained(tiny_dir)
    model = AutoModel.from_pretrained(tiny_dir, ignore_mismatched_sizes=True)
    assert model.embeddings.word.weight.shape == (120, 32)


def test_pytorch_bin_and_sharded_from_transformers(tmp_path):
    torch.manual_seed(0)
    ref = transformers.BertModel(transformers.BertConfig(**TINY))
    # transformers 5 only writes safetensors; an older-style .bin is a plain torch.save of the state dict.
    ref.config.save_pretrained(tmp_path / "bin")
    torch.save(ref.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    _same_as_transformers(tmp_path / "bin")
    ref.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    _same_as_transformers(tmp_path / "sharded")


def test_our_sharded_and_bin_saves_load_in_transformers(tiny_dir, tmp_path):
    ours = AutoModel.from_pretrained(tiny_dir)
    ours.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert len(list((tmp_path / "sharded").glob("model-*-of-*.safetensors"))) > 1
    _same_as_transformers(tmp_path / "sharded", ref_dir=tmp_path / "sharded")
    ours.save_pretrained(tmp_path / "bin", safe_serialization=False)
    _same_as_transformers(tmp_path / "bin", ref_dir=tmp_path / "bin")
    # Saving again in another layout into the same folder must not leave the old files shadowing the new ones.
    ours.save_pretrained(tmp_path / "sharded")
    assert not list((tmp_path / "sharded").glob("model-*-of-*.safetensors"))
    assert not (tmp_path / "sharded" / "model.safetensors.index.json").exists()


def test_head_checkpoint_loads_into_base_model_and_back(tmp_path):
    torch.manual_seed(0)
    ref = transformers.BertForSequenceClassification(transformers.BertConfig(**TINY)).eval()
    ref.save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tmp_path)  # strips the "bert." prefix
    with torch.inference_mode():
        torch.testing.assert_close(
            base(_ids()).pooler_output, ref.bert(_ids()).pooler_output, atol=1e-5, rtol=0
        )


def test_legacy_layernorm_gamma_beta_names(tiny_dir):
    from tinyformers.formats.safetensors import load_file, save_file

    state = load_file(tiny_dir / "model.safetensors")
    renamed = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v.clone()
        for k, v in state.items()
    }
    assert any(k.endswith("gamma") for k in renamed)
    save_file(renamed, tiny_dir / "model.safetensors")
    model = AutoModel.from_pretrained(tiny_dir)
    torch.testing.assert_close(model.embeddings.norm.weight, state["embeddings.LayerNorm.weight"])


def test_dtype_option(tiny_dir):
    half = AutoModel.from_pretrained(tiny_dir, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert AutoModel.from_pretrained(tiny_dir, torch_dtype="float16").dtype == torch.float16
    assert AutoModel.from_pretrained(tiny_dir, dtype="auto").dtype == torch.float32
    with pytest.raises(ValueError, match="dtype 'int3' is not supported"):
        AutoModel.from_pretrained(tiny_dir, dtype="int3")


def test_auto_class_rejects_task_the_model_lacks(tiny_dir):
    config = AutoConfig.from_pretrained(tiny_dir)
    with pytest.raises(TypeError, match="needs a BertConfig"):
        tinyformers.BertModel.from_config(tinyformers.PretrainedConfig())
    assert tinyformers.AutoModelForTokenClassification.from_config(config).classifier.out_features == 2


def test_import_is_lazy():
    code = (
        "import sys, tinyformers; "
        "heavy = [m for m in ('torch', 'jinja2', 'fastapi', 'transformers', 'tinyformers.models.bert') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_loading_a_model_imports_neither_the_compiler_nor_sympy(smollm2_dir):
    """A meta-device build with the initialisers on imports torch._dynamo (through normal_'s reference
    implementation), and to_empty() on meta buffers imports sympy: seconds of a cold start, for nothing."""
    gguf = smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf"
    code = (
        "import sys, torch; from tinyformers import AutoModelForCausalLM; "
        f"model = AutoModelForCausalLM.from_pretrained({str(gguf)!r}); "
        "print(','.join(m for m in ('torch._dynamo', 'sympy', 'torch.fx.experimental.symbolic_shapes') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout


def test_an_empty_build_restores_the_initialisers_even_when_it_fails():
    from tinyformers.modeling import empty_build

    before = torch.nn.init.normal_
    with pytest.raises(ValueError), empty_build():
        assert torch.nn.init.normal_ is not before  # switched off inside
        raise ValueError("a model that fails to build")
    assert torch.nn.init.normal_ is before
    assert torch.nn.init.normal_(torch.zeros(1000)).std() > 0.5  # it initialises again
