"""Same numbers as transformers' Trainer: from the same initial weights and the same batches (AdamW, linear warmup,
weight decay, gradient clipping, gradient accumulation 2), every logged step loss agrees within 1e-5 (relative) and
the final weights within 1e-3 of each tensor's scale, for a sequence classifier and a causal LM.

Attention key biases are not compared: their true gradient is exactly zero (softmax ignores a shift shared by all
keys), so Adam turns round-off there into full-size steps in both libraries, differently.
"""

from __future__ import annotations

import math

import pytest
import torch

import tinyformers as tf
from conftest import oracle
from training_fixtures import one_thread, pad_collator, tiny_bert, tiny_llama, token_rows

transformers = oracle("transformers")

STEPS = 30
SETTINGS = dict(
    max_steps=STEPS,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=2,
    learning_rate=2e-3,
    warmup_steps=5,
    weight_decay=0.1,
    max_grad_norm=0.5,
    lr_scheduler_type="linear",
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    seed=0,
    train_sampling_strategy="sequential",
    disable_tqdm=True,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def hf_run(model, rows, folder, **overrides):
    args = transformers.TrainingArguments(str(folder), use_cpu=True, **{**SETTINGS, **overrides})
    trainer = transformers.Trainer(model, args, train_dataset=rows, data_collator=pad_collator)
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def our_run(model, rows, folder, **overrides):
    args = tf.TrainingArguments(str(folder), **{**SETTINGS, **overrides})
    trainer = tf.Trainer(model, args, train_dataset=rows, data_collator=pad_collator)
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def assert_same_weights(ours, theirs):
    ours_hf = ours.weight_map.to_hf(ours.state_dict(), ours.config)
    theirs_state = theirs.state_dict()
    compared = 0
    for name, reference in theirs_state.items():
        if "attention.self.key.bias" in name or name not in ours_hf:
            continue
        scale = reference.abs().max().item() or 1.0
        diff = (ours_hf[name] - reference).abs().max().item()
        assert diff <= 1e-3 * scale, f"{name}: differs by {diff:.2e} at scale {scale:.2e}"
        compared += 1
    assert compared >= len(theirs_state) - 4  # all but key biases (and tied copies)


def test_sequence_classifier_matches_transformers(tmp_path):
    folder = tiny_bert(tmp_path / "bert")
    rows = token_rows(STEPS * 8, seed=1)
    theirs = transformers.BertForSequenceClassification.from_pretrained(folder)
    # transformers scales this head's loss by the accumulation steps (see the next test); with the flag below it
    # divides by them instead, which is the true mean for equal micro-batches.
    theirs.accepts_loss_kwargs = False
    hf_losses = hf_run(theirs, rows, tmp_path / "hf")
    ours = tf.AutoModelForSequenceClassification.from_pretrained(folder)
    our_losses = our_run(ours, rows, tmp_path / "ours")
    assert len(our_losses) == len(hf_losses) == STEPS
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(hf_losses), rtol=1e-5, atol=0)
    assert our_losses[-1] < our_losses[0]  # it learned something
    assert_same_weights(ours, theirs)


def test_causal_lm_matches_transformers(tmp_path):
    """Unequal micro-batches: every row has its own length, so each micro-batch predicts a different number of
    tokens; the step loss is the mean over all predicted tokens of the window."""
    folder = tiny_llama(tmp_path / "llama")
    rows = token_rows(STEPS * 8, seed=2, labels=None)
    theirs = transformers.LlamaForCausalLM.from_pretrained(folder)
    hf_losses = hf_run(theirs, rows, tmp_path / "hf")
    ours = tf.AutoModelForCausalLM.from_pretrained(folder)
    our_losses = our_run(ours, rows, tmp_path / "ours")
    assert len(our_losses) == len(hf_losses) == STEPS
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(hf_losses), rtol=1e-5, atol=0)
    assert our_losses[-1] < our_losses[0]
    assert_same_weights(ours, theirs)


def test_transformers_multiplies_classifier_loss_by_accumulation_steps(tmp_path):
    """transformers 5.24 takes a forward with **kwargs for one that divides by num_items_in_batch, so BERT's
    classifier loss (a mean) is summed over the micro-batches: 2 ln 2 for a random 2-class head with 2 steps.
    Ours is the mean over the window's examples."""
    folder = tiny_bert(tmp_path / "bert", initializer_range=1e-4)  # logits ~0: the loss starts at ln 2
    rows = token_rows(16, seed=3)
    hf_losses = hf_run(
        transformers.BertForSequenceClassification.from_pretrained(folder), rows, tmp_path / "hf", max_steps=1
    )
    our_losses = our_run(
        tf.AutoModelForSequenceClassification.from_pretrained(folder), rows, tmp_path / "o", max_steps=1
    )
    assert our_losses[0] == pytest.approx(0.6931, abs=1e-3)
    assert hf_losses[0] == pytest.approx(2 * our_losses[0], rel=1e-5)


def masked_prefix_collator(features: list[dict]) -> dict[str, torch.Tensor]:
    """``pad_collator`` with the first ``masked`` tokens of each row unlabelled, as a prompt is."""
    batch = pad_collator([{k: v for k, v in f.items() if k != "masked"} for f in features])
    for row, feature in enumerate(features):
        batch["labels"][row, : feature["masked"]] = -100
    return batch


def test_a_micro_batch_with_every_label_masked_counts_for_nothing(tmp_path):
    """Prompts cut at max_length leave micro-batches with nothing to predict: the model's mean over them is 0/0
    (NaN); the step loss is the mean over the window's labelled tokens all the same, as in transformers."""
    folder = tiny_llama(tmp_path / "llama")
    rows = token_rows(4 * 8, seed=3, labels=None)
    for i, row in enumerate(rows):  # the first micro-batch of each step has no label at all
        row["masked"] = len(row["input_ids"]) if i % 8 < 4 else 2
    settings = dict(max_steps=4, warmup_steps=1, remove_unused_columns=False)  # the collator reads "masked"
    theirs = transformers.LlamaForCausalLM.from_pretrained(folder)
    args = transformers.TrainingArguments(str(tmp_path / "hf"), use_cpu=True, **{**SETTINGS, **settings})
    trainer = transformers.Trainer(theirs, args, train_dataset=rows, data_collator=masked_prefix_collator)
    trainer.train()
    hf_losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    ours = tf.AutoModelForCausalLM.from_pretrained(folder)
    args = tf.TrainingArguments(str(tmp_path / "ours"), **{**SETTINGS, **settings})
    trainer = tf.Trainer(ours, args, train_dataset=rows, data_collator=masked_prefix_collator)
    trainer.train()
    our_losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(our_losses) == len(hf_losses) == 4 and all(map(math.isfinite, hf_losses))
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(hf_losses), rtol=1e-5, atol=0)
    assert_same_weights(ours, theirs)
    # evaluation over the same rows: the masked batches count for nothing there either
    evaluation = trainer.evaluate(rows[:8])
    with torch.no_grad():
        want = ours(**masked_prefix_collator(rows[4:8])).loss
    assert math.isclose(evaluation["eval_loss"], float(want), rel_tol=1e-6)
    trainer.args.prediction_loss_only = True  # the head then runs on the labelled positions only
    assert math.isclose(trainer.evaluate(rows[:8])["eval_loss"], float(want), rel_tol=1e-6)
