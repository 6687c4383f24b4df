"""T5 / Flan-T5 parity with transformers on random checkpoints: encoder, logits, loss, generation, saving, and a
T5 tokenizer end to end."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import oracle
from fixtures import T5_SHAPE, T5_VARIANTS, T5_VOCAB, reference_t5
from tinyformers.generation.seq2seq import EncoderDecoderCache
from tinyformers.models.t5 import (
    T5Config,
    T5EncoderModel,
    T5ForConditionalGeneration,
    T5Model,
)
from tinyformers.tokenization.sentencepiece import T5Tokenizer

transformers = oracle("transformers")

ATOL = 1e-4
# The decoder's decode-friendly [in, out] matrices run other matmul kernels than transformers': fp32 rounding then
# differs by a few ulp of the largest terms. With initializer_factor=10 the decoder's residual stream reaches ~2e5
# and logits ~±450, so decoder outputs are compared at their own scale: 1e-4 plus 5e-6 of the tensor's largest
# magnitude (~2e-3 for logits; an element left small by cancellation keeps the rounding of the large terms that
# made it). The encoder keeps transformers' layout and is compared to 1e-4.
SCALE_RTOL = 5e-6


def assert_close_at_scale(got: torch.Tensor, want: torch.Tensor) -> None:
    torch.testing.assert_close(got, want, atol=ATOL + SCALE_RTOL * float(want.abs().max()), rtol=0)


@pytest.fixture(scope="module", params=sorted(T5_VARIANTS))
def checkpoint(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    reference_t5(request.param).save_pretrained(directory)
    ref = transformers.T5ForConditionalGeneration.from_pretrained(directory).eval()
    return request.param, directory, ref, T5ForConditionalGeneration.from_pretrained(directory)


def _batch():
    """Three inputs ending in </s>; two right padded (T5 tokenizers pad on the right)."""
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 1000, (3, 11), generator=g)
    lengths = [11, 7, 4]
    mask = (torch.arange(11)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids[torch.arange(3), torch.tensor(lengths) - 1] = 1
    return ids.masked_fill(mask == 0, 0), mask


def _labels():
    labels = torch.randint(3, 1000, (3, 6), generator=torch.Generator().manual_seed(4))
    labels[1, 4:] = -100  # ignored positions, shifted into pad decoder inputs
    return labels


@torch.inference_mode()
def test_logits_and_loss_match(checkpoint):
    variant, _, ref, ours = checkpoint
    assert (ours.lm_head.weight is ours.shared.weight) == (variant == "t5")
    ids, mask = _batch()
    labels = _labels()
    for m in (mask, None):  # padded batch, and the same ids without a mask (pads then count as tokens)
        got = ours(ids, m, labels=labels)
        want = ref(input_ids=ids, attention_mask=m, labels=labels)
        real = mask.bool() if m is not None else torch.ones_like(mask, dtype=torch.bool)
        torch.testing.assert_close(
            got.encoder_last_hidden_state[real], want.encoder_last_hidden_state[real], atol=ATOL, rtol=0
        )
        assert_close_at_scale(got.logits, want.logits)
        torch.testing.assert_close(got.loss, want.loss, atol=ATOL, rtol=1e-6)
    decoder_ids = ref._shift_right(labels.clamp(min=0))
    got = ours(ids[:1], decoder_input_ids=decoder_ids[:1], output_hidden_states=True)
    want = ref(input_ids=ids[:1], decoder_input_ids=decoder_ids[:1], output_hidden_states=True)
    assert_close_at_scale(got.logits, want.logits)
    assert len(got.encoder_hidden_states) == len(want.encoder_hidden_states)
    for a, b in zip(got.encoder_hidden_states, want.encoder_hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    assert len(got.decoder_hidden_states) == len(want.decoder_hidden_states)
    for a, b in zip(got.decoder_hidden_states, want.decoder_hidden_states, strict=True):
        assert_close_at_scale(a, b)


@torch.inference_mode()
def test_base_and_encoder_models_match(checkpoint):
    _, directory, ref, _ = checkpoint
    ids, mask = _batch()
    decoder_ids = ref._shift_right(_labels().clamp(min=0))
    want = transformers.T5Model.from_pretrained(directory).eval()(
        input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids
    )
    got = T5Model.from_pretrained(directory)(ids, mask, decoder_input_ids=decoder_ids)
    assert_close_at_scale(got.last_hidden_state, want.last_hidden_state)
    encoder = T5EncoderModel.from_pretrained(directory)
    real = mask.bool()
    want = transformers.T5EncoderModel.from_pretrained(directory).eval()(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(
        encoder(ids, mask).last_hidden_state[real], want.last_hidden_state[real], atol=ATOL, rtol=0
    )


GENERATION = {
    "greedy": dict(max_new_tokens=16),
    "default-length": dict(),  # 20 new tokens, as transformers
    "beam": dict(max_new_tokens=10, num_beams=4, num_return_sequences=2, length_penalty=0.6),
    "beam-early": dict(max_new_tokens=8, num_beams=3, early_stopping=True, length_penalty=1.5),
    "penalties": dict(max_new_tokens=10, repetition_penalty=1.3, no_repeat_ngram_size=2, min_new_tokens=5),
    "extra-eos": dict(max_new_tokens=12, eos_token_id=[1, 7, 21, 500]),  # common tokens as extra stops
}


@pytest.mark.parametrize("case", sorted(GENERATION))
@torch.inference_mode()
def test_generation_identical(checkpoint, case):
    """A padded batch, ids identical to transformers' (the start token first, finished rows padded)."""
    _, _, ref, ours = checkpoint
    ids, mask = _batch()
    kw = GENERATION[case]
    got = ours.generate(ids, attention_mask=mask, **kw)
    assert torch.equal(got, ref.generate(input_ids=ids, attention_mask=mask, **kw))
    assert bool((got[:, 0] == 0).all())


