"""The one registry: ``model_type`` -> config class, model class per task, tokenizer class.

Entries are "module:Class" strings so nothing is imported until a user asks for that family: adding a model
family means one line per task here and one file in ``models/``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from .configuration import CONFIG_NAME, PretrainedConfig, read_config_dict
from .hub import pin_revision, resolve_dir, resolve_gguf
from .utils import read_json

CONFIGS = {
    "bert": "tinyformers.models.bert:BertConfig",
    "gpt2": "tinyformers.models.gpt2:GPT2Config",
    "llama": "tinyformers.models.llama:LlamaConfig",
    "t5": "tinyformers.models.t5:T5Config",
}

# Auto class name -> {model_type: "module:Class"}
MODELS: dict[str, dict[str, str]] = {
    "AutoModel": {
        "bert": "tinyformers.models.bert:BertModel",
        "gpt2": "tinyformers.models.gpt2:GPT2Model",
        "llama": "tinyformers.models.llama:LlamaModel",
        "t5": "tinyformers.models.t5:T5Model",
    },
    "AutoModelForCausalLM": {
        "gpt2": "tinyformers.models.gpt2:GPT2LMHeadModel",
        "llama": "tinyformers.models.llama:LlamaForCausalLM",
    },
    "AutoModelForSequenceClassification": {
        "bert": "tinyformers.models.bert:BertForSequenceClassification",
        "gpt2": "tinyformers.models.gpt2:GPT2ForSequenceClassification",
    },
    "AutoModelForSeq2SeqLM": {"t5": "tinyformers.models.t5:T5ForConditionalGeneration"},
    "AutoModelForTextEncoding": {"t5": "tinyformers.models.t5:T5EncoderModel"},
    "AutoModelForTokenClassification": {"bert": "tinyformers.models.bert:BertForTokenClassification"},
    "AutoModelForMaskedLM": {"bert": "tinyformers.models.bert:BertForMaskedLM"},
}

# tokenizer_class in tokenizer_config.json -> our class. "Fast" names map to the same class: we have one kind.
TOKENIZERS = {
    "BertTokenizer": "tinyformers.tokenization.bert:BertTokenizer",
    "BertTokenizerFast": "tinyformers.tokenization.bert:BertTokenizer",
    "GPT2Tokenizer": "tinyformers.tokenization.gpt2:GPT2Tokenizer",
    "GPT2TokenizerFast": "tinyformers.tokenization.gpt2:GPT2Tokenizer",
    "LlamaTokenizer": "tinyformers.tokenization.llama:LlamaTokenizer",
    "LlamaTokenizerFast": "tinyformers.tokenization.llama:LlamaTokenizer",
    "T5Tokenizer": "tinyformers.tokenization.sentencepiece:T5Tokenizer",
    "T5TokenizerFast": "tinyformers.tokenization.sentencepiece:T5Tokenizer",
    "SentencePieceTokenizer": "tinyformers.tokenization.sentencepiece:SentencePieceTokenizer",
    "PreTrainedTokenizerFast": "tinyformers.tokenization.base:PreTrainedTokenizer",
    "TokenizersBackend": "tinyformers.tokenization.base:PreTrainedTokenizer",
}
# Builds the tokenizer stored in a GGUF file's metadata, whatever its vocabulary type.
GGUF_TOKENIZER = "tinyformers.tokenization.gguf:tokenizer_from_gguf"
# model_type -> tokenizer class, for folders whose tokenizer_config.json does not name one.
TOKENIZER_FOR_MODEL = {
    "bert": "BertTokenizer",
    "gpt2": "GPT2Tokenizer",
    "llama": "LlamaTokenizer",
    "t5": "T5Tokenizer",
}


def import_object(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _unknown_model_type(model_type: Any, where: str) -> ValueError:
    return ValueError(
        f"model_type '{model_type}' in {where} is not supported by tinyformers; "
        f"supported model types: {', '.join(sorted(CONFIGS))}"
    )


def config_class_for(model_type: str, where: str = "the config") -> type[PretrainedConfig]:
    if model_type not in CONFIGS:
        raise _unknown_model_type(model_type, where)
    return import_object(CONFIGS[model_type])


class AutoConfig:
    """``AutoConfig.from_pretrained(path)`` reads config.json and returns the config class its model_type names."""

    def __init__(self):
        raise OSError(
            "AutoConfig is not instantiated; use AutoConfig.from_pretrained(path) or AutoConfig.for_model(type)"
        )

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> PretrainedConfig:
        return config_class_for(model_type)(**kwargs)

    @staticmethod
    def from_pretrained(
        name_or_path: str | os.PathLike,
        revision: str | None = None,
        gguf_file: str | None = None,
        **kwargs: Any,
    ) -> PretrainedConfig:
        path, config_dict = read_config_dict(name_or_path, revision, gguf_file)
        model_type = config_dict.get("model_type")
        if not model_type:
            raise ValueError(f'{path} has no \'model_type\' key; add it (e.g. "model_type": "bert")')
        config = config_class_for(model_type, str(path)).from_dict(config_dict, **kwargs)
        config._name_or_path = str(name_or_path)
        return config


class _AutoModel:
    """Shared by every AutoModelFor*: pick the class registered for the config's model_type and this task."""

    task = "AutoModel"

    def __init__(self):
        raise OSError(
            f"{self.task} is not instantiated; use {self.task}.from_pretrained(path) or .from_config(config)"
        )

    @classmethod
    def model_class(cls, config: PretrainedConfig) -> type:
        table = MODELS[cls.task]
        if config.model_type not in table:
            if config.model_type not in CONFIGS:
                raise _unknown_model_type(config.model_type, "the config")
            fits = [task for task, t in MODELS.items() if config.model_type in t]
            raise ValueError(
                f"{cls.task} has no '{config.model_type}' model; for '{config.model_type}' use one of: {', '.join(fits)}"
            )
        return import_object(table[config.model_type])

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any):
        return cls.model_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """``from_pretrained`` of the model class registered for the config's model_type (same arguments);
        keywords that are not about loading override config values. A branch is pinned to one commit first, so
        config and weights come from the same commit."""
        revision = pin_revision(name_or_path, kwargs.pop("revision", None), kwargs.get("gguf_file"))
        config = kwargs.pop("config", None)
        if config is None:
            config_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in _LOAD_KWARGS}
            config = AutoConfig.from_pretrained(
                name_or_path, revision, kwargs.get("gguf_file"), **config_kwargs
            )
        return cls.model_class(config).from_pretrained(
            name_or_path, *args, config=config, revision=revision, **kwargs
        )


