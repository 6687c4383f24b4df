"""Llama parity with transformers on random checkpoints: GQA, tied/untied head, rope scaling, generation."""

from __future__ import annotations

import pytest
import torch

from conftest import oracle
from fixtures import llama_batch, llama_config, random_checkpoint
from tinyformers import AutoConfig, AutoModelForCausalLM
from tinyformers.models.llama import LlamaConfig, LlamaForCausalLM

transformers = oracle("transformers")

ATOL = 1e-4


def _checkpoint(tmp_path, **kw):
    ref = random_checkpoint(tmp_path, "LlamaForCausalLM", llama_config(**kw))
    return ref, AutoModelForCausalLM.from_pretrained(tmp_path)


VARIANTS = {
    "gqa-tied": dict(tie_word_embeddings=True),
    "gqa-untied": dict(tie_word_embeddings=False),
    "mha-bias": dict(num_key_value_heads=4, attention_bias=True, mlp_bias=True),
    "rope-linear": dict(rope_scaling={"rope_type": "linear", "factor": 2.0}),
    "rope-llama3": dict(
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        }
    ),
    "head-dim": dict(head_dim=32),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@torch.inference_mode()
def test_logits_and_loss_match(variant, tmp_path):
    ref, ours = _checkpoint(tmp_path, **VARIANTS[variant])
    assert isinstance(ours, LlamaForCausalLM)
    ids, mask = llama_batch()
    got, want = ours(ids, mask, labels=ids), ref(input_ids=ids, attention_mask=mask, labels=ids)
    real = mask.bool()
    torch.testing.assert_close(got.logits[real], want.logits[real], atol=ATOL, rtol=0)
    full = ours(ids[:1], labels=ids[:1])
    torch.testing.assert_close(full.loss, ref(input_ids=ids[:1], labels=ids[:1]).loss, atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant", ["gqa-tied", "gqa-untied", "rope-llama3"])
@torch.inference_mode()
def test_greedy_generation_identical(variant, tmp_path):
    ref, ours = _checkpoint(tmp_path, **VARIANTS[variant])
    ids, mask = llama_batch()
    want = ref.generate(ids[:1], max_new_tokens=30, do_sample=False)
    assert torch.equal(ours.generate(ids[:1], max_new_tokens=30, do_sample=False), want)
    want = ref.generate(ids, attention_mask=mask, max_new_tokens=24, do_sample=False)
    assert torch.equal(ours.generate(ids, attention_mask=mask, max_new_tokens=24, do_sample=False), want)


@torch.inference_mode()
def test_beam_search_identical(tmp_path):
    ref, ours = _checkpoint(tmp_path)
    ids, _ = llama_batch()
    kw = dict(max_new_tokens=12, num_beams=4, num_return_sequences=2, length_penalty=0.6, do_sample=False)
    assert torch.equal(ours.generate(ids[:1], **kw), ref.generate(ids[:1], **kw))


@torch.inference_mode()
def test_save_loads_in_transformers(tmp_path):
    ref, ours = _checkpoint(tmp_path / "a", tie_word_embeddings=False)
    ours.save_pretrained(tmp_path / "b")
    again = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "b").eval()
    ids, _ = llama_batch()
    torch.testing.assert_close(again(ids).logits, ref(ids).logits, atol=0, rtol=0)
    config = AutoConfig.from_pretrained(tmp_path / "b")
    assert config.rope_parameters == {"rope_theta": 100000.0, "rope_type": "default"}


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        LlamaConfig(num_attention_heads=6, num_key_value_heads=4)
    with pytest.raises(ValueError, match="rope_type 'yarn2' is not supported"):
        LlamaConfig(rope_scaling={"rope_type": "yarn2", "factor": 2.0})


def test_too_long_prompt_is_an_error(tmp_path):
    _, ours = _checkpoint(tmp_path, max_position_embeddings=16)
    with pytest.raises(ValueError, match="has 16 positions"):
        ours(torch.ones(1, 20, dtype=torch.long))
