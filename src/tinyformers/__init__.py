"""tinyformers: the Hugging Face Transformers workflow, small enough to read in an afternoon.

Names are imported on first use (PEP 562), so ``import tinyformers`` stays cheap: torch, the models, the
tokenizers and the servers load only when something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "AutoConfig": "auto",
    "AutoModel": "auto",
    "AutoModelForCausalLM": "auto",
    "AutoModelForSeq2SeqLM": "auto",
    "AutoModelForTextEncoding": "auto",
    "AutoModelForSequenceClassification": "auto",
    "AutoModelForTokenClassification": "auto",
    "AutoModelForMaskedLM": "auto",
    "AutoTokenizer": "auto",
    "PretrainedConfig": "configuration",
    "PreTrainedModel": "modeling",
    "ModelOutput": "outputs",
    "pipeline": "pipelines",
    "Pipeline": "pipelines",
    "BertConfig": "models.bert",
    "BertModel": "models.bert",
    "BertForSequenceClassification": "models.bert",
    "BertForTokenClassification": "models.bert",
    "BertForMaskedLM": "models.bert",
    "GPT2Config": "models.gpt2",
    "GPT2Model": "models.gpt2",
    "GPT2LMHeadModel": "models.gpt2",
    "GPT2ForSequenceClassification": "models.gpt2",
    "LlamaConfig": "models.llama",
    "LlamaModel": "models.llama",
    "LlamaForCausalLM": "models.llama",
    "T5Config": "models.t5",
    "T5Model": "models.t5",
    "T5EncoderModel": "models.t5",
    "T5ForConditionalGeneration": "models.t5",
    "GenerationConfig": "generation",
    "TextStreamer": "generation",
    "TextIteratorStreamer": "generation",
    "BertTokenizer": "tokenization.bert",
    "T5Tokenizer": "tokenization.sentencepiece",
    "GPT2Tokenizer": "tokenization.gpt2",
    "LlamaTokenizer": "tokenization.llama",
    "PreTrainedTokenizer": "tokenization.base",
    "BatchEncoding": "tokenization.batch_encoding",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # cache: the next access is a plain attribute lookup
        return value
    raise AttributeError(f"module 'tinyformers' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + __all__)


if TYPE_CHECKING:  # for editors and type checkers only
    from .auto import (  # noqa: F401
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
