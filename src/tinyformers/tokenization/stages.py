"""What every stage of a ``tokenizer.json`` pipeline shares: its registry, ``build`` and the ``Component`` base.

Each stage is a small class registered under the ``"type"`` name it has in ``tokenizer.json``. The registries
(``NORMALIZERS``, ``PRE_TOKENIZERS``, ``MODELS``, ``POST_PROCESSORS``, ``DECODERS``) are open: another module adds
a stage with ``@register(PRE_TOKENIZERS, "MyStage")``. The stages themselves live in ``normalizers.py``,
``pre_tokenizers.py``, ``processors.py``, ``decoders.py`` and the model modules (``wordpiece.py``, ``bpe.py``,
``unigram.py``); ``tokenizer.py`` imports them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from ..utils import read_json
from .chars import unicode_regex

NORMALIZERS: dict[str, type] = {}
PRE_TOKENIZERS: dict[str, type] = {}
MODELS: dict[str, type] = {}
POST_PROCESSORS: dict[str, type] = {}
DECODERS: dict[str, type] = {}


class TokenizerFileError(ValueError):
    """A ``tokenizer.json`` (or one stage in it) that we cannot read."""


def register(registry: dict[str, type], type_name: str):
    """Class decorator: make ``type_name`` (the ``"type"`` in tokenizer.json) build this class."""

    def add(cls):
        cls.type_name = type_name
        registry[type_name] = cls
        return cls

    return add


_STAGE_NAMES = {
    id(NORMALIZERS): "normalizer",
    id(PRE_TOKENIZERS): "pre_tokenizer",
    id(MODELS): "model",
    id(POST_PROCESSORS): "post_processor",
    id(DECODERS): "decoder",
}


def build(registry: dict[str, type], spec: dict | None):
    """Build one pipeline stage from its tokenizer.json dict (``None`` stays ``None``).

    The registry is complete once the module of its stage kind is imported (``tokenizer.py`` imports them all).
    """
    if spec is None:
        return None
    stage = _STAGE_NAMES[id(registry)]
    if not isinstance(spec, dict):
        raise TokenizerFileError(
            f"tokenizer.json: '{stage}' must be an object or null, got {type(spec).__name__}"
        )
    kind = spec.get("type")
    if kind is None and registry is MODELS:
        kind = _guess_model_type(spec)  # very old files omit the model type
    if kind not in registry:
        supported = ", ".join(sorted(registry)) or "none"
        raise TokenizerFileError(
            f"tokenizer.json: unsupported {stage} type {kind!r}; supported types: {supported} "
            f"(register a class for it with tinyformers.tokenization.stages.register)"
        )
    return registry[kind].from_dict(spec)


def _guess_model_type(spec: dict) -> str | None:
    if "merges" in spec:
        return "BPE"
    if "continuing_subword_prefix" in spec and "max_input_chars_per_word" in spec:
        return "WordPiece"
    if isinstance(spec.get("vocab"), list):
        return "Unigram"
    return None


class Component:
    """A pipeline stage whose tokenizer.json fields are exactly its dataclass fields."""

    type_name: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, spec: dict):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{key: value for key, value in spec.items() if key in known})

    def to_dict(self) -> dict:
        return {"type": self.type_name, **{f.name: getattr(self, f.name) for f in fields(self)}}  # type: ignore[arg-type]


class StageSequence:
    """A "Sequence" stage: the stages of one kind listed under one key, built and written back the same way."""

    stage_registry: ClassVar[dict]
    items_key: ClassVar[str]

    @classmethod
    def from_dict(cls, spec: dict):
        return cls([build(cls.stage_registry, item) for item in spec.get(cls.items_key, [])])

    def to_dict(self) -> dict:
        return {
            "type": "Sequence",
            self.items_key: [stage.to_dict() for stage in getattr(self, self.items_key)],
        }


def compile_pattern(pattern: dict | str):
    """A tokenizer.json pattern ``{"String": s}`` or ``{"Regex": r}`` as a compiled ``regex`` pattern."""
    regex = unicode_regex()
    if isinstance(pattern, str):
        return regex.compile(regex.escape(pattern))
    if "String" in pattern:
        return regex.compile(regex.escape(pattern["String"]))
    if "Regex" in pattern:
        return regex.compile(pattern["Regex"])
    raise TokenizerFileError(
        f"tokenizer.json: a pattern must be {{'String': ...}} or {{'Regex': ...}}, got {pattern!r}"
    )


def read_json_object(path: Path) -> dict:
    """A tokenizer file holding one JSON object; a malformed one is a ``TokenizerFileError`` naming the file."""
    try:
        value = read_json(path)
    except ValueError as e:  # a tokenizer file's problem: the tokenizers' own error type, same message
        raise TokenizerFileError(str(e)) from None
    if not isinstance(value, dict):
        raise TokenizerFileError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


@dataclass
class PatternReplacement:
    """The fields of tokenizer.json's ``Replace`` normalizer and decoder: ``pattern`` becomes ``content``."""

    pattern: dict = field(default_factory=dict)
    content: str = ""

    @cached_property
    def compiled(self):
        return compile_pattern(self.pattern)
