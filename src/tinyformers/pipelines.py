"""``pipeline(task, model)``: text in, plain Python results out, shaped exactly as transformers' pipelines.

Each task is one small class with three steps:

* ``preprocess(items, params)`` — a batch of raw inputs -> tokenized tensors (plus whatever postprocess needs);
* ``forward(batch, params)`` — the model, under ``torch.inference_mode``;
* ``postprocess(batch, outputs, params)`` -> one result per input (lists/dicts with transformers' keys).

The base class does the rest: merging the keyword arguments given to ``pipeline(...)`` with those of the call,
batching (``batch_size``), and the three input forms: one input -> one result, a list -> a list, any other
iterable (a generator, a dataset) -> a lazy iterator with a tqdm progress bar.

Tasks: feature-extraction, sentence-embedding (ours: pooled, normalised vectors), fill-mask,
text-classification (alias sentiment-analysis), zero-shot-classification (with an NLI checkpoint),
token-classification (alias ner), text-generation (plain text and chat messages), and for seq2seq models (T5,
Flan-T5) text2text-generation, summarization and translation_xx_to_yy (transformers 4's pipelines: transformers 5
dropped them).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .auto import MODELS, AutoConfig, AutoTokenizer, import_object
from .errors import UnexpectedArgumentError, UnknownTaskError
from .hub import pin_revision

# ------------------------------------------------------------------------------------------------------------
# Helpers shared with the rest of the package
# ------------------------------------------------------------------------------------------------------------


def mean_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average the token vectors of each sequence, ignoring padding (sentence-transformers' 'mean tokens')."""
    if attention_mask is None:
        return last_hidden_state.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def cls_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    return last_hidden_state[:, 0]


def max_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    if attention_mask is None:
        return last_hidden_state.max(dim=1).values
    padding = attention_mask.unsqueeze(-1) == 0
    return last_hidden_state.masked_fill(padding, float("-inf")).max(dim=1).values


POOLINGS = {"mean": mean_pooling, "cls": cls_pooling, "max": max_pooling}


@torch.inference_mode()
def sentence_embeddings(
    model, tokenizer, sentences: list[str], normalize: bool = True, max_length: int | None = None
):
    """One vector per sentence: encoder -> mean pooling -> (optionally) L2 normalisation, as all-MiniLM-L6-v2 does."""
    enc = tokenizer(sentences, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    emb = mean_pooling(out.last_hidden_state, enc["attention_mask"])
    return F.normalize(emb, p=2, dim=1) if normalize else emb


# ------------------------------------------------------------------------------------------------------------
# The base class
# ------------------------------------------------------------------------------------------------------------

# Inputs longer than this many items get a progress bar (when stderr is a terminal); shorter ones stay quiet.
PROGRESS_MIN_ITEMS = 64


class Pipeline:
    """Shared driver: parameters, batching, single/list/stream inputs. Subclasses define the three steps."""

    task: ClassVar[str] = ""
    auto_class: ClassVar[str] = "AutoModel"
    # Call parameters this task accepts, with their defaults (None = "decide from the model").
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, model, tokenizer, device=None, batch_size: int = 1, task: str | None = None, **params):
        self.model = model.eval()
        self.tokenizer = tokenizer
        if device is not None:
            self.model.to(as_torch_device(device))
        self.device = self.model.device
        self.batch_size = batch_size
        self.task = task or type(self).task
        self._params = self.check_params(params)

    # -- parameters ---------------------------------------------------------------------------------------------
    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Refuse unknown keyword arguments (a typo would otherwise be silently ignored)."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise UnexpectedArgumentError(
                f"the {self.task} pipeline got unexpected argument(s) {', '.join(unknown)}; "
                f"it accepts: {', '.join(sorted(self.defaults)) or 'none'}"
            )
        return params

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Hook: turn the merged parameters into what the steps use (e.g. target words into ids)."""
        return params

    # -- driving ------------------------------------------------------------------------------------------------
    def is_single(self, inputs: Any) -> bool:
        return isinstance(inputs, (str, dict))

    def __call__(self, inputs, batch_size: int | None = None, progress: bool | None = None, **params):
        merged = {**self.defaults, **self._params, **self.check_params(params)}
        merged = self.resolve_params(merged)
        batch_size = batch_size or self.batch_size
        if self.is_single(inputs):
            return self.run_batch([inputs], merged)[0]
        if isinstance(inputs, (list, tuple)):
            return list(self.stream(inputs, batch_size, merged, progress, total=len(inputs)))
        if isinstance(inputs, Iterable):
            total = len(inputs) if hasattr(inputs, "__len__") else None
            return self.stream(inputs, batch_size, merged, progress, total)
        raise TypeError(
            f"the {self.task} pipeline takes a str, a list of str or an iterable of them; got {type(inputs).__name__}"
        )

    def stream(self, inputs: Iterable, batch_size: int, params: dict, progress, total) -> Iterator:
        """Results one by one, running the model ``batch_size`` inputs at a time."""
        bar = progress_bar(total, progress, desc=self.task)
        items = iter(inputs)
        try:
            while chunk := list(itertools.islice(items, batch_size)):
                yield from self.run_batch(chunk, params)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()

    def run_batch(self, items: list, params: dict) -> list:
        if len(items) > 1 and not self.can_pad():
            # No pad token (GPT-2): a padded batch is impossible, so run the items one at a time.
            return [result for item in items for result in self.run_batch([item], params)]
        batch = self.preprocess(items, params)
        with torch.inference_mode():
            outputs = self.forward(batch, params)
        return self.postprocess(batch, outputs, params)

    def can_pad(self) -> bool:
        return self.tokenizer.pad_token is not None

    # -- the three steps ----------------------------------------------------------------------------------------
    def preprocess(self, items: list, params: dict) -> dict:
        return {"model_inputs": self.encode(items)}

    def forward(self, batch: dict, params: dict):
        return self.model(**batch["model_inputs"])

    def postprocess(self, batch: dict, outputs, params: dict) -> list:
        raise NotImplementedError

    def encode(self, texts: list, **kwargs) -> dict[str, torch.Tensor]:
        """Tokenize a batch to padded tensors on the model's device (truncated to the model's length)."""
        kwargs.setdefault("truncation", True)
        enc = self.tokenizer(texts, padding=True, return_tensors="pt", **kwargs)
        return enc.to(self.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__})"


def progress_bar(total: int | None, progress: bool | None, desc: str):
    """A tqdm bar when asked (progress=True), or automatically for long or unsized inputs on a terminal."""
    if progress is False or (progress is None and total is not None and total < PROGRESS_MIN_ITEMS):
        return None
    from tqdm.auto import tqdm

    # disable=None: silent when stderr is not a terminal (logs, CI, pipes) unless explicitly asked for.
    return tqdm(total=total, desc=desc, unit="item", disable=None if progress is None else False)


def as_torch_device(device) -> torch.device:
    """transformers' device spellings: -1 = CPU, 0.. = that CUDA device, or a str / torch.device."""
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device("cuda", device)
    return torch.device(device)


