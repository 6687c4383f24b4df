"""Fill-mask: the most likely tokens for each mask token."""

from __future__ import annotations

import torch

from .base import Pipeline, rows


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
