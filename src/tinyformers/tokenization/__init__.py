"""Tokenizers: the tokenizer.json pipeline (``pipeline``), its models (``wordpiece``, ...) and the
``transformers``-style user API (``base``). Names are imported on first use to keep ``import tinyformers`` fast."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AddedToken": "pipeline",
    "Encoding": "pipeline",
    "Tokenizer": "pipeline",
    "TokenizerFileError": "pipeline",
    "BatchEncoding": "base",
    "PreTrainedTokenizer": "base",
    "WordPiece": "wordpiece",
    "BertTokenizer": "wordpiece",
    "BPE": "bpe",
    "GPT2Tokenizer": "bpe",
    "LlamaTokenizer": "llama",
    "Unigram": "unigram",
    "T5Tokenizer": "sentencepiece",
    "SentencePieceTokenizer": "sentencepiece",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
