"""Post-processors: add special tokens around one sequence or a pair (templates, BERT's, RoBERTa's, ByteLevel's
offset trimming)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .byte_level import BYTE_TO_CHAR, ByteLevelOptions
from .chars import WHITESPACE
from .encoding import Encoding
from .stages import POST_PROCESSORS, Component, StageSequence, TokenizerFileError, register


class PostProcessor(Component):
    def process(self, encoding: Encoding, pair: Encoding | None, add_special_tokens: bool) -> Encoding:
        raise NotImplementedError

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        dummy = Encoding.from_tokens([])
        return len(self.process(dummy, dummy if is_pair else None, True))


@dataclass
class TemplatePiece:
    """One item of a template: a sequence (``$A``/``$B``) or a special token, with its type id."""

    is_sequence: bool
    name: str  # "A"/"B" for sequences, the special token's key otherwise
    type_id: int = 0

    @classmethod
    def parse(cls, item: str | dict) -> TemplatePiece:
        if isinstance(item, dict):
            if "Sequence" in item:
                return cls(True, item["Sequence"]["id"], item["Sequence"].get("type_id", 0))
            return cls(False, item["SpecialToken"]["id"], item["SpecialToken"].get("type_id", 0))
        name, _, type_id = item.partition(":")  # the string form: "$A:0", "[CLS]", "$B:1"
        type_id = int(type_id) if type_id else 0
        if name.startswith("$"):
            sequence = name[1:] or "A"
            if sequence.isdigit():
                return cls(True, "A", int(sequence))
            return cls(True, sequence, type_id)
        return cls(False, name, type_id)

    def to_dict(self) -> dict:
        kind = "Sequence" if self.is_sequence else "SpecialToken"
        return {kind: {"id": self.name, "type_id": self.type_id}}


@register(POST_PROCESSORS, "TemplateProcessing")
@dataclass
class TemplateProcessing(PostProcessor):
    single: list = field(default_factory=list)
    pair: list = field(default_factory=list)
    special_tokens: dict = field(default_factory=dict)  # name -> {"id": name, "ids": [...], "tokens": [...]}

    def __post_init__(self):
        if isinstance(self.single, str):
            self.single = self.single.split()
        if isinstance(self.pair, str):
            self.pair = self.pair.split()
        self.single = [p if isinstance(p, TemplatePiece) else TemplatePiece.parse(p) for p in self.single]
        self.pair = [p if isinstance(p, TemplatePiece) else TemplatePiece.parse(p) for p in self.pair]
        if isinstance(self.special_tokens, list):  # [(token, id), ...] as in the Python API of tokenizers
            self.special_tokens = {t: {"id": t, "ids": [i], "tokens": [t]} for t, i in self.special_tokens}
        for piece in self.single + self.pair:
            if not piece.is_sequence and piece.name not in self.special_tokens:
                raise TokenizerFileError(
                    f"TemplateProcessing uses special token {piece.name!r} missing from its special_tokens"
                )

    def to_dict(self) -> dict:
        return {
            "type": "TemplateProcessing",
            "single": [p.to_dict() for p in self.single],
            "pair": [p.to_dict() for p in self.pair],
            "special_tokens": self.special_tokens,
        }

    def process(self, encoding: Encoding, pair: Encoding | None, add_special_tokens: bool) -> Encoding:
        template = self.single if pair is None else self.pair
        parts = []
        for piece in template:
            if piece.is_sequence:
                source, sequence_id = (encoding, 0) if piece.name == "A" else (pair, 1)
                parts.append(source.with_type_id(piece.type_id, sequence_id))
            elif add_special_tokens:
                special = self.special_tokens[piece.name]
                parts.append(Encoding.special(special["ids"], special["tokens"], piece.type_id))
        return Encoding.merge(parts)


def _pair_template(cls_token, sep_token, pair_sep_twice: bool, pair_type_id: int):
    """Templates of the fixed BERT/RoBERTa processors: [CLS] A [SEP] (+ [SEP] B [SEP] / B [SEP])."""
    cls_name, sep_name = cls_token[0], sep_token[0]
    single = [TemplatePiece(False, cls_name), TemplatePiece(True, "A"), TemplatePiece(False, sep_name)]
    middle = [TemplatePiece(False, sep_name, pair_type_id)] if pair_sep_twice else []
    pair = (
        single
        + middle
        + [TemplatePiece(True, "B", pair_type_id), TemplatePiece(False, sep_name, pair_type_id)]
    )
    specials = {
        name: {"id": name, "ids": [index], "tokens": [name]}
        for name, index in (tuple(cls_token), tuple(sep_token))
    }
    return TemplateProcessing(single, pair, specials)


@register(POST_PROCESSORS, "BertProcessing")
@dataclass
class BertProcessing(PostProcessor):
    sep: list = field(default_factory=lambda: ["[SEP]", 102])
    cls: list = field(default_factory=lambda: ["[CLS]", 101])

    def process(self, encoding, pair, add_special_tokens):
        return _pair_template(self.cls, self.sep, False, 1).process(encoding, pair, add_special_tokens)


@register(POST_PROCESSORS, "RobertaProcessing")
@dataclass
class RobertaProcessing(PostProcessor):
    """``<s> A </s>`` / ``<s> A </s></s> B </s>``, all type id 0; ``trim_offsets`` as ByteLevel's."""

    sep: list = field(default_factory=lambda: ["</s>", 2])
    cls: list = field(default_factory=lambda: ["<s>", 0])
    trim_offsets: bool = True
    add_prefix_space: bool = True

    def process(self, encoding, pair, add_special_tokens):
        if self.trim_offsets:
            for part in (encoding, pair):
                if part is not None:
                    trim_offsets(part, self.add_prefix_space)
        return _pair_template(self.cls, self.sep, True, 0).process(encoding, pair, add_special_tokens)


