"""Tokenizers: the tokenizer.json pipeline (``tokenizer``, built from ``normalizers``, ``pre_tokenizers``, the
models ``wordpiece``/``bpe``/``unigram``, ``processors`` and ``decoders``), and the ``transformers``-style user API
(``base``, with one module per tokenizer family). Names are imported on first use to keep ``import tinyformers``
fast."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AddedToken": "added_vocabulary",
    "Encoding": "encoding",
    "Tokenizer": "tokenizer",
    "TokenizerFileError": "stages",
    "BatchEncoding": "batch_encoding",
    "PreTrainedTokenizer": "base",
    "WordPiece": "wordpiece",
    "BertTokenizer": "bert",
    "BPE": "bpe",
    "GPT2Tokenizer": "gpt2",
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