def rows(mask: torch.Tensor) -> list[torch.Tensor]:
    """The positions of each row's real (non-padding) tokens."""
    return [row.nonzero().squeeze(-1) for row in mask.bool()]


# ------------------------------------------------------------------------------------------------------------
# Encoder tasks
# ------------------------------------------------------------------------------------------------------------


class FeatureExtractionPipeline(Pipeline):
    """Hidden states of every token: ``[[[float] * hidden] * tokens]`` per input (nested lists, like transformers).

    Unlike transformers with ``batch_size > 1``, padding positions are never part of the result: each input
    gives exactly its own tokens, whatever the batch size.
    """

    task = "feature-extraction"
    defaults = {"return_tensors": False, "truncation": True, "tokenize_kwargs": None}

    def preprocess(self, items, params):
        return {
            "model_inputs": self.encode(
                items, truncation=params["truncation"], **(params["tokenize_kwargs"] or {})
            )
        }

    def postprocess(self, batch, outputs, params):
        hidden = outputs[0]
        results = []
        for i, keep in enumerate(rows(batch["model_inputs"]["attention_mask"])):
            features = hidden[i, keep][None]  # [1, tokens, hidden]: transformers keeps the batch axis
            results.append(features.cpu() if params["return_tensors"] else features.tolist())
        return results


def pooling_mode(model_dir: Path | None) -> str:
    """sentence-transformers' pooling from ``1_Pooling/config.json`` (mean when the folder does not say)."""
    from .utils import read_json

    config = model_dir / "1_Pooling" / "config.json" if model_dir else None
    if config is None or not config.is_file():
        return "mean"
    settings = read_json(config)
    for mode in POOLINGS:
        if settings.get(f"pooling_mode_{mode}_token") or settings.get(f"pooling_mode_{mode}_tokens"):
            return mode
    raise ValueError(
        f"{config} asks for a pooling tinyformers does not have; supported: {', '.join(POOLINGS)}"
    )


def normalizes(model_dir: Path | None) -> bool:
    """Whether the sentence-transformers folder ends with a Normalize module (all-MiniLM-L6-v2 does)."""
    from .utils import read_json

    modules = model_dir / "modules.json" if model_dir else None
    if modules is None or not modules.is_file():
        return True
    return any(m.get("type", "").endswith(".Normalize") for m in read_json(modules))


class SentenceEmbeddingPipeline(Pipeline):
    """One vector per input: hidden states pooled (mean, or what ``1_Pooling/config.json`` says), then L2
    normalised when the folder's ``modules.json`` has a Normalize step (override with ``normalize=``).

    Not a transformers task: it is what sentence-transformers' ``model.encode(text)`` returns, as a list of
    floats (``return_tensors=True`` for a tensor).
    """

    task = "sentence-embedding"
    defaults = {"normalize": None, "pooling": None, "return_tensors": False}

    def resolve_params(self, params):
        model_dir = model_folder(self.model)
        return {
            **params,
            "normalize": normalizes(model_dir) if params["normalize"] is None else params["normalize"],
            "pooling": POOLINGS[params["pooling"] or pooling_mode(model_dir)],
        }

    def postprocess(self, batch, outputs, params):
        mask = batch["model_inputs"]["attention_mask"]
        vectors = params["pooling"](outputs[0], mask)
        if params["normalize"]:
            vectors = F.normalize(vectors, p=2, dim=1)
        return [v.cpu() if params["return_tensors"] else v.tolist() for v in vectors]


def model_folder(model) -> Path | None:
    path = Path(getattr(model.config, "_name_or_path", "") or ".")
    return path if path.is_dir() else None


