"""The two fine-tuning jobs behind ``tinyformers train``, as functions: a text classifier from labelled rows, and
a causal LM from plain text or chats (the loss counts the assistant's turns only), either one optionally with
LoRA adapters. Each writes a folder that ``from_pretrained`` here and in transformers loads, with a model card.

Evaluation data, when no file is given, is a fixed share of the training file chosen by each text's hash
(``is_held_out``): the same on every run and machine, and identical texts always land on the same side.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..auto import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from ..hub.upload import upload_folder
from ..utils import atomic_write_text
from .arguments import TrainingArguments
from .checkpoints import PREFIX, write_training_args
from .collators import IGNORE_INDEX, DataCollatorForSeq2Seq, DataCollatorWithPadding
from .lora import LoraConfig, get_peft_model
from .text_files import read_records
from .trainer import EvalPrediction, Trainer, set_seed

TASKS = ("classification", "causal-lm")


def is_held_out(text: str, percent: float) -> bool:
    """Whether ``text`` belongs to the held-out share: the first 8 hex digits of its SHA-256 (UTF-8), read as an
    integer, below ``percent`` % of 2**32."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) < percent * 2**32 // 100


def guess_task(record: Mapping, label_column: str) -> str:
    """A labelled row is classification; a chat (``messages``) or plain text is language modelling."""
    return "classification" if label_column in record else "causal-lm"


def _column(records: list[dict], column: str, source: str) -> list:
    for number, record in enumerate(records, 1):
        if column not in record:
            raise ValueError(
                f"{source}, example {number}: no '{column}' column (it has: {', '.join(record)}); "
                f"name the right one with --text-column / --label-column"
            )
    return [record[column] for record in records]


def _label_kind(value) -> str:
    """'int' (also an integer string, as CSV has them), 'name' (any other non-empty text), or 'bad'."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "int"
    if not isinstance(value, str) or not value.strip():
        return "bad"
    try:
        number = float(value)
    except ValueError:
        return "name"
    return "int" if number.is_integer() and value.strip().lstrip("+-").isdigit() else "bad"


def numbered_names(count: int) -> list[str]:
    """transformers' names for labels that have none."""
    return [f"LABEL_{i}" for i in range(count)]


def encode_labels(values: list, source: str, names: list[str] | None = None) -> tuple[list[int], list[str]]:
    """Labels given as whole numbers or as names -> (ids, the names by id). ``names`` fixes the mapping (the
    evaluation data must use the training data's labels)."""
    kinds = [_label_kind(v) for v in values]
    for number, (value, kind) in enumerate(zip(values, kinds, strict=True), 1):
        if kind == "bad":
            raise ValueError(
                f"{source}, example {number}: label {value!r} is neither a whole number nor a name; "
                "use 0, 1, 2... or names such as 'positive'"
            )
    numbered = names is None or names == numbered_names(len(names))
    if numbered and set(kinds) == {"int"}:
        numbers = [int(v) for v in values]
        if min(numbers) < 0:
            raise ValueError(f"{source}: label {min(numbers)} is negative; labels are 0, 1, 2... or names")
        if names is not None and max(numbers) >= len(names):
            raise ValueError(
                f"{source}: label {max(numbers)} does not occur in the training data (0-{len(names) - 1})"
            )
        return numbers, names or numbered_names(max(numbers) + 1)
    if names is None and len(set(kinds)) > 1:
        example_int = values[kinds.index("int")]
        example_name = values[kinds.index("name")]
        raise ValueError(
            f"{source}: labels mix numbers ({example_int!r}) and names ({example_name!r}); use one or the other"
        )
    values = [str(v) for v in values]
    names = names or sorted(set(values))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(
            f"{source}: labels {unknown[:5]} do not occur in the training data ({', '.join(names)})"
        )
    index = {name: i for i, name in enumerate(names)}
    return [index[v] for v in values], names


