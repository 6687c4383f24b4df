"""Text classification (labels with scores, text pairs) and zero-shot classification (labels chosen at call
time, scored by an NLI model)."""

from __future__ import annotations

import torch

from .base import EncoderPipeline, Pipeline


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


class TextClassificationPipeline(EncoderPipeline):
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

    def tokenize(self, items, params):
        if all(isinstance(item, dict) for item in items):
            firsts, seconds = [item["text"] for item in items], [item.get("text_pair") for item in items]
            if all(s is not None for s in seconds):
                return self.tokenizer(firsts, text_pair=seconds, truncation=True)
            return self.tokenizer(firsts, truncation=True)
        if not all(isinstance(item, str) for item in items):
            raise ValueError(
                'text-classification takes str inputs; for a text pair pass {"text": "...", "text_pair": "..."}'
            )
        return self.tokenizer(items, truncation=True)

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