class FillMaskPipeline(Pipeline):
    """The most likely tokens for each mask: ``[{"score", "token", "token_str", "sequence"}] * top_k``."""

    task = "fill-mask"
    auto_class = "AutoModelForMaskedLM"
    defaults = {"top_k": 5, "targets": None, "tokenizer_kwargs": None}

    def resolve_params(self, params):
        if self.tokenizer.mask_token_id is None:
            raise ValueError("fill-mask needs a tokenizer with a mask_token; this one has none")
        target_ids = self.target_ids(params["targets"]) if params["targets"] is not None else None
        return {**params, "target_ids": target_ids}

    def target_ids(self, targets: str | list[str]) -> torch.Tensor:
        """Vocabulary ids of the target words; a word not in the vocabulary stands for its first token."""
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in [targets] if isinstance(targets, str) else targets:
            if target in vocab:
                ids.append(vocab[target])
                continue
            pieces = self.tokenizer(target, add_special_tokens=False)["input_ids"]
            if pieces:
                ids.append(pieces[0])
        if not ids:
            raise ValueError(
                "fill-mask: none of the targets is in the vocabulary; pass at least one word it knows"
            )
        return torch.tensor(list(dict.fromkeys(ids)))

    def preprocess(self, items, params):
        enc = self.encode(items, **(params["tokenizer_kwargs"] or {}))
        for text, ids in zip(items, enc["input_ids"]):
            if not bool((ids == self.tokenizer.mask_token_id).any()):
                raise ValueError(f"no mask token ({self.tokenizer.mask_token}) in the input {text!r}")
        return {"model_inputs": enc}

    def postprocess(self, batch, outputs, params):
        enc = batch["model_inputs"]
        return [
            self.fill(enc["input_ids"][i, keep].cpu(), outputs.logits[i, keep].float().cpu(), params)
            for i, keep in enumerate(rows(enc["attention_mask"]))
        ]

    def fill(self, input_ids: torch.Tensor, logits: torch.Tensor, params: dict) -> list:
        target_ids = params["target_ids"]
        masked = (input_ids == self.tokenizer.mask_token_id).nonzero().squeeze(-1)
        probs = logits[masked].softmax(dim=-1)
        if target_ids is not None:
            probs = probs[:, target_ids]
        values, predictions = probs.topk(min(params["top_k"], probs.shape[-1]))
        single_mask = len(masked) == 1
        result = []
        for position, scores, ids in zip(masked.tolist(), values.tolist(), predictions.tolist()):
            row = []
            for score, token in zip(scores, ids):
                token = int(target_ids[token]) if target_ids is not None else token
                filled = input_ids.clone()
                filled[position] = token
                filled = filled[filled != self.tokenizer.pad_token_id]
                # Special tokens are dropped for readability, except with several masks where the others stay.
                sequence = self.tokenizer.decode(filled, skip_special_tokens=single_mask)
                row.append(
                    {
                        "score": score,
                        "token": token,
                        "token_str": self.tokenizer.decode([token]),
                        "sequence": sequence,
                    }
                )
            result.append(row)
        return result[0] if single_mask else result

    def __call__(self, inputs, **kwargs):
        results = super().__call__(inputs, **kwargs)
        # transformers' quirk, kept so code written for it works: a one-item list gives that item's result.
        return results[0] if isinstance(inputs, list) and len(inputs) == 1 else results


def default_function(config) -> str:
    """transformers' rule: regression -> none; one label or multi-label -> sigmoid; else softmax."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


SCORE_FUNCTIONS = {
    "softmax": lambda x: x.softmax(dim=-1),
    "sigmoid": torch.sigmoid,
    "none": lambda x: x,
}

_UNSET = object()  # "not passed", because top_k=None is meaningful (all labels)


class TextClassificationPipeline(Pipeline):
    """Labels with scores. A str gives ``[{"label", "score"}]`` (the best label); with ``top_k=k`` the k best,
    sorted; ``top_k=None`` every label. Text pairs as ``{"text": ..., "text_pair": ...}``."""

    task = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    defaults = {"top_k": _UNSET, "function_to_apply": None, "return_all_scores": None}

    def resolve_params(self, params):
        function = params["function_to_apply"] or default_function(self.model.config)
        function = str(getattr(function, "value", function)).lower()
        if function not in SCORE_FUNCTIONS:
            raise ValueError(
                f"function_to_apply={function!r} is not valid; use one of {', '.join(SCORE_FUNCTIONS)}"
            )
        return {**params, "function_to_apply": function}

    def preprocess(self, items, params):
        if all(isinstance(item, dict) for item in items):
            firsts, seconds = [item["text"] for item in items], [item.get("text_pair") for item in items]
            if all(s is not None for s in seconds):
                return {"model_inputs": self.encode(firsts, text_pair=seconds)}
            return {"model_inputs": self.encode(firsts)}
        if not all(isinstance(item, str) for item in items):
            raise ValueError(
                'text-classification takes str inputs; for a text pair pass {"text": "...", "text_pair": "..."}'
            )
        return {"model_inputs": self.encode(items)}

    def postprocess(self, batch, outputs, params):
        scores = SCORE_FUNCTIONS[params["function_to_apply"]](outputs.logits.float()).cpu()
        return [self.labels(row, params) for row in scores]

    def labels(self, scores: torch.Tensor, params: dict):
        id2label = self.model.config.id2label
        top_k = params["top_k"]
        if top_k is _UNSET:
            if params["return_all_scores"]:  # transformers 4's legacy form: every label, in label order
                return [{"label": id2label[i], "score": s} for i, s in enumerate(scores.tolist())]
            best = int(scores.argmax())
            return {"label": id2label[best], "score": float(scores[best])}
        ranked = sorted(
            ({"label": id2label[i], "score": s} for i, s in enumerate(scores.tolist())),
            key=lambda x: x["score"],
            reverse=True,
        )
        return ranked if top_k is None else ranked[:top_k]

    def __call__(self, inputs, **kwargs):
        results = super().__call__(inputs, **kwargs)
        # transformers' quirk: a single str without top_k in the call gives a one-element list.
        return [results] if isinstance(inputs, str) and "top_k" not in kwargs else results


def entailment_label_id(config) -> int:
    """The id of the NLI head's entailment label: the first label whose name starts with "entail" (any case)."""
    for label, label_id in config.label2id.items():
        if label.lower().startswith("entail"):
            return label_id
    raise ValueError(
        f"zero-shot-classification needs an NLI model whose labels include entailment, but this model's labels "
        f"are {list(config.label2id)}: use a checkpoint fine-tuned on NLI (MNLI, XNLI...) or name its labels in "
        "config.json's id2label, e.g. {'0': 'contradiction', '1': 'neutral', '2': 'entailment'}"
    )


