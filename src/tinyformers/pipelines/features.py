"""Feature extraction (every token's hidden state) and sentence embeddings (pooled, normalised vectors), with
the poolings sentence-transformers uses."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..utils import read_json
from .base import Pipeline, rows


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