# from_pretrained keywords that are about loading, not config values.
_LOAD_KWARGS = {
    "revision",
    "dtype",
    "torch_dtype",
    "ignore_mismatched_sizes",
    "gguf_file",
    "compile",
    "quantize",
    "output_loading_info",
}


class AutoModel(_AutoModel):
    task = "AutoModel"


class AutoModelForCausalLM(_AutoModel):
    task = "AutoModelForCausalLM"


class AutoModelForSeq2SeqLM(_AutoModel):
    task = "AutoModelForSeq2SeqLM"


class AutoModelForTextEncoding(_AutoModel):
    task = "AutoModelForTextEncoding"


class AutoModelForSequenceClassification(_AutoModel):
    task = "AutoModelForSequenceClassification"


class AutoModelForTokenClassification(_AutoModel):
    task = "AutoModelForTokenClassification"


class AutoModelForMaskedLM(_AutoModel):
    task = "AutoModelForMaskedLM"


class AutoTokenizer:
    """Picks the tokenizer class from tokenizer_config.json's ``tokenizer_class``, else config.json's model_type."""

    def __init__(self):
        raise OSError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(path)")

    @staticmethod
    def tokenizer_class(directory: Path) -> type:
        name = None
        if (directory / "tokenizer_config.json").is_file():
            name = read_json(directory / "tokenizer_config.json").get("tokenizer_class")
        if name is None and (directory / CONFIG_NAME).is_file():
            name = TOKENIZER_FOR_MODEL.get(read_json(directory / CONFIG_NAME).get("model_type"))
        if name in TOKENIZERS:
            return import_object(TOKENIZERS[name])
        if (directory / "tokenizer.json").is_file():
            return import_object(
                TOKENIZERS["PreTrainedTokenizerFast"]
            )  # any tokenizer.json is self-describing
        if name is None:
            raise FileNotFoundError(
                f"no tokenizer files in '{directory}' (looked for tokenizer.json, tokenizer_config.json with "
                "tokenizer_class, or config.json with a known model_type); copy the model's tokenizer files there"
            )
        raise ValueError(
            f"tokenizer_class '{name}' in {directory / 'tokenizer_config.json'} is not supported; "
            f"supported: {', '.join(sorted(TOKENIZERS))}"
        )

    @staticmethod
    def from_pretrained(
        name_or_path: str | os.PathLike,
        *args: Any,
        revision: str | None = None,
        gguf_file: str | None = None,
        **kwargs: Any,
    ):
        gguf_path = resolve_gguf(name_or_path, gguf_file, revision)
        if gguf_path is not None:
            return import_object(GGUF_TOKENIZER)(gguf_path, **kwargs)
        directory = resolve_dir(name_or_path, revision=revision)
        return AutoTokenizer.tokenizer_class(directory).from_pretrained(directory, *args, **kwargs)
