"""Trainer behaviour: exact resume, checkpoint layout and rotation, a crash while saving, every shipped head,
evaluation/prediction, reporting, datasets, and the one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch

import tinyformers as tf
from conftest import oracle
from tinyformers.training import checkpoints
from training_fixtures import VOCAB, one_thread, pad_collator, tiny_bert, token_rows

transformers = oracle("transformers")


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert(
        tmp_path_factory.mktemp("bert"), hidden_dropout_prob=0.1
    )  # dropout: resume must restore RNG


def args_for(folder, **overrides):
    settings = dict(
        max_steps=8,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        warmup_steps=2,
        logging_steps=1,
        save_steps=4,
        disable_tqdm=True,
        seed=3,
    )
    return tf.TrainingArguments(str(folder), **{**settings, **overrides})


def train(model_dir, folder, rows=None, resume=None, callbacks=None, **overrides):
    model = tf.AutoModelForSequenceClassification.from_pretrained(model_dir)
    trainer = tf.Trainer(
        model,
        args_for(folder, **overrides),
        train_dataset=rows or token_rows(40),
        data_collator=pad_collator,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def losses(trainer):
    return {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}


class StopAt(tf.TrainerCallback):
    """Ends a run after ``step``, as a killed job would have (its last checkpoint is all that remains)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resume_continues_exactly(bert_dir, tmp_path):
    """Shuffled data over 2 epochs, dropout on: after resuming from step 4 (mid-epoch) the losses and weights
    equal the uninterrupted run's."""
    whole = train(bert_dir, tmp_path / "whole", max_steps=10)
    train(bert_dir, tmp_path / "cut", max_steps=10, callbacks=[StopAt(4)])
    assert [p.name for p in checkpoints.sorted_checkpoints(tmp_path / "cut")] == ["checkpoint-4"]
    resumed = train(bert_dir, tmp_path / "cut", max_steps=10, resume=True)
    assert losses(resumed) == losses(whole)  # steps 1-4 come from the checkpoint's log history
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    again = train(bert_dir, tmp_path / "again", max_steps=10, resume=str(tmp_path / "cut" / "checkpoint-8"))
    assert losses(again) == losses(whole)


def test_checkpoint_layout_and_rotation(bert_dir, tmp_path):
    trainer = train(bert_dir, tmp_path, save_steps=2, save_total_limit=2, report_to="jsonl")
    assert [p.name for p in checkpoints.sorted_checkpoints(tmp_path)] == ["checkpoint-6", "checkpoint-8"]
    folder = tmp_path / "checkpoint-8"
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"} <= names
    state = json.loads((folder / "trainer_state.json").read_text())
    # training_args.bin: a plain dict (transformers pickles its class there), the same as training_args.json
    saved_args = torch.load(folder / "training_args.bin", weights_only=True)
    assert saved_args == json.loads((folder / "training_args.json").read_text()) == trainer.args.to_dict()
    assert tf.TrainingArguments(**saved_args).to_dict() == trainer.args.to_dict()
    assert saved_args["save_total_limit"] == 2 and saved_args["gradient_accumulation_steps"] == 2
    trainer.save_model(str(tmp_path / "final"))
    assert torch.load(tmp_path / "final" / "training_args.bin", weights_only=True) == saved_args
    assert state["global_step"] == 8 and len([e for e in state["log_history"] if "loss" in e]) == 8
    # the checkpoint's model loads in transformers
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    batch = pad_collator(token_rows(3, seed=9))
    trainer.model.eval()
    expected = trainer.model(**batch).logits
    torch.testing.assert_close(theirs.eval()(**batch).logits, expected, atol=1e-5, rtol=1e-4)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "loss" in line] == list(range(1, 9))
    assert lines[-1]["train_loss"] == pytest.approx(sum(losses(trainer).values()) / 8)


def test_crash_while_saving_keeps_previous_checkpoint(bert_dir, tmp_path, monkeypatch):
    train(bert_dir, tmp_path, max_steps=4)  # leaves checkpoint-4

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies half-way through writing checkpoint-8

    monkeypatch.setattr(checkpoints, "write_training_state", crash)
    with pytest.raises(KeyboardInterrupt):
        train(bert_dir, tmp_path, resume=True)
    monkeypatch.undo()
    assert (tmp_path / "tmp-checkpoint-8" / "model.safetensors").exists()
    assert checkpoints.last_checkpoint(tmp_path).name == "checkpoint-4"
    resumed = train(bert_dir, tmp_path, resume=True)
    assert resumed.state.global_step == 8 and not (tmp_path / "tmp-checkpoint-8").exists()


