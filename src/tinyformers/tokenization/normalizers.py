"""Normalizers: rewrite a piece of text in place (lowercase, strip accents, Unicode forms, sentencepiece's
precompiled charsmap...), keeping every character's original span."""

from __future__ import annotations

import base64
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

from .chars import WHITESPACE_SET, is_chinese_char, unicode_regex
from .charsmap import Charsmap
from .normalized import CharMap, NormalizedString
from .stages import NORMALIZERS, Component, PatternReplacement, StageSequence, register


class Normalizer(Component):
    def normalize(self, piece: NormalizedString) -> None:
        raise NotImplementedError

    def normalize_str(self, text: str) -> str:
        piece = NormalizedString(text)
        self.normalize(piece)
        return piece.text


class CharMapNormalizer(Normalizer):
    """A normalizer that rewrites each character independently (its table is built lazily and cached)."""

    def map_char(self, char: str) -> str:
        raise NotImplementedError

    @cached_property
    def _table(self) -> CharMap:
        return CharMap(self.map_char)

    def normalize(self, piece: NormalizedString) -> None:
        piece.map_chars(self._table)


def _strip_marks(char: str, categories: tuple[str, ...]) -> str:
    decomposed = unicodedata.normalize("NFD", char)
    return "".join(c for c in decomposed if unicodedata.category(c) not in categories)


@register(NORMALIZERS, "BertNormalizer")
@dataclass
class BertNormalizer(CharMapNormalizer):
    """clean text -> space out CJK ideographs -> strip accents -> lowercase, each character on its own."""

    clean_text: bool = True
    handle_chinese_chars: bool = True
    strip_accents: bool | None = None  # None: strip accents exactly when lowercasing (original BERT)
    lowercase: bool = True

    def map_char(self, char: str) -> str:
        if self.clean_text:
            if char in "\x00\ufffd" or (
                char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf", "Co")
            ):
                return ""
            if char in WHITESPACE_SET:
                return " "
        if self.handle_chinese_chars and is_chinese_char(char):
            return f" {char} "
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        if strip:
            char = _strip_marks(char, ("Mn",))
        if self.lowercase:
            char = "".join(
                c.lower() for c in char
            )  # one character at a time, like Rust (no final-sigma rule)
        return char


@register(NORMALIZERS, "Lowercase")
@dataclass
class Lowercase(CharMapNormalizer):
    def map_char(self, char: str) -> str:
        return char.lower()


@register(NORMALIZERS, "StripAccents")
@dataclass
class StripAccents(CharMapNormalizer):
    def map_char(self, char: str) -> str:
        return "" if unicodedata.category(char)[0] == "M" else char


class _Decompose(CharMapNormalizer):
    form: ClassVar[str] = "NFD"

    def map_char(self, char: str) -> str:
        return unicodedata.normalize(self.form, char)


@register(NORMALIZERS, "NFD")
@dataclass
class NFD(_Decompose):
    form: ClassVar[str] = "NFD"


@register(NORMALIZERS, "NFKD")
@dataclass
class NFKD(_Decompose):
    form: ClassVar[str] = "NFKD"


@register(NORMALIZERS, "NFC")
@dataclass
class NFC(Normalizer):
    def normalize(self, piece: NormalizedString) -> None:
        piece.normalize_unicode("NFC")


@register(NORMALIZERS, "NFKC")
@dataclass
class NFKC(Normalizer):
    def normalize(self, piece: NormalizedString) -> None:
        piece.normalize_unicode("NFKC")


@register(NORMALIZERS, "Strip")
@dataclass
class Strip(Normalizer):
    strip_left: bool = True
    strip_right: bool = True

    def normalize(self, piece: NormalizedString) -> None:
        text = piece.text
        start, end = 0, len(text)
        while self.strip_left and start < end and text[start] in WHITESPACE_SET:
            start += 1
        while self.strip_right and end > start and text[end - 1] in WHITESPACE_SET:
            end -= 1
        if (start, end) != (0, len(text)):
            stripped = piece.slice(start, end)
            piece.text, piece.offset, piece.spans, piece.lead = (
                stripped.text,
                stripped.offset,
                stripped.spans,
                stripped.lead,
            )


@register(NORMALIZERS, "Replace")
@dataclass
class Replace(PatternReplacement, Normalizer):
    def normalize(self, piece: NormalizedString) -> None:
        edits = [
            (m.start(), m.end(), self.content)
            for m in self.compiled.finditer(piece.text)
            if m.end() > m.start()
        ]
        piece.replace_ranges(edits)


@register(NORMALIZERS, "Prepend")
@dataclass
class Prepend(Normalizer):
    prepend: str = ""

    def normalize(self, piece: NormalizedString) -> None:
        piece.prepend(self.prepend)


@register(NORMALIZERS, "Sequence")
@dataclass
class NormalizerSequence(StageSequence, Normalizer):
    stage_registry: ClassVar[dict] = NORMALIZERS
    items_key: ClassVar[str] = "normalizers"
    normalizers: list = field(default_factory=list)

    def normalize(self, piece: NormalizedString) -> None:
        for normalizer in self.normalizers:
            normalizer.normalize(piece)


@register(NORMALIZERS, "Precompiled")
@dataclass
class Precompiled(Normalizer):
    """tokenizers' ``Precompiled``: each grapheme shorter than 6 UTF-8 bytes is looked up whole (taking the
    shortest matching rule, which then replaces the whole grapheme); otherwise each character on its own.
    This is not quite sentencepiece (which takes the longest rule anywhere) but it is what tokenizers does."""

    precompiled_charsmap: str = ""  # base64, as in tokenizer.json

    def __post_init__(self):
        blob = self.precompiled_charsmap
        if isinstance(blob, (bytes, bytearray)):
            blob = self.precompiled_charsmap = base64.b64encode(bytes(blob)).decode("ascii")
        self.charsmap = Charsmap.load(base64.b64decode(blob)) if blob else None

    @cached_property
    def _graphemes(self):
        return unicode_regex().compile(r"\X")

    def normalize(self, piece: NormalizedString) -> None:
        charsmap = self.charsmap
        text = piece.text
        if charsmap is None or charsmap.triggers.isdisjoint(text):
            return
        edits: list[tuple[int, int, str]] = []
        for match in self._graphemes.finditer(text):
            grapheme = match.group()
            if len(grapheme.encode("utf-8")) < 6:
                replacement = charsmap.shortest_match(grapheme)
                if replacement is not None:
                    _aligned_edits(edits, match.start(), grapheme, replacement)
                    continue
            for offset, char in enumerate(grapheme, match.start()):
                replacement = charsmap.shortest_match(char)
                if replacement is not None:
                    _aligned_edits(edits, offset, char, replacement)
        piece.replace_ranges(edits)


def _aligned_edits(edits: list, start: int, old: str, new: str) -> None:
    """Edits replacing ``old`` (at ``start``) by ``new`` with tokenizers' alignment: new character ``i`` comes
    from old character ``i``; extra new characters from the last old one; extra old characters are dropped."""
    if old == new:
        return
    kept = min(len(old), len(new)) - (len(new) > len(old))
    if kept:
        edits.append((start, start + kept, new[:kept]))  # same length: spans kept one by one
    edits.append((start + kept, start + len(old), new[kept:]))
