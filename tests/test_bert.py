"""BERT parity against transformers: the real all-MiniLM-L6-v2, and random bert-base-wide checkpoints per head."""

from __future__ import annotations

import pytest
import torch

import tinyformers
from conftest import oracle
from fixtures import random_checkpoint
from tinyformers import AutoConfig, AutoModel

transformers = oracle("transformers")

ATOL = 1e-4
TEXTS = [
    "how are you.",
    "The quick brown fox jumps over the lazy dog, again and again.",
    "Café naïve résumé — Ångström units 你好世界 👋",
    "def f(x): return x ** 2  # code",
]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return AutoModel.from_pretrained(minilm_dir)


def _batch(hf_tokenizer, texts, **kw):
    enc = hf_tokenizer(texts, padding=True, truncation=True, return_tensors="pt", **kw)
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


@torch.inference_mode()
def test_minilm_hidden_states_and_pooler_match(minilm, hf_minilm, hf_minilm_tokenizer):
    batch = _batch(hf_minilm_tokenizer, TEXTS)
    ours, ref = minilm(**batch), hf_minilm(**batch)
    assert isinstance(minilm, tinyformers.BertModel)
    torch.testing.assert_close(ours.last_hidden_state, ref.last_hidden_state, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.pooler_output, ref.pooler_output, atol=ATOL, rtol=0)


@torch.inference_mode()
def test_minilm_single_text_shapes_and_iteration(minilm, hf_minilm, hf_minilm_tokenizer):
    batch = _batch(hf_minilm_tokenizer, ["how are you."])
    out = minilm(**batch)
    assert list(out) == ["last_hidden_state", "pooler_output"]
    assert out.last_hidden_state.shape == (1, 6, 384)
    assert out.pooler_output.shape == (1, 384)
    assert out[0] is out.last_hidden_state and out["pooler_output"] is out.pooler_output
    ref = hf_minilm(**batch)
    torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state, atol=ATOL, rtol=0)


