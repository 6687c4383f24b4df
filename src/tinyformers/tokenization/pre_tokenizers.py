"""Pre-tokenizers: cut a piece of text into words, keeping offsets (BERT's, whitespace, regex splits, GPT-2's
``ByteLevel``, sentencepiece's ``Metaspace``...)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

from .byte_level import LATIN1_TO_BYTE_CHAR, ByteLevelOptions, to_byte_chars, utf8_length
from .chars import ASCII_PUNCTUATION, SPACE, WHITESPACE_CLASS, unicode_regex
from .normalized import NormalizedString, PreTokenizedString, split_by_matches
from .stages import PRE_TOKENIZERS, Component, StageSequence, compile_pattern, register


class PreTokenizer(Component):
    def pre_tokenize(self, pretokenized: PreTokenizedString) -> None:
        pretokenized.split(self.split_piece)

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        raise NotImplementedError

    def split_pieces(self, pieces: list[NormalizedString]) -> list[NormalizedString]:
        """``split_piece`` over a list (a stage may override it to handle its common case inline)."""
        split = self.split_piece
        if len(pieces) == 1:
            return split(pieces[0])
        return [word for piece in pieces for word in split(piece)]

    def pre_tokenize_str(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        pretokenized = PreTokenizedString([NormalizedString(text)])
        self.pre_tokenize(pretokenized)
        return [(p.text, p.original_span(0, len(p.text))) for p in pretokenized.pieces]


class RegexPreTokenizer(PreTokenizer):
    """Split with one regex: ``pattern()`` returns the compiled regex and what to do with its matches."""

    def pattern(self):
        raise NotImplementedError

    @cached_property
    def _compiled(self):
        return self.pattern()

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        regex, behavior, invert = self._compiled
        matches = [m.span() for m in regex.finditer(piece.text)]
        return split_by_matches(piece, matches, behavior, invert)


# ASCII: whitespace is \t \n \x0b \x0c \r and space; every other non-punctuation character (controls included)
# belongs to a word.
_ASCII_WORD_OR_PUNCT = re.compile(r"[\x00-\x08\x0e-\x1f0-9A-Za-z\x7f]+|[!-/:-@\[-`{-~]")


@register(PRE_TOKENIZERS, "BertPreTokenizer")
@dataclass
class BertPreTokenizer(PreTokenizer):
    """Split on whitespace (dropped), then isolate every punctuation character."""

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        text = piece.text
        if text.isascii():  # fast path: the same classes as below, written out for ASCII
            finder = _ASCII_WORD_OR_PUNCT.finditer
        else:
            finder = _bert_word_regex().finditer
        if piece.is_identity:
            offset = piece.offset
            return [NormalizedString(m.group(), offset + m.start()) for m in finder(text)]
        return [piece.slice(*m.span()) for m in finder(text)]


_BERT_WORD_REGEX = None


def _bert_word_regex():
    global _BERT_WORD_REGEX
    if _BERT_WORD_REGEX is None:
        regex = unicode_regex()
        punct = regex.escape(ASCII_PUNCTUATION) + r"\p{P}"
        # \x1c-\x1f are control characters, not whitespace, for Rust (Python's isspace disagrees)
        _BERT_WORD_REGEX = regex.compile(f"[^{WHITESPACE_CLASS}{punct}]+|[{punct}]")
    return _BERT_WORD_REGEX


@register(PRE_TOKENIZERS, "Whitespace")
@dataclass
class Whitespace(RegexPreTokenizer):
    """Words are ``\\w+`` runs or runs of other non-space characters."""

    def pattern(self):
        return unicode_regex().compile(r"\w+|[^\w\s]+"), "Removed", True


_NOT_WHITESPACE_RUN = re.compile(f"[^{WHITESPACE_CLASS}]+")


@register(PRE_TOKENIZERS, "WhitespaceSplit")
@dataclass
class WhitespaceSplit(PreTokenizer):
    """Words are the runs of non-whitespace characters (whitespace as Rust defines it)."""

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        runs = _NOT_WHITESPACE_RUN.finditer(piece.text)
        if piece.is_identity:  # offsets are additions: no slicing of alignments (half the time of slice())
            offset = piece.offset
            return [NormalizedString(m.group(), offset + m.start()) for m in runs]
        return [piece.slice(*m.span()) for m in runs]


@register(PRE_TOKENIZERS, "Punctuation")
@dataclass
class Punctuation(RegexPreTokenizer):
    behavior: str = "Isolated"

    def pattern(self):
        regex = unicode_regex()
        return regex.compile(f"[{regex.escape(ASCII_PUNCTUATION)}\\p{{P}}]"), self.behavior, False


@register(PRE_TOKENIZERS, "Digits")
@dataclass
class Digits(RegexPreTokenizer):
    individual_digits: bool = False

    def pattern(self):
        if self.individual_digits:
            return unicode_regex().compile(r"\p{N}"), "Isolated", False
        return unicode_regex().compile(r"\p{N}+"), "Isolated", False


@register(PRE_TOKENIZERS, "Split")
@dataclass
class Split(RegexPreTokenizer):
    pattern_spec: dict = field(default_factory=dict)
    behavior: str = "Isolated"
    invert: bool = False

    @classmethod
    def from_dict(cls, spec: dict):
        return cls(spec.get("pattern", {}), spec.get("behavior", "Isolated"), spec.get("invert", False))

    def to_dict(self) -> dict:
        return {
            "type": "Split",
            "pattern": self.pattern_spec,
            "behavior": self.behavior,
            "invert": self.invert,
        }

    def pattern(self):
        return compile_pattern(self.pattern_spec), self.behavior, self.invert


@register(PRE_TOKENIZERS, "Sequence")
@dataclass
class PreTokenizerSequence(StageSequence, PreTokenizer):
    stage_registry: ClassVar[dict] = PRE_TOKENIZERS
    items_key: ClassVar[str] = "pretokenizers"
    pretokenizers: list = field(default_factory=list)

    def pre_tokenize(self, pretokenized: PreTokenizedString) -> None:
        if all(type(p).pre_tokenize is PreTokenizer.pre_tokenize for p in self.pretokenizers):
            pretokenized.split(self.split_piece)  # one pass over the pieces instead of one per stage
        else:
            for pretokenizer in self.pretokenizers:
                pretokenizer.pre_tokenize(pretokenized)

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        pieces = [piece]
        for pretokenizer in self.pretokenizers:
            pieces = pretokenizer.split_pieces(pieces)
        return pieces


# --------------------------------------------------------------------------------------------------------------
# ByteLevel: GPT-2's regex, then every word written in byte characters
# --------------------------------------------------------------------------------------------------------------


# GPT-2's pre-tokenizer regex: contractions, letters, numbers, other symbols (each with one optional leading
# space), then whitespace. "\s+(?!\S)" leaves the last space of a run to the word that follows it.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


_GPT2_REGEX = None


def gpt2_regex():
    global _GPT2_REGEX
    if _GPT2_REGEX is None:
        _GPT2_REGEX = unicode_regex().compile(GPT2_PATTERN)
    return _GPT2_REGEX


@register(PRE_TOKENIZERS, "ByteLevel")
@dataclass
class ByteLevelPreTokenizer(ByteLevelOptions, PreTokenizer):
    """Optionally add a leading space, split with GPT-2's regex, then write every word as byte characters.

    ``trim_offsets`` is only stored here: the post-processor is the stage that trims.
    """

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        text = piece.text
        if not text:
            return []
        # Like tokenizers, the added space stands for the piece's first character (for offsets).
        prefixed = self.add_prefix_space and text[0] != " "
        if prefixed:
            text = " " + text
        words = gpt2_regex().findall(text) if self.use_regex else [text]
        out = []
        start = 0
        if piece.is_identity and text.isascii():
            # Fast path (most text): one byte per character, so offsets stay the identity and the whole text
            # is mapped at once. Character 0 of ``text`` is at ``base`` in the original.
            mapped, base = text.translate(LATIN1_TO_BYTE_CHAR), piece.offset - prefixed
            for word in words:
                end = start + len(word)
                out.append(NormalizedString(mapped[start:end], base + start))
                start = end
            if prefixed:
                out[0] = self._byte_word(piece, words[0], 0, True)
            return out
        identity, base = piece.is_identity, piece.offset - prefixed
        for word in words:
            if identity and word.isascii() and (start or not prefixed):  # the same, word by word
                out.append(NormalizedString(word.translate(LATIN1_TO_BYTE_CHAR), base + start))
            else:
                out.append(self._byte_word(piece, word, start, prefixed))
            start += len(word)
        return out

    @staticmethod
    def _byte_word(piece: NormalizedString, word: str, start: int, prefixed: bool) -> NormalizedString:
        """``word`` (at ``start`` in the possibly prefixed text) in byte characters, each with its char's span."""
        spans: list[tuple[int, int]] = []
        for position, char in enumerate(word, start - prefixed):
            index = max(position, 0)  # the added space (position -1) takes the first character's span
            spans.extend([piece.original_span(index, index + 1)] * utf8_length(char))
        return NormalizedString(to_byte_chars(word), spans[0][0], spans)