@torch.inference_mode()
def test_generation_single_and_inferred_mask(checkpoint):
    _, _, ref, ours = checkpoint
    ids, mask = _batch()
    kw = dict(max_new_tokens=12)
    assert torch.equal(ours.generate(ids[:1], **kw), ref.generate(input_ids=ids[:1], **kw))
    # Without a mask, padding is inferred from the pad token, as transformers does.
    assert torch.equal(ours.generate(ids, **kw), ours.generate(ids, attention_mask=mask, **kw))


@torch.inference_mode()
def test_sampling(checkpoint):
    _, _, _, ours = checkpoint
    ids, mask = _batch()
    greedy = ours.generate(ids, attention_mask=mask, max_new_tokens=10)
    assert torch.equal(
        ours.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=True, top_k=1), greedy
    )
    torch.manual_seed(0)
    sampled = ours.generate(
        ids, attention_mask=mask, max_new_tokens=10, do_sample=True, num_return_sequences=3
    )
    assert sampled.shape[0] == 9 and bool((sampled[:, 0] == 0).all())
    assert bool(((sampled >= 0) & (sampled < T5_VOCAB)).all())


@torch.inference_mode()
def test_decoder_input_ids_continue_the_output(checkpoint):
    _, _, ref, ours = checkpoint
    ids, _ = _batch()
    start = torch.tensor([[0, 5, 6]])
    for prefix in (start, start[:, 1:]):  # with or without the start token: it is prepended if missing
        kw = dict(decoder_input_ids=prefix, max_new_tokens=8)
        assert torch.equal(ours.generate(ids[:1], **kw), ref.generate(input_ids=ids[:1], **kw))


@torch.inference_mode()
def test_beam_cache_keeps_cross_attention_per_input(checkpoint):
    _, _, _, ours = checkpoint
    ids, mask = _batch()
    encoded = ours.encode(ids, mask)
    cache = ours.allocate_cache(6, 8, encoded, mask)
    assert isinstance(cache, EncoderDecoderCache) and cache.rows_per_input == 2
    keys = cache.cross_kv[0][0].clone()
    cache.reorder(torch.tensor([1, 1, 2, 3, 5, 4]))  # within inputs: nothing to move
    assert torch.equal(cache.cross_kv[0][0], keys)
    cache.reorder(torch.tensor([5, 4, 3, 2, 1, 0]))  # across inputs: rows follow
    assert torch.equal(cache.cross_kv[0][0], keys.flip(0))


