"""Task helpers on top of the models. (The full ``pipeline(task, model)`` API builds on these.)"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mean_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average the token vectors of each sequence, ignoring padding (sentence-transformers' 'mean tokens')."""
    if attention_mask is None:
        return last_hidden_state.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@torch.inference_mode()
def sentence_embeddings(
    model, tokenizer, sentences: list[str], normalize: bool = True, max_length: int | None = None
):
    """One vector per sentence: encoder -> mean pooling -> (optionally) L2 normalisation, as all-MiniLM-L6-v2 does."""
    enc = tokenizer(sentences, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    emb = mean_pooling(out.last_hidden_state, enc["attention_mask"])
    return F.normalize(emb, p=2, dim=1) if normalize else emb