def candidate_label_list(candidate_labels) -> list:
    """The labels as a list: a str is a comma-separated list ("sports, politics"), blanks dropped."""
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
    elif isinstance(candidate_labels, (list, tuple)):
        candidate_labels = list(candidate_labels)
    elif candidate_labels is not None:
        raise ValueError(
            "candidate_labels must be a list of labels or a comma-separated str; "
            f"got {type(candidate_labels).__name__}"
        )
    if not candidate_labels:
        raise ValueError(
            "zero-shot-classification needs candidate labels: pass candidate_labels=['sports', 'politics'] "
            "(or the str 'sports, politics')"
        )
    return candidate_labels


def check_hypothesis_template(template: str, label) -> None:
    """transformers' test: the template must change when a label is put in it."""
    try:
        formatted = template.format(label)
    except (IndexError, KeyError, ValueError):
        formatted = template
    if formatted == template:
        raise ValueError(
            f"hypothesis_template {template!r} has no {{}} where the label goes; "
            "write it like 'This example is {}.'"
        )


class ZeroShotClassificationPipeline(Pipeline):
    """Classify texts into labels chosen at call time, with a model fine-tuned on NLI (natural language
    inference): each (text, label) pair is posed as premise = the text, hypothesis = ``hypothesis_template``
    filled with the label, and the entailment logit says how well the label fits.

    A str gives ``{"sequence", "labels", "scores"}``, labels sorted by score; a list of str one such dict per
    text. ``candidate_labels`` is a list or a comma-separated str (also the call's second positional
    argument). ``multi_label=False``: a softmax of the entailment logits across the labels (scores sum to 1);
    ``multi_label=True`` (and always with a single label): each label on its own, a softmax of entailment vs.
    contradiction, where contradiction is taken as label id 0 (or the last id when entailment is 0), as in
    transformers. ``batch_size`` counts texts: each runs as ``len(candidate_labels)`` rows.
    """

    task = "zero-shot-classification"
    auto_class = "AutoModelForSequenceClassification"
    defaults = {"candidate_labels": None, "hypothesis_template": "This example is {}.", "multi_label": False}

    def __init__(self, model, tokenizer, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        # Checked once, when the pipeline is built: without it every score would be meaningless.
        self.entailment_id = entailment_label_id(self.model.config)

    def resolve_params(self, params):
        labels = candidate_label_list(params["candidate_labels"])
        check_hypothesis_template(params["hypothesis_template"], labels[0])
        return {**params, "candidate_labels": labels}

    def preprocess(self, items, params):
        for item in items:
            if not isinstance(item, str) or not item:
                raise ValueError(f"zero-shot-classification takes non-empty str inputs; got {item!r:.60}")
        template = params["hypothesis_template"]
        rows = [
            self.encode_pair(text, template.format(label))
            for text in items
            for label in params["candidate_labels"]
        ]
        if self.can_pad():
            chunks = [self.tokenizer.pad(rows, return_tensors="pt")]
        else:  # no pad token (GPT-2): pairs of different lengths cannot share a forward pass, so each runs alone
            chunks = [self.tokenizer.pad([row], padding=False, return_tensors="pt") for row in rows]
        return {"texts": items, "chunks": [chunk.to(self.device) for chunk in chunks]}

    def encode_pair(self, premise: str, hypothesis: str) -> dict[str, list[int]]:
        """Token ids of one (premise, hypothesis) pair, truncated "only_first": the premise is cut to fit the
        model, never the hypothesis that names the label."""
        try:
            return dict(self.tokenizer(premise, hypothesis, truncation="only_first"))
        except ValueError:
            # The hypothesis alone is longer than the limit, so no cut of the premise can make the pair fit: as
            # transformers does, the pair then goes to the model untruncated.
            return dict(self.tokenizer(premise, hypothesis))

    def forward(self, batch, params):
        return torch.cat([self.model(**chunk).logits for chunk in batch["chunks"]])

    def postprocess(self, batch, logits, params):
        labels = params["candidate_labels"]
        logits = logits.float().cpu().reshape(len(batch["texts"]), len(labels), -1)
        entailment = self.entailment_id
        # One label alone would always score 1 against itself, so it is scored independently too.
        if params["multi_label"] or len(labels) == 1:
            contradiction = -1 if entailment == 0 else 0
            scores = logits[..., [contradiction, entailment]].softmax(dim=-1)[..., 1]
        else:
            scores = logits[..., entailment].softmax(dim=-1)
        return [ranked_labels(text, labels, row.tolist()) for text, row in zip(batch["texts"], scores)]

    def __call__(self, inputs, *args, **kwargs):
        # transformers' form pipe(text, ["a", "b"]): the labels may come as the second positional argument.
        if len(args) > 1:
            raise ValueError(
                f"zero-shot-classification takes (texts, candidate_labels) positionally; got {len(args)} "
                "arguments after the texts: pass the others by name (hypothesis_template=..., multi_label=...)"
            )
        if args and "candidate_labels" in kwargs:
            raise ValueError("candidate labels given twice, positionally and as candidate_labels=; keep one")
        if args:
            kwargs["candidate_labels"] = args[0]
        return super().__call__(inputs, **kwargs)


def ranked_labels(text: str, labels: list, scores: list[float]) -> dict:
    # Best first; equal scores (a label given twice) put the later one first, as the reversed stable argsort of
    # transformers does.
    order = sorted(range(len(labels)), key=lambda i: (scores[i], i), reverse=True)
    return {"sequence": text, "labels": [labels[i] for i in order], "scores": [scores[i] for i in order]}


AGGREGATIONS = ("none", "simple", "first", "max", "average")


class TokenClassificationPipeline(Pipeline):
    """A label per token (``entity``, ``score``, ``index``, ``word``, ``start``, ``end``) or, with an
    ``aggregation_strategy``, per entity span (``entity_group`` instead of ``entity``, no ``index``)."""

    task = "token-classification"
    auto_class = "AutoModelForTokenClassification"
    defaults = {"aggregation_strategy": "none", "ignore_labels": None}

    def resolve_params(self, params):
        strategy = str(
            getattr(params["aggregation_strategy"], "value", params["aggregation_strategy"])
        ).lower()
        if strategy not in AGGREGATIONS:
            raise ValueError(
                f"aggregation_strategy={strategy!r} is not valid; use one of {', '.join(AGGREGATIONS)}"
            )
        ignore = params["ignore_labels"]
        return {
            **params,
            "aggregation_strategy": strategy,
            "ignore_labels": ["O"] if ignore is None else ignore,
        }

    def preprocess(self, items, params):
        if not all(isinstance(item, str) for item in items):
            raise ValueError("token-classification takes str inputs (pre-split words are not supported yet)")
        enc = self.encode(items, return_offsets_mapping=True, return_special_tokens_mask=True)
        return {
            "texts": items,
            "offsets": enc.pop("offset_mapping").tolist(),
            "special": enc.pop("special_tokens_mask").tolist(),
            "model_inputs": enc,
        }

    def postprocess(self, batch, outputs, params):
        probs = outputs.logits.float().softmax(dim=-1).cpu()
        ids = batch["model_inputs"]["input_ids"].tolist()
        results = []
        for i, text in enumerate(batch["texts"]):
            tokens = self.gather_tokens(text, ids[i], probs[i], batch["offsets"][i], batch["special"][i])
            entities = aggregate(
                tokens, params["aggregation_strategy"], self.model.config.id2label, self.tokenizer
            )
            ignore = params["ignore_labels"]
            results.append([e for e in entities if e.get("entity", e.get("entity_group")) not in ignore])
        return results

    def gather_tokens(self, text: str, ids: list[int], probs: torch.Tensor, offsets, special) -> list[dict]:
        """One record per real token: its text, class probabilities, character span and whether it continues a word."""
        prefix = getattr(self.tokenizer.backend.model, "continuing_subword_prefix", None)
        tokens = []
        for index, (token_id, (start, end), is_special) in enumerate(zip(ids, offsets, special)):
            if is_special:  # [CLS], [SEP] and padding
                continue
            word, piece = self.tokenizer.convert_ids_to_tokens(token_id), text[start:end]
            if prefix:  # "##ing" is longer than "ing": a continuation
                is_subword = len(word) != len(piece)
            else:  # no marker in the vocabulary: a token glued to the previous character continues a word
                is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            if token_id == self.tokenizer.unk_token_id:
                word, is_subword = piece, False
            tokens.append(
                {
                    "word": word,
                    "scores": probs[index],
                    "start": start,
                    "end": end,
                    "index": index,
                    "is_subword": is_subword,
                }
            )
        return tokens


def aggregate(tokens: list[dict], strategy: str, id2label: dict, tokenizer) -> list[dict]:
    """transformers' aggregation: label tokens (none/simple) or whole words (first/max/average), then, unless
    ``none``, merge neighbours with the same entity type (B-/I- prefixes) into groups."""
    if strategy in ("none", "simple"):
        entities = [token_entity(t, id2label) for t in tokens]
    else:
        entities = [word_entity(word, strategy, id2label, tokenizer) for word in split_words(tokens)]
    return entities if strategy == "none" else group_entities(entities, tokenizer)


def token_entity(token: dict, id2label: dict) -> dict:
    best = int(token["scores"].argmax())
    return {
        "entity": id2label[best],
        "score": float(token["scores"][best]),
        "index": token["index"],
        "word": token["word"],
        "start": token["start"],
        "end": token["end"],
    }


def split_words(tokens: list[dict]) -> list[list[dict]]:
    words: list[list[dict]] = []
    for token in tokens:
        if words and token["is_subword"]:
            words[-1].append(token)
        else:
            words.append([token])
    return words


def word_entity(word: list[dict], strategy: str, id2label: dict, tokenizer) -> dict:
    if strategy == "first":
        scores = word[0]["scores"]
    elif strategy == "max":
        scores = max(word, key=lambda t: float(t["scores"].max()))["scores"]
    else:  # average
        scores = torch.stack([t["scores"] for t in word]).nanmean(dim=0)
    best = int(scores.argmax())
    return {
        "entity": id2label[best],
        "score": float(scores[best]),
        "word": tokenizer.convert_tokens_to_string([t["word"] for t in word]),
        "start": word[0]["start"],
        "end": word[-1]["end"],
    }


def bio_tag(label: str) -> tuple[str, str]:
    """("B" or "I", entity type): "B-PER" -> ("B", "PER"); a label without prefix counts as inside."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def group_entities(entities: list[dict], tokenizer) -> list[dict]:
    groups: list[list[dict]] = []
    for entity in entities:
        bi, tag = bio_tag(entity["entity"])
        if groups and bi != "B" and tag == bio_tag(groups[-1][-1]["entity"])[1]:
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return [
        {
            "entity_group": bio_tag(group[0]["entity"])[1],
            "score": sum(e["score"] for e in group) / len(group),
            "word": tokenizer.convert_tokens_to_string([e["word"] for e in group]),
            "start": group[0]["start"],
            "end": group[-1]["end"],
        }
        for group in groups
    ]


# ------------------------------------------------------------------------------------------------------------
# Generation tasks
# ------------------------------------------------------------------------------------------------------------


def is_chat(value: Any) -> bool:
    """A conversation: a list of {"role", "content"} messages."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts padded on the left, so that every row's next token comes right after its own last token."""
    width = max(len(s) for s in sequences)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in sequences], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], dtype=torch.long)
    return ids, mask