# --------------------------------------------------------------------------------------------------------------
# Metaspace: spaces shown as "▁"
# --------------------------------------------------------------------------------------------------------------


@dataclass
class MetaspaceOptions:
    """The fields of tokenizer.json's ``Metaspace`` pre-tokenizer and decoder (older files: ``add_prefix_space``)."""

    replacement: str = SPACE
    prepend_scheme: str = "always"
    split: bool = True

    @classmethod
    def from_dict(cls, spec: dict):
        if "prepend_scheme" in spec:
            scheme = spec["prepend_scheme"]
        else:  # files older than tokenizers 0.14
            scheme = "always" if spec.get("add_prefix_space", True) else "never"
        return cls(spec.get("replacement", SPACE), scheme, spec.get("split", True))


@register(PRE_TOKENIZERS, "Metaspace")
@dataclass
class Metaspace(MetaspaceOptions, PreTokenizer):
    """Spaces become "▁"; a "▁" is put in front (``always``, or ``first`` for the piece at the very start of
    the input); with ``split`` each "▁" begins a new word."""

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        replacement = self.replacement
        if " " in piece.text:
            if len(replacement) == 1:
                piece.text = piece.text.replace(" ", replacement)  # same length: alignment unchanged
            else:
                piece.replace_ranges([(i, i + 1, replacement) for i, c in enumerate(piece.text) if c == " "])
        text = piece.text
        if text and not text.startswith(replacement) and self._prepends(piece):
            piece.prepend(replacement)
            text = piece.text
        if not self.split or (len(replacement) == 1 and replacement not in text[1:]):
            return [piece]  # the usual word after WhitespaceSplit: nothing to split
        matches = []
        position = text.find(replacement)
        while position >= 0:
            matches.append((position, position + len(replacement)))
            position = text.find(replacement, position + len(replacement))
        return split_by_matches(piece, matches, "MergedWithNext")

    def split_pieces(self, pieces: list[NormalizedString]) -> list[NormalizedString]:
        # Words from WhitespaceSplit mostly just get a "▁" in front: done inline, which saves a call per word
        # (about 10% of a T5 encode). Anything else goes through split_piece.
        replacement = self.replacement
        if len(replacement) != 1 or self.prepend_scheme != "always":
            return super().split_pieces(pieces)
        out = []
        for piece in pieces:
            text = piece.text
            if piece.spans is None and text and " " not in text and replacement not in text:
                piece.text, piece.lead = replacement + text, piece.lead + 1
                out.append(piece)
            else:
                out.extend(self.split_piece(piece))
        return out

    def _prepends(self, piece: NormalizedString) -> bool:
        if self.prepend_scheme == "always":
            return True
        return self.prepend_scheme == "first" and piece.original_span(0, 0)[0] == 0
