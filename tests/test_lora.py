"""LoRA adapters against the ``peft`` library itself: an adapter saved here and loaded by peft onto transformers'
model gives the same logits, and the other way round; merging; training touches only the adapter."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import oracle
from fixtures import llama_config, random_checkpoint
from tinyformers import AutoModelForCausalLM, AutoModelForSequenceClassification
from tinyformers.models.gpt2 import Conv1D
from tinyformers.training.lora import LoraConfig, LoraModel, get_peft_model

transformers = oracle("transformers")

IDS = torch.tensor([[5, 17, 42, 9, 77, 3, 61], [8, 2, 33, 90, 14, 51, 6]])


@pytest.fixture(scope="module")
def peft():
    """The oracle, imported by the tests that use it (its import takes seconds, and every worker collects this
    file)."""
    return oracle("peft")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A small seeded-random Llama with grouped-query attention (fused q/k/v rows of unequal size)."""
    folder = tmp_path_factory.mktemp("llama")
    random_checkpoint(folder, "LlamaForCausalLM", llama_config())
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert")
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=32,
        num_labels=3,
    )
    random_checkpoint(folder, "BertForSequenceClassification", config, seed=1)
    return folder


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A small seeded-random GPT-2: [in, out] Conv1D projections, the attention's q/k/v fused in c_attn."""
    folder = tmp_path_factory.mktemp("gpt2")
    config = transformers.GPT2Config(
        vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
    )
    random_checkpoint(folder, "GPT2LMHeadModel", config, seed=7)
    return folder


def hf_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def our_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


LLAMA_TARGETS = ["q_proj", "v_proj", "o_proj", "up_proj"]


def test_llama_adapter_saved_here_loads_in_peft(peft, llama_dir, tmp_path):
    torch.manual_seed(2)
    ours = get_peft_model(
        AutoModelForCausalLM.from_pretrained(llama_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=LLAMA_TARGETS, init_lora_weights=False),
    )
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["peft_type"] == "LORA" and saved["r"] == 4
    theirs = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(llama_dir), tmp_path
    ).eval()
    base = hf_logits(transformers.AutoModelForCausalLM.from_pretrained(llama_dir))
    expected = hf_logits(theirs)
    assert (expected - base).abs().max() > 1e-2, (
        "the adapter must change the logits for this test to mean anything"
    )
    torch.testing.assert_close(our_logits(ours.eval()), expected, atol=1e-4, rtol=1e-4)


def test_llama_adapter_saved_by_peft_loads_here(peft, llama_dir, tmp_path):
    torch.manual_seed(3)
    theirs = peft.get_peft_model(
        transformers.AutoModelForCausalLM.from_pretrained(llama_dir),
        peft.LoraConfig(
            r=4, lora_alpha=16, target_modules=["k_proj", "gate_proj", "down_proj"], init_lora_weights=False
        ),
    ).eval()
    theirs.save_pretrained(tmp_path)
    ours = LoraModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llama_dir), tmp_path)
    torch.testing.assert_close(our_logits(ours), hf_logits(theirs), atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in ours.parameters()), "a loaded adapter is for inference by default"


def test_classifier_adapter_trains_head_too_and_round_trips(peft, bert_dir, tmp_path):
    torch.manual_seed(4)
    theirs = peft.get_peft_model(
        transformers.AutoModelForSequenceClassification.from_pretrained(bert_dir),
        peft.LoraConfig(r=2, lora_alpha=4, task_type="SEQ_CLS", init_lora_weights=False),
    ).eval()
    theirs.save_pretrained(tmp_path / "peft")
    ours = LoraModel.from_pretrained(
        AutoModelForSequenceClassification.from_pretrained(bert_dir), tmp_path / "peft", is_trainable=True
    )
    torch.testing.assert_close(our_logits(ours.eval()), hf_logits(theirs), atol=1e-4, rtol=1e-4)
    trainable = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert any("classifier" in n for n in trainable) and any("lora_A" in n for n in trainable)
    assert not any("word" in n for n in trainable), "the base model stays frozen"
    ours.save_pretrained(tmp_path / "ours")
    back = peft.PeftModel.from_pretrained(
        transformers.AutoModelForSequenceClassification.from_pretrained(bert_dir), tmp_path / "ours"
    ).eval()
    torch.testing.assert_close(hf_logits(back), hf_logits(theirs), atol=1e-5, rtol=1e-5)


def test_merge_and_unload_equals_adapter_and_saves_for_transformers(peft, llama_dir, tmp_path):
    torch.manual_seed(5)
    ours = get_peft_model(
        AutoModelForCausalLM.from_pretrained(llama_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=LLAMA_TARGETS, init_lora_weights=False),
    ).eval()
    ours.save_pretrained(tmp_path / "adapter")
    with_adapter = our_logits(ours)
    merged = ours.merge_and_unload()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(our_logits(merged), with_adapter, atol=1e-5, rtol=1e-5)
    merged.save_pretrained(tmp_path / "merged")
    theirs = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(llama_dir), tmp_path / "adapter"
    ).merge_and_unload()
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(hf_logits(loaded), hf_logits(theirs), atol=1e-4, rtol=1e-4)