# transformers 5's text-generation defaults, for what neither the call nor the model's generation config sets:
# free text is sampled (so two calls differ; pass do_sample=False for greedy, reproducible output).
PIPELINE_GENERATION_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}
SAMPLING_PARAMS = {"temperature", "top_k", "top_p", "min_p"}


def with_pipeline_defaults(generate_kwargs: dict, model_generation_config) -> dict:
    already_set = {**model_generation_config.set_fields(), **generate_kwargs}
    added = {
        key: value
        for key, value in PIPELINE_GENERATION_DEFAULTS.items()
        if key not in already_set and not (key == "max_new_tokens" and "max_length" in already_set)
    }
    if not {**already_set, **added}.get("do_sample"):
        added = {k: v for k, v in added.items() if k not in SAMPLING_PARAMS}
    return {**generate_kwargs, **added}


class TextGenerationPipeline(Pipeline):
    """Continue a prompt, or answer a chat.

    A str gives ``[{"generated_text": prompt + continuation}]`` (``return_full_text=False``: the continuation
    only); a chat (a list of {"role", "content"} messages) gives ``[{"generated_text": [*messages,
    {"role": "assistant", "content": answer}]}]``. Other keyword arguments (``max_new_tokens``, ``do_sample``,
    ``temperature``, ``num_return_sequences``, ...) go to ``generate``. As in transformers 5, what neither the
    call nor the model's generation config sets defaults to ``max_new_tokens=256, do_sample=True,
    temperature=0.7``: pass ``do_sample=False`` for reproducible (greedy) output.
    """

    task = "text-generation"
    auto_class = "AutoModelForCausalLM"
    defaults = {
        "return_full_text": None,
        "return_tensors": None,
        "return_text": None,
        "clean_up_tokenization_spaces": None,
        "skip_special_tokens": True,
        "prefix": "",
        "add_special_tokens": None,
        "max_length": None,
        "continue_final_message": None,
        "stop_sequence": None,
    }

    def check_params(self, params):
        return params  # anything not listed is a generate() option; generate names a wrong one

    def resolve_params(self, params):
        if params["return_full_text"] is not None and params["return_tensors"]:
            raise ValueError("return_full_text and return_tensors cannot be used together")
        generate_kwargs = {k: v for k, v in params.items() if k not in self.defaults}
        if params["max_length"] is not None:
            generate_kwargs["max_length"] = params["max_length"]
        if params["stop_sequence"] is not None:  # as transformers: generation stops once one of them appears
            stop = params["stop_sequence"]
            generate_kwargs.update(
                stop_strings=[stop] if isinstance(stop, str) else list(stop), tokenizer=self.tokenizer
            )
        return {**params, "generate": with_pipeline_defaults(generate_kwargs, self.model.generation_config)}

    def is_single(self, inputs):
        return isinstance(inputs, str) or is_chat(inputs)

    def can_pad(self) -> bool:
        return True  # prompts are padded by hand, with eos when the tokenizer has no pad token

    def prompt_ids(self, item, params) -> list[int]:
        if is_chat(item):
            continue_final = params["continue_final_message"]
            if continue_final is None:
                continue_final = item[-1]["role"] == "assistant"
            return self.tokenizer.apply_chat_template(
                list(item), add_generation_prompt=not continue_final, continue_final_message=continue_final
            )["input_ids"]
        if not isinstance(item, str):
            raise ValueError(
                f"text-generation takes a str or a chat (list of messages); got {type(item).__name__}"
            )
        kwargs = {k: params[k] for k in ("add_special_tokens", "max_length") if params[k] is not None}
        return self.tokenizer(params["prefix"] + item, **kwargs)["input_ids"]

    def pad_id(self) -> int:
        for candidate in (self.tokenizer.pad_token_id, self.model.generation_config.pad_token_id):
            if candidate is not None:
                return candidate
        eos = self.tokenizer.eos_token_id
        return eos if eos is not None else 0

    def preprocess(self, items, params):
        input_ids, attention_mask = left_pad([self.prompt_ids(item, params) for item in items], self.pad_id())
        return {"items": items, "model_inputs": {"input_ids": input_ids, "attention_mask": attention_mask}}

    def forward(self, batch, params):
        inputs = {k: v.to(self.device) for k, v in batch["model_inputs"].items()}
        generate_kwargs = dict(params["generate"])
        if self.model.generation_config.pad_token_id is None and not bool(inputs["attention_mask"].all()):
            generate_kwargs.setdefault("pad_token_id", self.pad_id())
        out = self.model.generate(**inputs, **generate_kwargs)
        return out.sequences if hasattr(out, "sequences") else out

    def postprocess(self, batch, sequences, params):
        items, mask = batch["items"], batch["model_inputs"]["attention_mask"]
        prompt_length = mask.shape[1]
        padding = (mask == 0).sum(dim=1).tolist()  # left padding of each row, left out of the token ids
        per_item = sequences.shape[0] // len(items)
        grouped = sequences.cpu().reshape(len(items), per_item, -1).tolist()
        return [
            [self.record(item, seq[prompt_length:], seq[pad:], params) for seq in seqs]
            for item, seqs, pad in zip(items, grouped, padding)
        ]

    def record(self, item, new_ids: list[int], all_ids: list[int], params) -> dict:
        if params["return_tensors"]:
            return {"generated_token_ids": all_ids}
        text = self.tokenizer.decode(
            new_ids,
            skip_special_tokens=params["skip_special_tokens"],
            clean_up_tokenization_spaces=params["clean_up_tokenization_spaces"],
        )
        full = params["return_full_text"] is not False and params["return_text"] is not False
        if not full:
            return {"generated_text": text}
        if isinstance(item, str):
            return {"generated_text": item + text}
        messages = list(item)
        continue_final = params["continue_final_message"]
        if continue_final is None:
            continue_final = messages[-1]["role"] == "assistant"
        if continue_final:
            last = messages[-1]
            return {
                "generated_text": messages[:-1] + [{"role": last["role"], "content": last["content"] + text}]
            }
        return {"generated_text": messages + [{"role": "assistant", "content": text}]}