@torch.inference_mode()
def test_save_loads_in_transformers(checkpoint, tmp_path):
    variant, _, ref, ours = checkpoint
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["tie_word_embeddings"] is (variant == "t5")
    assert config["scale_decoder_outputs"] is (variant == "t5")
    again = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    ids, mask = _batch()
    decoder_ids = torch.tensor([[0, 5, 9, 3]] * 3)
    want = ref(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    got = again(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    reloaded = T5ForConditionalGeneration.from_pretrained(tmp_path)
    assert torch.equal(reloaded.generate(ids, max_new_tokens=6), ours.generate(ids, max_new_tokens=6))


@torch.inference_mode()
def test_from_config_is_usable():
    torch.manual_seed(0)
    model = T5ForConditionalGeneration.from_config(T5Config(**T5_SHAPE, initializer_factor=10.0))
    out = model.generate(torch.tensor([[5, 6, 7, 1]]), max_new_tokens=5)
    assert out.shape == (1, 6) and int(out[0, 0]) == 0
    untied = T5ForConditionalGeneration.from_config(T5Config(**T5_SHAPE, tie_word_embeddings=False))
    assert untied.lm_head.weight is not untied.shared.weight and not untied.config.scale_decoder_outputs


# --------------------------------------------------------------------------------------------------------------
# End to end with a T5 tokenizer: text -> ids -> generate -> text, both libraries on the same checkpoint
# --------------------------------------------------------------------------------------------------------------


@torch.inference_mode()
def test_text_to_text_end_to_end(checkpoint, t5_tokenizer_dir):
    _, _, ref, ours = checkpoint
    theirs_tok = transformers.T5Tokenizer.from_pretrained(str(t5_tokenizer_dir))
    ours_tok = T5Tokenizer.from_pretrained(t5_tokenizer_dir)
    texts = ["translate English to German: The house is wonderful.", "summarize: I am a cat."]
    for text in texts:
        enc = ours_tok(text, return_tensors="pt")
        out = ours.generate(**enc, max_new_tokens=12)
        want = ref.generate(**theirs_tok(text, return_tensors="pt"), max_new_tokens=12)
        assert torch.equal(out, want)
        for skip in (False, True):
            assert ours_tok.decode(out[0], skip_special_tokens=skip) == theirs_tok.decode(
                want[0], skip_special_tokens=skip
            )
    batch = ours_tok(texts, padding=True, return_tensors="pt")
    out = ours.generate(**batch, num_beams=3, max_new_tokens=8)
    want = ref.generate(**theirs_tok(texts, padding=True, return_tensors="pt"), num_beams=3, max_new_tokens=8)
    assert torch.equal(out, want)
    assert ours_tok.batch_decode(out, skip_special_tokens=True) == theirs_tok.batch_decode(
        want, skip_special_tokens=True
    )


# --------------------------------------------------------------------------------------------------------------
# Config reading and bad input
# --------------------------------------------------------------------------------------------------------------


def test_config_fields():
    flan = T5Config.from_dict(
        {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "num_layers": 8}
    )
    assert (flan.dense_act_fn, flan.is_gated_act, flan.num_decoder_layers) == ("gelu_new", True, 8)
    assert flan.scale_decoder_outputs is False
    # transformers 5 writes tie_word_embeddings=True with scale_decoder_outputs=False for Flan-T5
    assert T5Config(tie_word_embeddings=True, scale_decoder_outputs=False).scale_decoder_outputs is False
    assert T5Config().scale_decoder_outputs is True
    assert T5Config(feed_forward_proj="gated-silu").dense_act_fn == "silu"


def test_bad_inputs(checkpoint):
    _, _, _, ours = checkpoint
    with pytest.raises(ValueError, match="feed_forward_proj 'swiglu-gelu' is not supported"):
        T5Config(feed_forward_proj="swiglu-gelu")
    with pytest.raises(ValueError, match="feed_forward_proj 'gated-mish' is not supported"):
        T5Config(feed_forward_proj="gated-mish")
    ids, _ = _batch()
    startless = T5ForConditionalGeneration.from_config(
        T5Config(**{**T5_SHAPE, "decoder_start_token_id": None})
    )
    with pytest.raises(ValueError, match="needs decoder_start_token_id"):
        startless.generate(ids, max_new_tokens=3)
    with pytest.raises(ValueError, match="decoder_start_token_id and config.pad_token_id"):
        startless(ids, labels=_labels())
    with pytest.raises(ValueError, match="needs input_ids"):
        ours.generate(max_new_tokens=3)
    with pytest.raises(ValueError, match="pass exactly one of decoder_input_ids"):
        ours(ids)
    base = T5Model.from_config(T5Config(**T5_SHAPE))
    with pytest.raises(ValueError, match="T5Model has no LM head.*use T5ForConditionalGeneration"):
        base(ids, labels=_labels())
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_new_token'"):
        ours.generate(ids, max_new_token=3)
