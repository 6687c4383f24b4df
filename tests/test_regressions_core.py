"""Regressions in the model core (loading, configs), each found by a review and failing before its fix."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from conftest import oracle
from tinyformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

transformers = oracle("transformers")

BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
T5 = dict(
    vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4, feed_forward_proj="gated-gelu"
)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A small BertModel checkpoint written by transformers."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bert")
    transformers.BertModel(transformers.BertConfig(**BERT)).save_pretrained(path)
    return path


def checkpoint_keys(directory) -> set[str]:
    with safe_open(directory / "model.safetensors", "pt") as f:
        return set(f.keys())


# ---- from_pretrained leaves the caller's config alone -------------------------------------------------------------


def test_from_pretrained_does_not_change_the_config_passed_in(bert_dir):
    config = BertConfig.from_pretrained(bert_dir)
    before = config.to_dict()
    model = BertForSequenceClassification.from_pretrained(bert_dir, config=config, num_labels=5)
    assert model.config.num_labels == 5
    assert config.to_dict() == before
    assert not hasattr(config, "_name_or_path") or config._name_or_path == str(bert_dir)
    assert model.config is not config


def test_t5_head_tying_decided_on_load_stays_off_the_callers_config(tmp_path):
    # An untied head (Flan-T5's layout) whose config says tie_word_embeddings=True, as transformers 5 writes it:
    # loading unties the model's config, not the one the caller still holds.
    torch.manual_seed(0)
    reference = transformers.T5ForConditionalGeneration(
        transformers.T5Config(**T5, tie_word_embeddings=False)
    )
    # transformers 5 ties the head even when told not to: give it its own, as Flan-T5 has
    reference.lm_head.weight = torch.nn.Parameter(torch.randn(T5["vocab_size"], T5["d_model"]))
    reference.save_pretrained(tmp_path)
    config = T5Config(**T5, tie_word_embeddings=True)
    model = T5ForConditionalGeneration.from_pretrained(tmp_path, config=config)
    assert model.config.tie_word_embeddings is False
    assert config.tie_word_embeddings is True


# ---- a config that does not match its weights names the tensor as the checkpoint does ---------------------------


def _with_config(directory, tmp_path, **changes):
    out = tmp_path / "edited"
    out.mkdir()
    (out / "model.safetensors").symlink_to(directory / "model.safetensors")
    config = json.loads((directory / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, **changes}))
    return out


def test_mismatched_shape_names_the_checkpoint_tensor(bert_dir, tmp_path):
    edited = _with_config(bert_dir, tmp_path, vocab_size=120)
    with pytest.raises(ValueError, match="config does not match the weights") as error:
        BertModel.from_pretrained(edited)
    name = "embeddings.word_embeddings.weight"
    assert name in checkpoint_keys(bert_dir)
    assert f"'{name}'" in str(error.value)


def test_mismatched_shape_names_the_checkpoint_tensor_under_a_head(bert_dir, tmp_path):
    # A bare base-model checkpoint loaded into a head model: our key gains the "bert." prefix, the file's has none.
    edited = _with_config(bert_dir, tmp_path, intermediate_size=40)
    with pytest.raises(ValueError, match="config does not match the weights") as error:
        BertForSequenceClassification.from_pretrained(edited)
    message = str(error.value)
    named = message.split("'")[1]
    assert named in checkpoint_keys(bert_dir)
    assert "intermediate.dense" in named


def test_mismatched_fused_projection_names_every_checkpoint_tensor(tmp_path):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    edited = _with_config(tmp_path / "llama", tmp_path, num_key_value_heads=4)
    with pytest.raises(ValueError, match="config does not match the weights") as error:
        LlamaForCausalLM.from_pretrained(edited)
    names = [part for i, part in enumerate(str(error.value).split("'")) if i % 2 == 1][:3]
    assert names == [f"model.layers.0.self_attn.{x}_proj.weight" for x in "qkv"]
    assert set(names) <= checkpoint_keys(tmp_path / "llama")


def test_a_missing_relative_folder_is_named_as_a_folder(tmp_path, monkeypatch):
    """``.assets/minilm`` where there is none: the error says no such folder, not that the name is a bad hub id."""
    from tinyformers import AutoTokenizer
    from tinyformers.hub import ModelNotFoundError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ModelNotFoundError, match=r"'\.assets/minilm' is neither a local directory nor a hub id"
    ):
        AutoTokenizer.from_pretrained(".assets/minilm")