# Language names of T5's translation prefixes ("translate English to German: "), for checkpoints whose config
# has no task_specific_params entry for the pair.
LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "ro": "Romanian",
    "es": "Spanish",
    "it": "Italian",
}


class Text2TextGenerationPipeline(Pipeline):
    """Encoder-decoder generation (T5, Flan-T5), shaped as transformers 4's pipelines (transformers 5 dropped
    these three tasks): a str gives ``[{"generated_text": output}]``; a list of str one ``{"generated_text":
    ...}`` per input, or a list of records per input when there are several (``num_return_sequences``).
    ``summarization`` says ``summary_text``, ``translation_xx_to_yy`` ``translation_text``.

    Each input is ``prefix + text``. The prefix is, first found: the ``prefix=`` argument, the task's entry of
    ``config.task_specific_params`` (T5 checkpoints ship ``"summarize: "``, ``"translate English to German: "``,
    with num_beams, max_length... that become generate defaults under the call's), ``config.prefix``, then the
    task's T5 prefix (ours: transformers 4 used none). Other keyword arguments go to ``generate``; nothing is
    sampled unless ``do_sample=True``. As in transformers 4, inputs are not truncated unless ``truncation=True``
    (T5's relative positions have no length limit) and ``return_tensors=True`` gives ``generated_token_ids``
    (here a list of ints, not a tensor), the start token and any padding included.
    """

    task = "text2text-generation"
    auto_class = "AutoModelForSeq2SeqLM"
    output_key = "generated_text"
    defaults = {
        "prefix": None,
        "truncation": False,
        "clean_up_tokenization_spaces": False,
        "skip_special_tokens": True,
        "return_tensors": False,
    }

    def check_params(self, params):
        return params  # anything not listed is a generate() option; generate names a wrong one

    def task_settings(self) -> dict:
        specific = getattr(self.model.config, "task_specific_params", None) or {}
        return dict(specific.get(self.task) or {})

    def default_prefix(self) -> str:
        return ""

    def resolve_params(self, params):
        from .generation.config import DEFAULTS as GENERATION_FIELDS

        settings = self.task_settings()
        prefixes = (
            params["prefix"],
            settings.pop("prefix", None),
            getattr(self.model.config, "prefix", None),
            self.default_prefix(),
        )
        prefix = next(p for p in prefixes if p is not None)
        generate_kwargs = {k: v for k, v in settings.items() if k in GENERATION_FIELDS}
        generate_kwargs.update({k: v for k, v in params.items() if k not in self.defaults})
        return {**params, "prefix": prefix, "generate": generate_kwargs}

    def preprocess(self, items, params):
        if not all(isinstance(item, str) for item in items):
            bad = next(item for item in items if not isinstance(item, str))
            raise ValueError(f"{self.task} takes a str or a list of str; got {type(bad).__name__}")
        texts = [params["prefix"] + item for item in items]
        return {"model_inputs": self.encode(texts, truncation=params["truncation"])}

    def forward(self, batch, params):
        out = self.model.generate(**batch["model_inputs"], **params["generate"])
        return out.sequences if hasattr(out, "sequences") else out

    def postprocess(self, batch, sequences, params):
        n_items = batch["model_inputs"]["input_ids"].shape[0]
        grouped = sequences.cpu().reshape(n_items, sequences.shape[0] // n_items, -1).tolist()
        if params["return_tensors"]:
            key = self.output_key.replace("_text", "_token_ids")
            return [[{key: ids} for ids in seqs] for seqs in grouped]
        return [[{self.output_key: self.decode(ids, params)} for ids in seqs] for seqs in grouped]

    def decode(self, ids: list[int], params) -> str:
        return self.tokenizer.decode(
            ids,
            skip_special_tokens=params["skip_special_tokens"],
            clean_up_tokenization_spaces=params["clean_up_tokenization_spaces"],
        )

    def __call__(self, inputs, **kwargs):
        results = super().__call__(inputs, **kwargs)
        # transformers 4's quirk, kept so code written for it works: a list of str whose inputs each give one
        # record returns those records, not one-record lists (generators still yield lists).
        if isinstance(inputs, list) and all(isinstance(r, list) and len(r) == 1 for r in results):
            return [r[0] for r in results]
        return results


class SummarizationPipeline(Text2TextGenerationPipeline):
    task = "summarization"
    output_key = "summary_text"

    def default_prefix(self) -> str:
        return "summarize: "


class TranslationPipeline(Text2TextGenerationPipeline):
    task = "translation"  # set per instance to translation_xx_to_yy
    output_key = "translation_text"

    def default_prefix(self) -> str:
        source, target = re.fullmatch(r"translation_(\w+)_to_(\w+)", self.task).groups()
        return f"translate {LANGUAGES.get(source, source)} to {LANGUAGES.get(target, target)}: "


# ------------------------------------------------------------------------------------------------------------
# Tasks, default models and pipeline(...)
# ------------------------------------------------------------------------------------------------------------

TASKS: dict[str, type[Pipeline]] = {
    "feature-extraction": FeatureExtractionPipeline,
    "sentence-embedding": SentenceEmbeddingPipeline,
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "zero-shot-classification": ZeroShotClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "text-generation": TextGenerationPipeline,
    "text2text-generation": Text2TextGenerationPipeline,
    "summarization": SummarizationPipeline,
    "translation_xx_to_yy": TranslationPipeline,
}
TASK_ALIASES = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
    "sentence-embeddings": "sentence-embedding",
}