@torch.inference_mode()
def test_minilm_hidden_states_and_attentions_outputs(minilm, minilm_dir, hf_minilm_tokenizer):
    batch = _batch(hf_minilm_tokenizer, TEXTS[:2])
    ours = minilm(**batch, output_hidden_states=True, output_attentions=True)
    # transformers returns no attention maps from its default sdpa attention: its eager one gives them
    eager = transformers.AutoModel.from_pretrained(str(minilm_dir), attn_implementation="eager").eval()
    ref = eager(**batch, output_hidden_states=True, output_attentions=True)
    assert len(ours.hidden_states) == len(ref.hidden_states) == 7
    for a, b in zip(ours.hidden_states, ref.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    assert len(ours.attentions) == len(ref.attentions) == 6
    for a, b in zip(ours.attentions, ref.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


@torch.inference_mode()
def test_minilm_sentence_embeddings_match(minilm, minilm_dir, hf_minilm, hf_minilm_tokenizer):
    from tinyformers.pipelines import mean_pooling

    batch = _batch(hf_minilm_tokenizer, TEXTS)
    ref_hidden = hf_minilm(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((ref_hidden * mask).sum(1) / mask.sum(1), dim=1)
    ours = torch.nn.functional.normalize(
        mean_pooling(minilm(**batch).last_hidden_state, batch["attention_mask"]), dim=1
    )
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)


@torch.inference_mode()
def test_minilm_long_input_truncated_matches(minilm, hf_minilm, hf_minilm_tokenizer):
    batch = _batch(hf_minilm_tokenizer, ["word " * 700], max_length=512)
    assert batch["input_ids"].shape[1] == 512
    torch.testing.assert_close(
        minilm(**batch).last_hidden_state, hf_minilm(**batch).last_hidden_state, atol=ATOL, rtol=0
    )


def test_too_long_input_is_a_clear_error(minilm):
    with pytest.raises(ValueError, match="at most 512.*truncation=True"):
        minilm(input_ids=torch.ones(1, 600, dtype=torch.long))


# ---- random bert-base-wide checkpoints made by transformers, one per head -------------------------------------

HEADS = {
    "BertModel": ("AutoModel", None),
    "BertForSequenceClassification": ("AutoModelForSequenceClassification", "seq"),
    "BertForTokenClassification": ("AutoModelForTokenClassification", "tok"),
    "BertForMaskedLM": ("AutoModelForMaskedLM", "mlm"),
}


def _hf_config(**kw):
    base = dict(
        hidden_size=768, num_attention_heads=12, intermediate_size=3072, num_hidden_layers=3, num_labels=3
    )
    return transformers.BertConfig(**{**base, **kw})


@pytest.fixture(scope="module", params=sorted(HEADS))
def head_checkpoint(request, tmp_path_factory):
    name = request.param
    path = tmp_path_factory.mktemp(name)
    return name, path, random_checkpoint(path, name, _hf_config())


def _inputs(vocab=30522, batch=3, seq=17, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, seq * 2 // 3 :] = 0
    mask[-1, seq // 3 :] = 0
    types = torch.zeros(batch, seq, dtype=torch.long)
    types[:, seq // 2 :] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _labels(kind, batch=3, seq=17):
    g = torch.Generator().manual_seed(2)
    if kind == "seq":
        return torch.randint(0, 3, (batch,), generator=g)
    labels = torch.randint(0, 3 if kind == "tok" else 30522, (batch, seq), generator=g)
    labels[:, :3] = -100
    return labels


@torch.inference_mode()
def test_random_checkpoint_parity_per_head(head_checkpoint):
    name, path, ref_model = head_checkpoint
    auto, kind = HEADS[name]
    ours = getattr(tinyformers, auto).from_pretrained(path)
    assert type(ours).__name__ == name
    inputs = _inputs()
    if kind is not None:
        inputs["labels"] = _labels(kind)
    got, want = ours(**inputs), ref_model(**inputs)
    for key in want.keys():
        torch.testing.assert_close(got[key], want[key], atol=ATOL, rtol=0, msg=f"{name}.{key}")
    assert list(got.keys()) == list(want.keys())


@pytest.mark.parametrize("name", ["BertForSequenceClassification", "BertForTokenClassification"])
def test_training_mode_skips_padding_with_the_same_loss_and_gradients(name, tmp_path):
    """A classifier's training step runs its layers on the real tokens only (models/layers.py Packing); the
    token head does not (it reads every position): either way loss, logits and every gradient equal
    transformers', on a padded batch (dropout off so both are deterministic)."""
    cfg = _hf_config(hidden_size=64, num_attention_heads=4, intermediate_size=128, num_hidden_layers=2)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    ref = random_checkpoint(tmp_path, name, cfg).train()
    ours = getattr(tinyformers, HEADS[name][0]).from_pretrained(tmp_path).train()
    inputs = _inputs()
    labels = _labels(HEADS[name][1])
    got, want = ours(**inputs, labels=labels), ref(**inputs, labels=labels)
    torch.testing.assert_close(got.loss, want.loss, atol=ATOL, rtol=0)
    torch.testing.assert_close(got.logits, want.logits, atol=ATOL, rtol=0)
    got.loss.backward()
    want.loss.backward()
    theirs = dict(ref.named_parameters())
    for key, tensor in ours.weight_map.to_hf(
        {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}, ours.config
    ).items():
        torch.testing.assert_close(tensor, theirs[key].grad, atol=1e-5, rtol=1e-4, msg=key)


@pytest.mark.parametrize(
    "problem_type,labels",
    [
        (None, torch.tensor([0.5, -1.0, 2.0])),  # num_labels=1 -> regression
        ("multi_label_classification", torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]])),
        ("regression", torch.tensor([[0.1, 0.2, 0.3], [1, 2, 3], [0, 0, 0.5]])),
    ],
)
@torch.inference_mode()
def test_sequence_classification_losses(problem_type, labels, tmp_path):
    num_labels = 1 if problem_type is None else 3
    cfg = _hf_config(
        num_hidden_layers=1,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        num_labels=num_labels,
        problem_type=problem_type,
    )
    ref = random_checkpoint(tmp_path, "BertForSequenceClassification", cfg)
    ours = tinyformers.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    inputs = _inputs()
    got, want = ours(**inputs, labels=labels), ref(**inputs, labels=labels)
    torch.testing.assert_close(got.loss, want.loss, atol=ATOL, rtol=0)
    torch.testing.assert_close(got.logits, want.logits, atol=ATOL, rtol=0)


@torch.inference_mode()
def test_save_with_tinyformers_load_with_transformers(tmp_path, minilm_dir):
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(minilm_dir, num_labels=2)
    ours = tinyformers.AutoModelForMaskedLM.from_config(config)
    ours.save_pretrained(tmp_path / "mlm")
    ref = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm").eval()
    inputs = _inputs(batch=2, seq=9)
    torch.testing.assert_close(ours(**inputs).logits, ref(**inputs).logits, atol=ATOL, rtol=0)

    clf = tinyformers.AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)
    clf.save_pretrained(tmp_path / "clf")
    ref = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    assert ref.config.num_labels == 2
    torch.testing.assert_close(clf(**inputs).logits, ref(**inputs).logits, atol=ATOL, rtol=0)
    again = tinyformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf")
    torch.testing.assert_close(again(**inputs).logits, clf(**inputs).logits, atol=0, rtol=0)


def test_head_on_bare_checkpoint_warns_about_new_weights(minilm_dir, caplog):
    with caplog.at_level("WARNING", logger="tinyformers"):
        clf = tinyformers.AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)
    assert clf.config.num_labels == 2
    assert "classifier.weight" in caplog.text and "newly initialized" in caplog.text
    assert "pooler" not in caplog.text.split("newly initialized")[1]  # the pooler came from the checkpoint
    assert not clf.training
