"""``output_attentions=True`` on the decoder-only families: every layer's attention probabilities, as transformers
returns them (GPT-2 with its scaling options, Llama with grouped-query attention), with and without padding."""

from __future__ import annotations

import pytest
import torch

from conftest import oracle
from fixtures import left_padded, llama_config, random_checkpoint
from tinyformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)
from tinyformers.models.t5 import T5EncoderModel

transformers = oracle("transformers")

VOCAB = 120


def _save(tmp_path_factory, model_class: str, config):
    directory = tmp_path_factory.mktemp(model_class)
    random_checkpoint(directory, model_class, config)
    return directory


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=48, n_layer=2, n_head=4, scale_attn_by_inverse_layer_idx=True
    )
    config.pad_token_id = 0
    return _save(tmp_path_factory, "GPT2ForSequenceClassification", config)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    config = llama_config(vocab_size=VOCAB, max_position_embeddings=64, rope_theta=10000.0, pad_token_id=None)
    return _save(tmp_path_factory, "LlamaForCausalLM", config)  # grouped-query attention


def _batch(padded: bool):
    """Two rows, the second left-padded, or the first row alone."""
    ids, mask = left_padded(VOCAB, [0, 4], length=11, seed=5)
    return (ids, mask) if padded else (ids[:1], mask[:1])


def _compare(ours, theirs, mask):
    assert len(ours) == len(theirs)
    real = mask.bool()[:, None, :, None] & mask.bool()[:, None, None, :]  # real query x real key
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a * real, b * real, atol=1e-5, rtol=0)
        sums = a.sum(-1)[mask.bool()[:, None].expand(-1, a.shape[1], -1)]  # each real query's row
        torch.testing.assert_close(sums, torch.ones_like(sums))


def _reference(cls, directory, ids, mask, **kwargs):
    model = cls.from_pretrained(directory, attn_implementation="eager").eval()
    with torch.inference_mode():
        return model(ids, attention_mask=mask, output_attentions=True, **kwargs)


@torch.inference_mode()
@pytest.mark.parametrize("padded", [False, True])
def test_gpt2_attentions(gpt2, padded):
    ids, mask = _batch(padded)
    ref = _reference(transformers.GPT2Model, gpt2, ids, mask)
    ours = AutoModel.from_pretrained(gpt2)(ids, attention_mask=mask, output_attentions=True)
    _compare(ours.attentions, ref.attentions, mask)
    real = mask.bool()  # padding positions hold different garbage in each library
    torch.testing.assert_close(ours.last_hidden_state[real], ref.last_hidden_state[real], atol=1e-4, rtol=0)
    head = AutoModelForSequenceClassification.from_pretrained(gpt2)(ids, mask, output_attentions=True)
    _compare(head.attentions, ref.attentions, mask)  # heads pass them on


@torch.inference_mode()
@pytest.mark.parametrize("padded", [False, True])
def test_llama_attentions(llama, padded):
    ids, mask = _batch(padded)
    ref = _reference(transformers.LlamaForCausalLM, llama, ids, mask)
    model = AutoModelForCausalLM.from_pretrained(llama)
    ours = model(ids, attention_mask=mask, output_attentions=True)
    _compare(ours.attentions, ref.attentions, mask)
    real = mask.bool()  # padding positions hold different garbage in each library
    torch.testing.assert_close(ours.logits[real], ref.logits[real], atol=1e-4, rtol=0)
    assert model(ids, attention_mask=mask).attentions is None  # only when asked for
    model.config.output_attentions = True  # or set in the config, as transformers
    assert len(model(ids, attention_mask=mask).attentions) == 2


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    config = transformers.T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        decoder_start_token_id=0,
        pad_token_id=0,
    )
    return _save(tmp_path_factory, "T5ForConditionalGeneration", config)


@torch.inference_mode()
def test_t5_encoder_decoder_and_cross_attentions(t5):
    ids, mask = _batch(padded=True)
    target = ids[:, :5].clamp(min=1)
    ref = _reference(transformers.T5ForConditionalGeneration, t5, ids, mask, decoder_input_ids=target)
    ours = AutoModelForSeq2SeqLM.from_pretrained(t5)(
        ids, attention_mask=mask, decoder_input_ids=target, output_attentions=True
    )
    _compare(ours.encoder_attentions, ref.encoder_attentions, mask)
    every_target = torch.ones_like(target)
    _compare(ours.decoder_attentions, ref.decoder_attentions, every_target)
    assert len(ours.cross_attentions) == len(ref.cross_attentions) == 2
    real = mask.bool()[:, None, None, :]  # target queries over source keys
    for a, b in zip(ours.cross_attentions, ref.cross_attentions, strict=True):
        torch.testing.assert_close(a * real, b * real, atol=1e-5, rtol=0)
    # the same fields, in transformers' order (the cache aside: it is not an output here)
    assert list(ours.keys()) == [k for k in ref.keys() if k not in ("past_key_values", "cache")]
    encoder = T5EncoderModel.from_pretrained(t5)(ids, attention_mask=mask, output_attentions=True)
    _compare(encoder.attentions, ref.encoder_attentions, mask)