# Default models: real checkpoints from the offline assets folder ($ASSETS_DIR, default .assets). Tasks that
# need a trained head have none: a random head would give confident nonsense.
DEFAULT_MODELS = {
    "feature-extraction": "minilm",
    "sentence-embedding": "minilm",
    "text-generation": os.path.join("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# Architecture-name endings -> the task they serve, for pipeline(model=...) without a task.
ARCHITECTURE_TASKS = (
    ("ForMaskedLM", "fill-mask"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("Model", "feature-extraction"),
)


def available(task: str) -> bool:
    """A task is available when the registry has the Auto class it needs (seq2seq arrives with T5)."""
    return TASKS[task].auto_class in MODELS


def supported_tasks() -> list[str]:
    return [t for t in TASKS if available(t)]


def canonical_task(task: str) -> str:
    """The TASKS key for ``task`` (aliases, translation_xx_to_yy), or a one-line error listing what exists."""
    name = TASK_ALIASES.get(task, task)
    if re.fullmatch(r"translation_\w+_to_\w+", name):
        name = "translation_xx_to_yy"
    if name not in TASKS:
        raise UnknownTaskError(
            f"unknown task '{task}'; supported tasks: {', '.join(supported_tasks() + sorted(TASK_ALIASES))}"
            + unavailable_note()
        )
    if not available(name):
        raise ValueError(
            f"task '{task}' needs a seq2seq model ({TASKS[name].auto_class}), which tinyformers does not have yet"
        )
    return name


def unavailable_note() -> str:
    missing = [t for t in TASKS if not available(t)]
    return f" (needs a seq2seq model, not yet in tinyformers: {', '.join(missing)})" if missing else ""


def tasks_for_model_type(model_type: str) -> list[str]:
    return [t for t in supported_tasks() if model_type in MODELS[TASKS[t].auto_class]]


def check_fits(task: str, model_type: str, where: str) -> None:
    if model_type not in MODELS[TASKS[task].auto_class]:
        fits = tasks_for_model_type(model_type)
        raise ValueError(
            f"{where} is a '{model_type}' model, which does not fit task '{task}'; "
            f"it fits: {', '.join(fits) if fits else 'no pipeline task'}"
        )


def assets_dir() -> Path:
    return Path(os.environ.get("ASSETS_DIR", ".assets"))


def default_model(task: str) -> str:
    if task not in DEFAULT_MODELS:
        raise ValueError(
            f"task '{task}' has no default model offline (it needs a trained head); pass a model folder (model=... or --model)"
        )
    path = assets_dir() / DEFAULT_MODELS[task]
    if not path.exists():
        raise FileNotFoundError(
            f"the default model for '{task}' is {path}, which is missing: fetch the assets (make demo) or pass model="
        )
    return str(path)


def task_from_architecture(config) -> str:
    for architecture in config.architectures or []:
        for ending, task in ARCHITECTURE_TASKS:
            if architecture.endswith(ending) and available(task):
                return task
    raise ValueError(
        f"cannot tell the task from config.architectures={config.architectures}; pass it: pipeline(task, model=...)"
    )


def pipeline(
    task: str | None = None,
    model=None,
    tokenizer=None,
    device=None,
    batch_size: int = 1,
    dtype=None,
    gguf_file: str | None = None,
    model_kwargs: dict | None = None,
    revision: str | None = None,
    **params,
) -> Pipeline:
    """Build the pipeline for ``task`` (e.g. ``"fill-mask"``) over ``model`` — a folder, a .gguf file, a hub id
    (``org/name`` at ``revision``, from the cache or ``$HF_ENDPOINT``), or a loaded model (then pass its
    ``tokenizer`` too unless it came from a folder).

    Without ``model`` the task's default from the offline assets is used (feature-extraction and
    sentence-embedding: all-MiniLM-L6-v2; text-generation: SmolLM2-135M-Instruct). Without ``task`` it is read
    from the model's ``config.architectures``. Other keyword arguments are the task's call parameters
    (``top_k=3``, ``max_new_tokens=20``...), used for every call unless the call overrides them.
    """
    if task is None and model is None:
        raise ValueError(
            "pipeline() needs a task, a model, or both; e.g. pipeline('fill-mask', model=FOLDER)"
        )
    if task is not None:
        task_name = canonical_task(task)
        model = default_model(task_name) if model is None else model
    model_kwargs = {**(model_kwargs or {}), **({"dtype": dtype} if dtype is not None else {})}
    if isinstance(model, (str, os.PathLike)):
        source = str(model)
        revision = pin_revision(source, revision, gguf_file)  # model and tokenizer from one commit
        config = AutoConfig.from_pretrained(source, gguf_file=gguf_file, revision=revision)
        if task is None:
            task = task_name = task_from_architecture(config)
        check_fits(task_name, config.model_type, f"'{source}'")
        auto_class = import_object(f"tinyformers.auto:{TASKS[task_name].auto_class}")
        model = auto_class.from_pretrained(source, gguf_file=gguf_file, revision=revision, **model_kwargs)
    else:
        source = getattr(model.config, "_name_or_path", None)
        if task is None:
            task = task_name = task_from_architecture(model.config)
        check_fits(task_name, model.config.model_type, f"the given {type(model).__name__}")
    if tokenizer is None:
        if not source:
            raise ValueError("pass tokenizer=... with a model object that was not loaded from a folder")
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file, revision=revision)
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    return TASKS[task_name](
        model, tokenizer, device=device, batch_size=batch_size, task=task_name_for(task, task_name), **params
    )


def task_name_for(task: str, canonical: str) -> str:
    """The name a pipeline reports: the canonical one, except translation keeps its languages."""
    return task if canonical == "translation_xx_to_yy" else canonical
