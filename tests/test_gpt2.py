"""GPT-2 parity against transformers: random checkpoints that transformers builds and saves, loaded by us."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import oracle
from fixtures import random_checkpoint
from tinyformers.generation import StaticKVCache
from tinyformers.models.gpt2 import (
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    GPT2Model,
)

transformers = oracle("transformers")

ATOL = 1e-4
TINY = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128, initializer_range=0.2)
# GPT-2 small's width, heads and vocabulary with fewer layers, so the test stays fast.
SMALL = dict(n_layer=2, n_embd=768, n_head=12, initializer_range=0.2)


def hf_checkpoint(tmp_path_factory, name: str, cls, **config):
    directory = tmp_path_factory.mktemp(name)
    return random_checkpoint(directory, cls, transformers.GPT2Config(**config)), directory


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return hf_checkpoint(tmp_path_factory, "tiny", "GPT2LMHeadModel", **TINY)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return hf_checkpoint(tmp_path_factory, "small", "GPT2LMHeadModel", **SMALL)


def random_ids(batch: int, length: int, vocab: int = 1000, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@torch.inference_mode()
def test_small_logits_hidden_states_and_loss_match(small):
    ref_model, directory = small
    model = GPT2LMHeadModel.from_pretrained(directory)
    ids = random_ids(2, 12, vocab=50257)
    ours = model(ids, labels=ids, output_hidden_states=True)
    ref = ref_model(ids, labels=ids, output_hidden_states=True)
    torch.testing.assert_close(ours.logits, ref.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.loss, ref.loss, atol=ATOL, rtol=0)
    assert len(ours.hidden_states) == len(ref.hidden_states) == 3
    for a, b in zip(ours.hidden_states, ref.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


@torch.inference_mode()
def test_loss_ignores_minus_100(tiny):
    ref_model, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory)
    ids = random_ids(2, 9)
    labels = ids.clone()
    labels[:, :4] = -100
    torch.testing.assert_close(
        model(ids, labels=labels).loss, ref_model(ids, labels=labels).loss, atol=ATOL, rtol=0
    )


def test_skip_logits_gives_the_same_loss_and_gradients_from_the_labelled_positions(tiny):
    """What the Trainer asks for while training: the head runs on labelled positions only, logits are None."""
    ref_model, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory)
    ids = random_ids(3, 10)
    labels = ids.clone()
    labels[:, :4] = -100  # a prompt mask
    labels[2, 7:] = -100  # padding
    out = model(ids, labels=labels, skip_logits=True)
    assert out.logits is None
    want = ref_model(ids, labels=labels).loss
    torch.testing.assert_close(out.loss, want, atol=ATOL, rtol=0)
    out.loss.backward()
    want.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    ours = model.weight_map.to_hf(grads, model.config)
    for name in ("transformer.wte.weight", "transformer.h.1.mlp.c_fc.weight", "transformer.ln_f.weight"):
        torch.testing.assert_close(ours[name], ref_model.get_parameter(name).grad, atol=ATOL, rtol=0)


@torch.inference_mode()
def test_left_padding_matches_on_real_tokens(tiny):
    ref_model, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory)
    ids = random_ids(3, 8)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :5] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ours = model(ids, attention_mask=mask, position_ids=positions).logits
    ref = ref_model(ids, attention_mask=mask, position_ids=positions).logits
    real = mask.bool()
    assert not ours.isnan().any()
    torch.testing.assert_close(ours[real], ref[real], atol=ATOL, rtol=0)
    # A left-padded row gives the same logits as the unpadded sequence alone.
    alone = model(ids[2:, 5:]).logits
    torch.testing.assert_close(ours[2, 5:], alone[0], atol=ATOL, rtol=0)


@torch.inference_mode()
def test_cache_decode_equals_full_forward(tiny):
    _, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory)
    ids = random_ids(2, 10)
    full = model(ids).logits
    cache = model.allocate_cache(2, 16)
    assert isinstance(cache, StaticKVCache)
    first = model(ids[:, :6], cache=cache).logits
    steps = [model(ids[:, i : i + 1], cache=cache).logits for i in range(6, 10)]
    torch.testing.assert_close(torch.cat([first, *steps], dim=1), full, atol=ATOL, rtol=0)
    assert cache.length == 10
    # a chunk of several tokens after a prefix is causal within itself
    cache = model.allocate_cache(2, 16)
    model(ids[:, :4], cache=cache)
    torch.testing.assert_close(model(ids[:, 4:], cache=cache).logits, full[:, 4:], atol=ATOL, rtol=0)


@torch.inference_mode()
@pytest.mark.parametrize("keep", [[0, 2], [0, 1], [2]])
def test_cache_with_rows_dropped_decodes_like_the_kept_rows_alone(tiny, keep):
    _, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory)
    ids = random_ids(3, 9)
    cache = model.allocate_cache(3, 16)
    model(ids[:, :6], cache=cache)
    cache.reorder(torch.tensor(keep))  # finished rows leave the batch
    assert cache.batch_size == len(keep)
    steps = model(ids[keep, 6:], cache=cache).logits
    torch.testing.assert_close(steps, model(ids[keep]).logits[:, 6:], atol=ATOL, rtol=0)


@torch.inference_mode()
def test_base_model_loads_from_head_checkpoint_and_bare_checkpoint(tiny, tmp_path_factory):
    ref_model, directory = tiny
    model = GPT2Model.from_pretrained(directory)
    ids = random_ids(1, 7)
    torch.testing.assert_close(
        model(ids).last_hidden_state, ref_model.transformer(ids).last_hidden_state, atol=ATOL, rtol=0
    )
    ref_base, bare = hf_checkpoint(tmp_path_factory, "bare", "GPT2Model", **TINY)
    lm = GPT2LMHeadModel.from_pretrained(bare)  # no "transformer." prefix; the head is the tied embedding
    torch.testing.assert_close(lm.lm_head.weight, ref_base.wte.weight)


def test_legacy_attention_mask_buffers_are_ignored(tiny, tmp_path, caplog):
    from safetensors.torch import load_file, save_file

    _, directory = tiny
    state = load_file(directory / "model.safetensors")
    state["transformer.h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 128, 128))
    state["transformer.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with caplog.at_level("WARNING", logger="tinyformers"):
        GPT2LMHeadModel.from_pretrained(tmp_path)
    assert "not used" not in caplog.text and "newly initialized" not in caplog.text


@torch.inference_mode()
def test_save_pretrained_loads_in_transformers(tiny, tmp_path):
    _, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["n_embd"] == 64 and "hidden_size" not in config
    assert json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"] == 50256
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = random_ids(2, 9)
    torch.testing.assert_close(model(ids).logits, ref(ids).logits, atol=ATOL, rtol=0)
    assert ref.lm_head.weight.data_ptr() == ref.transformer.wte.weight.data_ptr()


def test_config_round_trip_and_aliases(tmp_path):
    config = GPT2Config(**TINY)
    assert (config.hidden_size, config.num_hidden_layers, config.max_position_embeddings) == (64, 2, 128)
    config.save_pretrained(tmp_path)
    ref = transformers.GPT2Config.from_pretrained(tmp_path)
    assert (ref.n_embd, ref.n_layer, ref.activation_function, ref.layer_norm_epsilon) == (
        64,
        2,
        "gelu_new",
        1e-5,
    )
    assert GPT2Config.from_pretrained(tmp_path) == config
    with pytest.raises(ValueError, match="divisible"):
        GPT2Config(n_embd=65, n_head=4)


@torch.inference_mode()
def test_sequence_classification_pools_last_non_pad_token(tmp_path_factory):
    ref_model, directory = hf_checkpoint(
        tmp_path_factory, "cls", "GPT2ForSequenceClassification", pad_token_id=0, num_labels=3, **TINY
    )
    model = GPT2ForSequenceClassification.from_pretrained(directory)
    ids = random_ids(3, 7).clamp(min=1)
    ids[1, 5:] = 0  # right padding
    labels = torch.tensor([0, 2, 1])
    ours, ref = model(ids, labels=labels), ref_model(ids, labels=labels)
    torch.testing.assert_close(ours.logits, ref.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.loss, ref.loss, atol=ATOL, rtol=0)
    model.config.pad_token_id = None
    with pytest.raises(ValueError, match="pad_token_id"):
        model(ids)
    assert model(ids[:1]).logits.shape == (1, 3)


def test_from_config_initialises_like_gpt2():
    torch.manual_seed(0)
    model = GPT2LMHeadModel.from_config(GPT2Config(**TINY))
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(**TINY)).transformer.h[0].attn
    assert model.lm_head.weight is model.transformer.wte.weight
    block = model.transformer.layers[0]
    assert block.qkv.weight.shape == theirs.c_attn.weight.shape == (64, 192)  # [in, out] like the checkpoint
    assert abs(block.qkv.weight.std().item() - 0.2) < 0.02
    assert abs(theirs.c_attn.weight.std().item() - 0.2) < 0.02
    # residual projections start smaller, by the same factor as transformers' (1 / sqrt(2 * n_layer))
    assert block.attn_out.weight.std().item() == pytest.approx(theirs.c_proj.weight.std().item(), rel=0.1)
    assert block.attn_out.weight.std().item() < 0.15
    assert torch.all(block.qkv.bias == 0) and torch.all(theirs.c_attn.bias == 0)


@torch.inference_mode()
def test_overlong_input_is_a_clear_error(tiny):
    _, directory = tiny
    model = GPT2LMHeadModel.from_pretrained(directory)
    with pytest.raises(ValueError, match="128 positions"):
        model(random_ids(1, 129))
