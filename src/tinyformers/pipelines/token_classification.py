"""Token classification (NER): a label per token, or per entity span with an aggregation strategy."""

from __future__ import annotations

import torch

from .base import Pipeline

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