def _pad_rows(features, key, value):
    length = max(len(f[key]) for f in features)
    return torch.tensor([f[key] + [value] * (length - len(f[key])) for f in features])


def test_every_head_trains_and_its_loss_matches_transformers(tmp_path):
    """Token classification, masked LM, causal LM (GPT-2 and Llama), GPT-2 sequence classification and T5 seq2seq:
    the head's loss equals transformers' on the same batch, and a few Trainer steps lower it."""
    gpt2 = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0
    )
    gpt2.resid_pdrop = gpt2.embd_pdrop = gpt2.attn_pdrop = 0.0
    t5 = transformers.T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        dropout_rate=0.0,
        decoder_start_token_id=0,
    )
    rows = token_rows(16, seed=5, labels=None)
    cases = [
        ("BertForTokenClassification", "AutoModelForTokenClassification", None, "token"),
        ("BertForMaskedLM", "AutoModelForMaskedLM", None, "mlm"),
        ("GPT2LMHeadModel", "AutoModelForCausalLM", gpt2, "lm"),
        ("GPT2ForSequenceClassification", "AutoModelForSequenceClassification", gpt2, "class"),
        ("T5ForConditionalGeneration", "AutoModelForSeq2SeqLM", t5, "seq2seq"),
    ]
    for head, auto, config, kind in cases:
        folder = tmp_path / head
        if config is None:
            tiny_bert(folder, head=head, num_labels=3)
        else:
            torch.manual_seed(0)
            getattr(transformers, head)(config).save_pretrained(folder)
        data = []
        for i, row in enumerate(rows):
            ids = row["input_ids"]
            labels = {
                "token": [i % 3 for i in ids],
                "mlm": [t if j % 3 == 0 else -100 for j, t in enumerate(ids)],
                "lm": ids,
                "class": i % 2,
                "seq2seq": ids[::-1][:6],
            }[kind]
            data.append({"input_ids": ids, "attention_mask": row["attention_mask"], "labels": labels})

        def collate(features, kind=kind):
            batch = {
                "input_ids": _pad_rows(features, "input_ids", 0),
                "attention_mask": _pad_rows(features, "attention_mask", 0),
            }
            if kind == "class":
                batch["labels"] = torch.tensor([f["labels"] for f in features])
            else:
                batch["labels"] = _pad_rows(features, "labels", -100)
            return batch

        batch = collate(data[:4])
        theirs = getattr(transformers, head).from_pretrained(folder).eval()
        ours = getattr(tf, auto).from_pretrained(folder).eval()
        assert ours(**batch).loss.item() == pytest.approx(theirs(**batch).loss.item(), rel=1e-5), head
        trainer = tf.Trainer(
            ours,
            tf.TrainingArguments(
                str(tmp_path / f"run-{head}"),
                max_steps=6,
                per_device_train_batch_size=4,
                learning_rate=5e-3,
                logging_steps=1,
                save_strategy="no",
                disable_tqdm=True,
                train_sampling_strategy="sequential",
            ),
            train_dataset=data[:4] * 6,
            data_collator=collate,
        )
        trainer.train()
        logged = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        assert logged[-1] < logged[0], head