@register(POST_PROCESSORS, "Sequence")
@dataclass
class PostProcessorSequence(StageSequence, PostProcessor):
    stage_registry: ClassVar[dict] = POST_PROCESSORS
    items_key: ClassVar[str] = "processors"
    processors: list = field(default_factory=list)

    def process(self, encoding, pair, add_special_tokens):
        # Only the first processor that adds tokens sees the pair; later ones refine the merged result.
        for processor in self.processors:
            encoding = processor.process(encoding, pair, add_special_tokens)
            pair = None
        return encoding


_SPACE_CHAR = BYTE_TO_CHAR[ord(" ")]  # "Ġ"
_TRIMMED = _SPACE_CHAR + WHITESPACE  # what trim_offsets leaves out of a token's offsets


def trim_offsets(encoding: Encoding, add_prefix_space: bool) -> None:
    """Leave leading/trailing spaces (``Ġ``) of each token out of its offsets, as tokenizers does.

    A single leading space of the first token is kept when ``add_prefix_space`` put it there.
    """
    offsets = encoding.offsets
    for i, token in enumerate(encoding.tokens):
        leading = len(token) - len(token.lstrip(_TRIMMED))
        trailing = len(token) - len(token.rstrip(_TRIMMED))
        if not (leading or trailing):
            continue
        start, end = offsets[i]
        if leading:
            if (i == 0 or start == 0) and add_prefix_space and leading == 1:
                leading = 0
            start = min(start + leading, end)
        if trailing and end >= trailing:
            end = max(end - trailing, start)
        offsets[i] = (start, end)


@register(POST_PROCESSORS, "ByteLevel")
@dataclass
class ByteLevelPostProcessor(ByteLevelOptions, PostProcessor):
    """Adds no tokens; trims the spaces out of the offsets (``trim_offsets``) and joins a pair."""

    def process(self, encoding: Encoding, pair: Encoding | None, add_special_tokens: bool) -> Encoding:
        for part in (encoding, pair):
            if part is not None and self.trim_offsets:
                trim_offsets(part, self.add_prefix_space)
        return encoding if pair is None else Encoding.merge([encoding, pair])

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        return 0


def bos_eos_template(vocabulary, bos: str | None, eos: str | None) -> TemplateProcessing:
    """``[bos] $A [eos]`` / ``[bos] $A [eos] [bos] $B [eos]`` (B's part with type id 1), as transformers builds it;
    ``vocabulary`` (a ``tokenizer.Tokenizer``) gives the tokens' ids."""
    specials = {}
    for token in (bos, eos):
        if token is not None:
            index = vocabulary.token_to_id(token)
            if index is None:
                raise TokenizerFileError(
                    f"{token!r} is to be added to every sequence but is not in the vocabulary; add it first"
                )
            specials[token] = {"id": token, "ids": [index], "tokens": [token]}

    def sequence(name: str, type_id: int) -> list[TemplatePiece]:
        head = [TemplatePiece(False, bos, type_id)] if bos else []
        tail = [TemplatePiece(False, eos, type_id)] if eos else []
        return [*head, TemplatePiece(True, name, type_id), *tail]

    return TemplateProcessing(sequence("A", 0), sequence("A", 0) + sequence("B", 1), specials)
