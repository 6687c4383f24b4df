"""The real chat model: SmolLM2-135M-Instruct from its Q4_1 GGUF file, against transformers loading the same file."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import oracle
from fixtures import SMOLLM2_CHATS as CHATS
from fixtures import SMOLLM2_GGUF as GGUF
from fixtures import SMOLLM2_NEW_TOKENS as NEW_TOKENS
from fixtures import SMOLLM2_TEXTS as TEXTS
from fixtures import smollm2_reference
from tinyformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

oracle("transformers")
oracle("gguf")  # transformers needs it to read the file

pytestmark = pytest.mark.slow
CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "rms_norm_eps",
    "max_position_embeddings",
    "tie_word_embeddings",
)


@pytest.fixture(scope="module")
def reference(smollm2_dir):
    """Everything we compare against: transformers' tokenizer ids, chat prompts, logits and greedy generations on
    the same file (fixtures.smollm2_reference, cached on disk)."""
    return smollm2_reference(smollm2_dir)


@pytest.fixture(scope="module")
def ours(smollm2_dir):
    tok = AutoTokenizer.from_pretrained(smollm2_dir, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, gguf_file=GGUF)
    return tok, model


def test_config_from_gguf(smollm2_dir, reference):
    config = AutoConfig.from_pretrained(smollm2_dir, gguf_file=GGUF)
    for key in CONFIG_KEYS:
        assert getattr(config, key) == reference["config"][key], key
    assert config.rope_theta == reference["rope_theta"]


def test_tokenizer_matches(ours, reference):
    tok, _ = ours
    assert [tok(t)["input_ids"] for t in TEXTS] == reference["ids"]
    assert [tok.decode(tok(t)["input_ids"]) for t in TEXTS] == reference["decoded"]
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2


def test_chat_template_matches(ours, reference):
    tok, _ = ours
    assert [
        tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in CHATS
    ] == reference["prompts"]


@torch.inference_mode()
def test_logits_match(ours, reference):
    _, model = ours
    assert isinstance(model, LlamaForCausalLM)
    torch.testing.assert_close(model(reference["probe"]).logits, reference["logits"], atol=1e-4, rtol=0)


@torch.inference_mode()
def test_greedy_chat_generations_identical(ours, reference):
    tok, model = ours
    for chat, want in zip(CHATS, reference["generations"], strict=True):
        ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")["input_ids"]
        got = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
        assert got == want, (tok.decode(got[ids.shape[1] :]), tok.decode(want[ids.shape[1] :]))
    first = reference["generations"][0]
    answer = tok.decode(
        first[len(tok.apply_chat_template(CHATS[0], add_generation_prompt=True)["input_ids"]) :]
    )
    assert answer.startswith("The capital of France is Paris.")


@torch.inference_mode()
def test_compiled_greedy_chat_generations_identical(ours, reference):
    """compile=True computes one-row products its own way (layers.matvec) and must still pick the same tokens."""
    tok, model = ours
    compiled = copy.deepcopy(model).compile_decoding()
    for chat, want in zip(CHATS, reference["generations"], strict=True):
        ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")["input_ids"]
        got = compiled.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
        assert got == want, (tok.decode(got[ids.shape[1] :]), tok.decode(want[ids.shape[1] :]))


def test_bad_gguf_inputs(smollm2_dir, tmp_path):
    from tinyformers.formats.safetensors import CorruptWeightsError
    from tinyformers.hub import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no GGUF file 'missing.gguf'"):
        AutoModelForCausalLM.from_pretrained(smollm2_dir, gguf_file="missing.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes((smollm2_dir / GGUF).read_bytes()[:4_000_000])
    with pytest.raises(CorruptWeightsError, match="cut.gguf"):
        AutoModelForCausalLM.from_pretrained(cut)