def test_evaluate_predict_and_best_model(bert_dir, tmp_path):
    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    rows = [dict(r, label=int(r["input_ids"][0] < VOCAB // 2)) for r in token_rows(48, seed=4)]
    model = tf.AutoModelForSequenceClassification.from_pretrained(bert_dir)
    args = args_for(
        tmp_path,
        max_steps=12,
        eval_strategy="steps",
        eval_steps=4,
        save_steps=4,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        save_total_limit=1,
    )
    trainer = tf.Trainer(
        model,
        args,
        train_dataset=rows[:40],
        eval_dataset=rows[40:],
        data_collator=pad_collator,
        compute_metrics=accuracy,
    )
    trainer.train()
    evals = [e for e in trainer.state.log_history if "eval_accuracy" in e]
    assert [e["step"] for e in evals] == [4, 8, 12]
    best = max(evals, key=lambda e: e["eval_accuracy"])
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    assert trainer.evaluate()["eval_accuracy"] == best["eval_accuracy"]  # the best weights were loaded back
    kept = {p.name for p in checkpoints.sorted_checkpoints(tmp_path)}
    assert kept == {f"checkpoint-{best['step']}", "checkpoint-12"}
    output = trainer.predict(rows[40:])
    assert output.predictions.shape == (8, 2) and output.label_ids.tolist() == [r["label"] for r in rows[40:]]
    assert set(output.metrics) >= {"test_accuracy", "test_loss", "test_runtime"}


def test_collators_match_transformers(minilm_dir):
    theirs_tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    ours_tok = tf.AutoTokenizer.from_pretrained(minilm_dir)
    texts = ["a short one", "a somewhat longer sentence about training", "mid length text"]
    features = [dict(ours_tok(t), label=i) for i, t in enumerate(texts)]
    ours = tf.DataCollatorWithPadding(ours_tok, pad_to_multiple_of=8)(features)
    theirs = transformers.DataCollatorWithPadding(theirs_tok, pad_to_multiple_of=8)(features)
    assert set(ours) == set(theirs)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key

    pairs = [dict(ours_tok(t), labels=ours_tok(t[::-1])["input_ids"]) for t in texts]
    ours = tf.DataCollatorForSeq2Seq(ours_tok)(pairs)
    theirs = transformers.DataCollatorForSeq2Seq(theirs_tok)(pairs)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key

    causal = tf.DataCollatorForLanguageModeling(ours_tok, mlm=False)([ours_tok(t) for t in texts])
    assert torch.equal(causal["labels"], causal["input_ids"].masked_fill(causal["attention_mask"] == 0, -100))

    many = [ours_tok(" ".join(["word"] * 60)) for _ in range(20)]
    masked = tf.DataCollatorForLanguageModeling(ours_tok, seed=0)(many)
    chosen = masked["labels"] != -100
    assert 0.1 < chosen.float().mean() < 0.2  # 15 % of the tokens
    special = torch.isin(masked["labels"], torch.tensor(ours_tok.all_special_ids))
    assert not special.any()  # [CLS]/[SEP]/[PAD] are never predicted
    share_masked = (masked["input_ids"][chosen] == ours_tok.mask_token_id).float().mean()
    assert 0.7 < share_masked < 0.9
    assert torch.equal(
        masked["input_ids"][~chosen], tf.DataCollatorWithPadding(ours_tok)(many)["input_ids"][~chosen]
    )


def test_group_by_length_and_torch_datasets(bert_dir, tmp_path):
    rows = token_rows(64, seed=6, low=2, high=40)

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            return {
                "input_ids": torch.tensor(rows[i]["input_ids"]),
                "label": rows[i]["label"],
                "text": "dropped: the model takes no text column",
            }

    seen = []

    def collate(features):
        seen.append(sorted(len(f["input_ids"]) for f in features))
        return pad_collator([{"input_ids": f["input_ids"].tolist(), "label": f["label"]} for f in features])

    trainer = tf.Trainer(
        tf.AutoModelForSequenceClassification.from_pretrained(bert_dir),
        args_for(
            tmp_path, max_steps=8, gradient_accumulation_steps=1, group_by_length=True, save_strategy="no"
        ),
        train_dataset=Rows(),
        data_collator=collate,
    )
    trainer.train()
    spread = sum(batch[-1] - batch[0] for batch in seen) / len(seen)
    assert spread < 8  # random batches of lengths 2..39 spread ~25; grouped ones a few tokens


def test_datasets_dataset(bert_dir, tmp_path):
    datasets = oracle("datasets")
    rows = token_rows(16, seed=7)
    dataset = datasets.Dataset.from_list([dict(r, text="x") for r in rows])
    trainer = tf.Trainer(
        tf.AutoModelForSequenceClassification.from_pretrained(bert_dir),
        args_for(tmp_path, max_steps=2, save_strategy="no"),
        train_dataset=dataset,
        data_collator=pad_collator,
    )
    assert trainer.train().global_step == 2


def test_bad_input_gets_one_clear_line(bert_dir, tmp_path):
    model = tf.AutoModelForSequenceClassification.from_pretrained(bert_dir)

    def error(make, kind=ValueError):
        with pytest.raises(kind) as info:
            make()
        message = str(info.value)
        assert "\n" not in message
        return message

    assert "learnig_rate, max_step" in error(
        lambda: tf.TrainingArguments("x", learnig_rate=1, max_step=3), TypeError
    )
    assert "cosine_with_restarts" in error(
        lambda: tf.TrainingArguments("x", lr_scheduler_type="cosine_with_restarts")
    )
    assert "train_dataset is empty" in error(lambda: tf.Trainer(model, args_for(tmp_path), train_dataset=[]))
    text_only = [{"text": "hello", "label": 1}] * 8
    assert "no 'input_ids'" in error(
        lambda: tf.Trainer(model, args_for(tmp_path), train_dataset=text_only).train()
    )
    no_labels = [{"input_ids": [5, 6, 7]}] * 8
    message = error(
        lambda: tf.Trainer(
            model,
            args_for(tmp_path, save_strategy="no"),
            train_dataset=no_labels,
            data_collator=pad_collator_without_labels,
        ).train()
    )
    assert "no loss" in message and "labels" in message
    small = token_rows(3)
    assert "larger than the training set (3 examples)" in error(
        lambda: tf.Trainer(model, args_for(tmp_path), train_dataset=small, data_collator=pad_collator).train()
    )
    (tmp_path / "not-a-checkpoint").mkdir()
    (tmp_path / "not-a-checkpoint" / "notes.txt").write_text("hi")
    assert "is not a training checkpoint" in error(
        lambda: tf.Trainer(
            model, args_for(tmp_path), train_dataset=token_rows(8), data_collator=pad_collator
        ).train(resume_from_checkpoint=str(tmp_path / "not-a-checkpoint"))
    )
    empty_dir = tmp_path / "fresh"
    assert "holds no checkpoint-N folder" in error(
        lambda: tf.Trainer(
            model, args_for(empty_dir), train_dataset=token_rows(8), data_collator=pad_collator
        ).train(resume_from_checkpoint=True)
    )


def pad_collator_without_labels(features):
    batch = pad_collator([dict(f, label=0) for f in features])
    batch.pop("labels")
    return batch


def test_argument_defaults_match_transformers():
    ours, theirs = tf.TrainingArguments("x"), transformers.TrainingArguments("x")
    shared = [
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "learning_rate",
        "weight_decay",
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "warmup_steps",
        "gradient_accumulation_steps",
        "max_grad_norm",
        "logging_steps",
        "logging_first_step",
        "eval_steps",
        "save_steps",
        "save_total_limit",
        "load_best_model_at_end",
        "metric_for_best_model",
        "greater_is_better",
        "seed",
        "data_seed",
        "dataloader_num_workers",
        "dataloader_drop_last",
        "remove_unused_columns",
        "bf16",
        "length_column_name",
    ]
    for name in shared:
        assert getattr(ours, name) == getattr(theirs, name), name
    for name in (
        "lr_scheduler_type",
        "eval_strategy",
        "save_strategy",
        "logging_strategy",
        "train_sampling_strategy",
    ):
        assert getattr(ours, name) == getattr(getattr(theirs, name), "value", getattr(theirs, name)), name
    assert ours.report_to == [] and theirs.report_to in ("none", [], ["none"])


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant", "constant_with_warmup"])
def test_schedules_match_transformers(kind):
    def rates(make):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = make(optimizer)
        out = []
        for _ in range(25):
            out.append(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
        return out

    ours = rates(lambda o: tf.training.get_scheduler(kind, o, num_warmup_steps=5, num_training_steps=20))
    theirs = rates(lambda o: transformers.get_scheduler(kind, o, num_warmup_steps=5, num_training_steps=20))
    assert ours == theirs


def test_tensorboard_or_a_clear_error(bert_dir, tmp_path):
    model = tf.AutoModelForSequenceClassification.from_pretrained(bert_dir)
    args = args_for(tmp_path, max_steps=2, save_strategy="no", report_to="tensorboard")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install tensorboard"):
            tf.Trainer(model, args, train_dataset=token_rows(8), data_collator=pad_collator)
        return
    tf.Trainer(model, args, train_dataset=token_rows(8), data_collator=pad_collator).train()
    assert list((tmp_path / "runs").glob("events.out.tfevents.*"))


def test_bf16_autocast_trains(bert_dir, tmp_path):
    trainer = train(bert_dir, tmp_path, max_steps=2, save_strategy="no", bf16=True)
    logged = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(logged) == 2 and all(0.3 < loss < 1.5 for loss in logged)
    assert (
        next(trainer.model.parameters()).dtype == torch.float32
    )  # weights stay fp32; autocast computes in bf16