def assert_training_moves_only_the_adapter(model) -> None:
    """Five AdamW steps on the causal-LM loss: it falls, and every parameter that moved is an adapter's."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(5):
        loss = model(input_ids=IDS, labels=IDS).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed), sorted(changed)[:5]


def test_training_moves_only_the_adapter(llama_dir):
    torch.manual_seed(6)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(llama_dir), LoraConfig(r=4, lora_alpha=8))
    assert model.lora_config.target_modules == ["q_proj", "v_proj"], "peft's default targets for llama"
    assert_training_moves_only_the_adapter(model)
    trainable, total = model.trainable_parameters()
    width, kv_width = 64, 32  # llama_config(): 4 heads of 16, 2 key/value heads
    lora_count = 2 * (2 * 4 * width + 4 * (width + kv_width))  # 2 layers: A [4, 64] for q and v, B [64|32, 4]
    assert trainable == lora_count and total > trainable


def test_bad_targets_and_bad_adapters_are_named(llama_dir, bert_dir, tmp_path):
    llama = AutoModelForCausalLM.from_pretrained(llama_dir)
    with pytest.raises(ValueError, match="match no linear layer.*q_proj"):
        get_peft_model(llama, LoraConfig(target_modules=["query"]))
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter folder"):
        LoraModel.from_pretrained(llama, tmp_path)
    with pytest.raises(ValueError, match="r must be a positive rank"):
        LoraConfig(r=0)
    get_peft_model(AutoModelForCausalLM.from_pretrained(llama_dir), LoraConfig(r=4)).save_pretrained(tmp_path)
    wider = transformers.LlamaConfig.from_pretrained(llama_dir)
    wider.hidden_size = 128
    other = tmp_path / "other"
    transformers.LlamaForCausalLM(wider).save_pretrained(other)
    with pytest.raises(ValueError, match="has shape .* load the adapter onto the base model"):
        LoraModel.from_pretrained(AutoModelForCausalLM.from_pretrained(other), tmp_path)


def test_all_linear_adapts_every_projection_but_the_head(llama_dir):
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(llama_dir), LoraConfig(target_modules="all-linear")
    )
    names = {k.removeprefix("base_model.model.").rsplit(".", 2)[0] for k in model.adapter_parameters()}
    per_layer = {n.split(".", 3)[-1] for n in names}
    assert per_layer == {f"self_attn.{x}_proj" for x in "qkvo"} | {
        f"mlp.{x}_proj" for x in ("gate", "up", "down")
    }
    assert not any("lm_head" in n for n in names)


GPT2_TARGETS = ["c_attn", "c_proj", "c_fc"]  # peft's GPT-2 layers: attention in and out, MLP in and out


def test_gpt2_adapter_saved_here_loads_in_peft(peft, gpt2_dir, tmp_path):
    torch.manual_seed(8)
    ours = get_peft_model(
        AutoModelForCausalLM.from_pretrained(gpt2_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=GPT2_TARGETS, init_lora_weights=False),
    ).eval()
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["fan_in_fan_out"] is True
    # base_model.model.transformer.h.<n>.<attn|mlp>.<layer>.lora_<A|B>.weight
    adapted = {".".join(k.split(".")[5:7]) for k in ours.adapter_parameters()}
    assert adapted == {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}
    theirs = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(gpt2_dir), tmp_path
    ).eval()
    base = hf_logits(transformers.AutoModelForCausalLM.from_pretrained(gpt2_dir))
    expected = hf_logits(theirs)
    assert (expected - base).abs().max() > 1e-2, "the adapter must change the logits"
    torch.testing.assert_close(our_logits(ours), expected, atol=1e-4, rtol=1e-4)


def test_gpt2_adapter_saved_by_peft_loads_here_and_merges(peft, gpt2_dir, tmp_path):
    torch.manual_seed(9)
    theirs = peft.get_peft_model(
        transformers.AutoModelForCausalLM.from_pretrained(gpt2_dir),
        peft.LoraConfig(
            r=4, lora_alpha=16, target_modules=GPT2_TARGETS, fan_in_fan_out=True, init_lora_weights=False
        ),
    ).eval()
    theirs.save_pretrained(tmp_path / "adapter")
    ours = LoraModel.from_pretrained(AutoModelForCausalLM.from_pretrained(gpt2_dir), tmp_path / "adapter")
    expected = hf_logits(theirs)
    torch.testing.assert_close(our_logits(ours), expected, atol=1e-4, rtol=1e-4)
    merged = ours.merge_and_unload()
    blocks = merged.transformer.layers
    assert all(type(b.qkv) is Conv1D and type(b.mlp_out) is Conv1D for b in blocks), "merged: plain layers"
    torch.testing.assert_close(our_logits(merged), expected, atol=1e-4, rtol=1e-4)
    merged.save_pretrained(tmp_path / "merged")
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(hf_logits(loaded), hf_logits(theirs.merge_and_unload()), atol=1e-4, rtol=1e-4)


def test_gpt2_default_target_trains_only_the_adapter(gpt2_dir):
    torch.manual_seed(10)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(gpt2_dir), LoraConfig(r=4, lora_alpha=8))
    assert model.lora_config.target_modules == ["c_attn"], "peft's default target for gpt2"
    assert_training_moves_only_the_adapter(model)