def chat_example(messages: list[dict], tokenizer, max_length: int) -> dict:
    """Token ids of a rendered chat, with labels only on what the assistant says (everything else -100).

    The chat is rendered once; each assistant reply's span in that text comes from rendering the chat up to it
    with and without the reply, and token offsets say which tokens fall in a span."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") == "assistant":
            start = len(
                tokenizer.apply_chat_template(messages[:i], add_generation_prompt=True, tokenize=False)
            )
            end = len(tokenizer.apply_chat_template(messages[: i + 1], tokenize=False))
            spans.append((start, end))
    if not spans:
        raise ValueError("a training chat has no assistant message; there is nothing to learn from it")
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_length
    )
    ids = encoded["input_ids"]
    labels = [
        token if any(s <= start < e for s, e in spans) else IGNORE_INDEX
        for token, (start, _) in zip(ids, encoded["offset_mapping"], strict=True)
    ]
    return {"input_ids": ids, "attention_mask": encoded["attention_mask"], "labels": labels}


def text_example(text: str, tokenizer, max_length: int) -> dict:
    encoded = tokenizer(text, truncation=True, max_length=max_length)
    return {**encoded, "labels": list(encoded["input_ids"])}


def _text_of(record: Mapping, text_column: str) -> str:
    if "messages" in record:
        return json.dumps(record["messages"], sort_keys=True, ensure_ascii=False)
    return str(record.get(text_column, ""))


def _records(data: str | os.PathLike | list[dict]) -> list[dict]:
    return read_records(data) if isinstance(data, (str, os.PathLike)) else list(data)


def _file_name(data) -> str | None:
    return Path(data).name if isinstance(data, (str, os.PathLike)) else None


@dataclass
class Job:
    """One ``tinyformers train`` run. ``data`` and ``eval_data`` are files, or the rows themselves (dicts with the
    text and label columns, or chats under ``messages``). After ``run()``, ``trainer`` holds the trained model."""

    model: str
    data: str | os.PathLike | list[dict]
    output_dir: str
    task: str | None = None
    eval_data: str | os.PathLike | list[dict] | None = None
    eval_percent: float = 10.0
    text_column: str = "text"
    label_column: str = "label"
    max_length: int = 256
    lora: LoraConfig | None = None
    training: dict[str, Any] = field(default_factory=dict)

    trainer: Trainer | None = field(default=None, init=False, repr=False)

    @property
    def source(self) -> str:
        """The training data's name in messages."""
        return str(self.data) if _file_name(self.data) else "the training data"

    @property
    def eval_source(self) -> str:
        if self.eval_data is None:
            return self.source
        return str(self.eval_data) if _file_name(self.eval_data) else "the evaluation data"

    def run(self) -> dict:
        records = _records(self.data)
        if not records:
            raise ValueError(f"{self.source} holds no examples")
        task = self.task or guess_task(records[0], self.label_column)
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'; use one of: {', '.join(TASKS)}")
        if self.eval_data is not None:
            train, held_out = records, _records(self.eval_data)
        else:
            train = [r for r in records if not is_held_out(_text_of(r, self.text_column), self.eval_percent)]
            held_out = [r for r in records if is_held_out(_text_of(r, self.text_column), self.eval_percent)]
        if not train:
            raise ValueError(
                f"{self.source}: every example fell into the evaluation share; lower --eval-percent"
            )
        # The data is checked whole before any model loads: a bad row fails in a second, not after loading.
        if task == "classification":
            labelled = self._labelled(train, held_out)
        else:
            for rows, source in ((train, self.source), (held_out, self.eval_source)):
                _column([r for r in rows if "messages" not in r], self.text_column, source)
        tokenizer = AutoTokenizer.from_pretrained(self.model)
        if task == "classification":
            model, train_set, eval_set, collator, metrics = self._classification(tokenizer, *labelled)
        else:
            model, train_set, eval_set, collator, metrics = self._causal_lm(tokenizer, train, held_out)
        if self.lora is not None:
            # peft's task types: a classifier's new head trains in full beside the adapters
            self.lora.task_type = self.lora.task_type or (
                "SEQ_CLS" if task == "classification" else "CAUSAL_LM"
            )
            set_seed(self.training.get("seed", 42))  # the adapters' random start, repeatable like the rest
            model = get_peft_model(model, self.lora)
        options = dict(self.training)
        if eval_set:  # report held-out metrics at least at the end of each epoch
            options.setdefault("eval_strategy", "epoch")
        args = TrainingArguments(self.output_dir, **options)
        trainer = Trainer(
            model,
            args,
            train_dataset=train_set,
            eval_dataset=eval_set or None,
            data_collator=collator,
            processing_class=tokenizer,
            compute_metrics=metrics,
        )
        self.trainer = trainer
        trained = trainer.train().metrics
        results = trainer.evaluate() if eval_set else {}
        results.update({k: trained[k] for k in ("train_loss", "train_runtime", "train_samples_per_second")})
        if trainer.state.is_world_process_zero:
            self._save(trainer, tokenizer, task, results, len(train_set), len(eval_set))
        return results

    def _labelled(self, train: list[dict], held_out: list[dict]):
        """(texts, label ids) for training and evaluation, and the label names by id."""
        source, eval_source = self.source, self.eval_source
        ids, names = encode_labels(_column(train, self.label_column, source), source)
        if len(set(ids)) < 2:
            raise ValueError(
                f"{source}: the training data has only one label ({names[ids[0]]!r}); a classifier needs "
                "examples of at least two"
            )
        texts = _column(train, self.text_column, source)
        eval_ids, _ = (
            encode_labels(_column(held_out, self.label_column, eval_source), eval_source, names)
            if held_out
            else ([], names)
        )
        eval_texts = _column(held_out, self.text_column, eval_source) if held_out else []
        return (texts, ids), (eval_texts, eval_ids), names

    def _classification(self, tokenizer, train: tuple, held_out: tuple, names: list[str]):
        id2label = dict(enumerate(names))
        model = AutoModelForSequenceClassification.from_pretrained(
            self.model, num_labels=len(names), id2label=id2label, label2id={v: k for k, v in id2label.items()}
        )

        def encode(texts, labels):
            return [
                {**tokenizer(str(t), truncation=True, max_length=self.max_length), "label": y}
                for t, y in zip(texts, labels, strict=True)
            ]

        def accuracy(prediction: EvalPrediction) -> dict:
            hits = np.argmax(prediction.predictions, -1) == prediction.label_ids
            return {"accuracy": float(hits.mean())}

        # Evaluation in order of length: each batch pads to little more than its own texts (the order does not
        # change the metrics).
        held_out_rows = sorted(encode(*held_out), key=lambda row: len(row["input_ids"]))
        return model, encode(*train), held_out_rows, DataCollatorWithPadding(tokenizer), accuracy

    def _causal_lm(self, tokenizer, train: list[dict], held_out: list[dict]):
        def encode(records: list[dict]) -> list[dict]:
            out = []
            for record in records:
                if "messages" in record:
                    out.append(chat_example(record["messages"], tokenizer, self.max_length))
                else:
                    out.append(text_example(str(record[self.text_column]), tokenizer, self.max_length))
            return out

        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of the loss; any id will do
        model = AutoModelForCausalLM.from_pretrained(self.model)
        return model, encode(train), encode(held_out), DataCollatorForSeq2Seq(tokenizer), None

    def _save(self, trainer: Trainer, tokenizer, task: str, results: dict, n_train: int, n_eval: int) -> None:
        """The final model in ``output_dir`` (a LoRA run merges its adapter in, and keeps the adapter alone in
        ``output_dir/adapter``), with a model card."""
        out = Path(self.output_dir)
        model = trainer.model
        if self.lora is not None:
            model.save_pretrained(out / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        write_training_args(out, trainer.args)
        card = training_card(self, task, results, n_train, n_eval, model.config)
        atomic_write_text(out / "README.md", card)


def _published(path: Path) -> bool:
    """What a push uploads from an output folder: not the checkpoints (transformers' Trainer leaves
    ``checkpoint-*`` out too), nor hidden files."""
    return not path.name.startswith((".", f"{PREFIX}-", f"tmp-{PREFIX}-"))


def push_output(output_dir: str | os.PathLike, repo_id: str, message: str | None = None) -> dict:
    """Upload a trained model's folder to ``repo_id`` on ``$HF_ENDPOINT`` in one commit, creating the repo if
    needed; returns {"commitOid", "commitUrl"}. The files go up from a staging folder of hard links (copies
    where links fail), so the checkpoints beside them stay local."""
    out = Path(output_dir)
    with tempfile.TemporaryDirectory(prefix=".push-", dir=out) as stage:
        for path in out.iterdir():
            if not _published(path):
                continue
            if path.is_dir():
                shutil.copytree(path, Path(stage) / path.name, copy_function=_link_or_copy)
            else:
                _link_or_copy(path, Path(stage) / path.name)
        return upload_folder(
            stage, repo_id, message=message or f"Upload {out.name} trained with tinyformers", create=True
        )


def _link_or_copy(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:"] + [f"- {json.dumps(v)}" for v in values] if values else []


def _lora_summary(config: LoraConfig) -> dict:
    keys = ("r", "lora_alpha", "lora_dropout", "target_modules", "modules_to_save")
    return {k: getattr(config, k) for k in keys}


def training_card(job: Job, task: str, results: dict, n_train: int, n_eval: int, config) -> str:
    """README.md with the hub's YAML front matter (base model, data, metrics, task) and how it was trained."""
    pipeline_tag = "text-classification" if task == "classification" else "text-generation"
    data_files = [name for name in (_file_name(job.data), _file_name(job.eval_data)) if name]
    metrics = sorted(k.removeprefix("eval_") for k in results if k.startswith("eval_") and "runtime" not in k)
    front = [
        "---",
        "library_name: transformers",
        f"pipeline_tag: {pipeline_tag}",
        *_yaml_list("base_model", [job.model] if not os.path.exists(job.model) else []),
        *_yaml_list("tags", ["tinyformers", config.model_type] + (["lora"] if job.lora else [])),
        *_yaml_list("datasets", data_files),
        *_yaml_list("metrics", metrics),
        "---",
    ]
    training_from = f"`{_file_name(job.data)}`" if _file_name(job.data) else job.source
    held_out = (
        f"{n_eval} examples from {job.eval_source}"
        if job.eval_data is not None
        else (f"{n_eval} examples ({job.eval_percent:g} % of the data, chosen by the hash of each text)")
    )
    lines = [
        f"# {Path(job.output_dir).name}",
        "",
        f"Fine-tuned from `{job.model}` for {task} with `tinyformers train`.",
        "",
        "## Data",
        "",
        f"- training: {n_train} examples from {training_from}",
        f"- evaluation: {held_out}",
        "",
        "## Results",
        "",
        *(
            [f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in sorted(results.items())]
            or ["- no evaluation data"]
        ),
        "",
        "## Training arguments",
        "",
        "```json",
        json.dumps(
            {
                **job.training,
                "max_length": job.max_length,
                **({"lora": _lora_summary(job.lora)} if job.lora else {}),
            },
            indent=2,
            sort_keys=True,
            default=str,
        ),
        "```",
        "",
    ]
    return "\n".join(front) + "\n\n" + "\n".join(lines)
