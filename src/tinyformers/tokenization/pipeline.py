"""The tokenization pipeline of a ``tokenizer.json``, as small swappable pieces.

A text goes through the same stages as in the Hugging Face ``tokenizers`` library::

    added tokens -> normalizer -> pre-tokenizer -> model -> post-processor      (encode)
    ids -> tokens -> decoder                                                    (decode)

Each stage is a small class registered under the ``"type"`` name it has in ``tokenizer.json``. The registries
(``NORMALIZERS``, ``PRE_TOKENIZERS``, ``MODELS``, ``POST_PROCESSORS``, ``DECODERS``) are open: another module adds
a stage with ``@register(PRE_TOKENIZERS, "ByteLevel")``. Models live in their own modules (``wordpiece.py``,
``bpe.py``, ...) and are imported on first use through ``STAGE_MODULES``.

Offsets are character offsets into the *original* text, exactly as ``tokenizers`` reports them for a Python
string. To get them right through normalization, a ``NormalizedString`` remembers, for every normalized
character, the span of original characters it came from (``None`` while the mapping is the identity, which is
the common case and costs nothing).
"""

from __future__ import annotations

import importlib
import json
import re
import unicodedata
from dataclasses import dataclass, field, fields
from itertools import chain
from typing import ClassVar

NORMALIZERS: dict[str, type] = {}
PRE_TOKENIZERS: dict[str, type] = {}
MODELS: dict[str, type] = {}
POST_PROCESSORS: dict[str, type] = {}
DECODERS: dict[str, type] = {}

# Stages that live in other modules, by tokenizer.json "type"; importing the module registers the class.
# (A name may be several stages at once: ByteLevel is a pre-tokenizer, a post-processor and a decoder.)
STAGE_MODULES: dict[str, str] = {
    "WordPiece": "tinyformers.tokenization.wordpiece",
    "BPE": "tinyformers.tokenization.bpe",
    "ByteLevel": "tinyformers.tokenization.bpe",
    "Unigram": "tinyformers.tokenization.unigram",
    "Metaspace": "tinyformers.tokenization.sentencepiece",
    "Precompiled": "tinyformers.tokenization.sentencepiece",
    "ByteFallback": "tinyformers.tokenization.sentencepiece",
    "Fuse": "tinyformers.tokenization.sentencepiece",
    "Replace": "tinyformers.tokenization.sentencepiece",  # the decoder; the normalizer is in this file
    "Strip": "tinyformers.tokenization.sentencepiece",
}


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
    """Build one pipeline stage from its tokenizer.json dict (``None`` stays ``None``)."""
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
    if kind not in registry and kind in STAGE_MODULES:
        try:
            importlib.import_module(STAGE_MODULES[kind])
        except ModuleNotFoundError:
            pass  # not written yet: reported below as unsupported
    if kind not in registry:
        supported = ", ".join(sorted(registry)) or "none"
        raise TokenizerFileError(
            f"tokenizer.json: unsupported {stage} type {kind!r}; supported types: {supported} "
            f"(register a class for it with tinyformers.tokenization.pipeline.register)"
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


# --------------------------------------------------------------------------------------------------------------
# Character classes, as the Rust code defines them (not always what Python's str methods say)
# --------------------------------------------------------------------------------------------------------------

# Rust's char::is_whitespace (the Unicode White_Space property). Python's str.isspace() also accepts \x1c-\x1f.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_WHITESPACE_SET = frozenset(WHITESPACE)
_WS_CLASS = re.escape(WHITESPACE)
ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def is_whitespace(char: str) -> bool:
    return char in _WHITESPACE_SET


def is_punctuation(char: str) -> bool:
    """BERT's punctuation: every ASCII symbol (so ``$`` and ``+`` count) or any Unicode P* character."""
    return char in ASCII_PUNCTUATION or unicodedata.category(char)[0] == "P"


def is_chinese_char(char: str) -> bool:
    """The CJK ideograph blocks of tokenizers' BertNormalizer (it differs slightly from the old Python code)."""
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B920 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _unicode_regex():
    import regex  # a runtime dependency; imported late to keep `import tinyformers` fast

    return regex


# --------------------------------------------------------------------------------------------------------------
# NormalizedString: a string that remembers where each of its characters came from
# --------------------------------------------------------------------------------------------------------------


class CharMap(dict):
    """``str.translate`` table filled on demand from a per-character function.

    The function returns what one character becomes ('' deletes it). Characters that do not become exactly one
    character are remembered in ``resizing``: only texts containing one of them need their alignments rebuilt.
    """

    def __init__(self, function):
        super().__init__()
        self.function = function
        self.resizing: set[str] = set()

    def __missing__(self, codepoint: int) -> str:
        char = chr(codepoint)
        out = self.function(char)
        if len(out) != 1:
            self.resizing.add(char)
        self[codepoint] = out
        return out


class NormalizedString:
    """The normalized text of one piece of the input, with the original span of every character.

    ``spans`` is ``None`` while the alignment is simple arithmetic: the first ``lead`` characters were put in
    front of the text and stand for its first original character (a "▁" or space prefix, as tokenizers aligns
    them), and every later character ``i`` comes from original character ``offset + i - lead``. Otherwise
    ``spans`` lists one ``(start, end)`` original span per normalized character.
    """

    __slots__ = ("text", "offset", "spans", "lead")

    def __init__(self, text: str, offset: int = 0, spans: list[tuple[int, int]] | None = None, lead: int = 0):
        self.text = text
        self.offset = offset
        self.spans = spans
        self.lead = lead

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:
        return f"NormalizedString({self.text!r}, offset={self.offset})"

    @property
    def is_identity(self) -> bool:
        """Character ``i`` comes from original character ``offset + i``: offsets are plain additions."""
        return self.spans is None and not self.lead

    def all_spans(self) -> list[tuple[int, int]]:
        if self.spans is not None:
            return self.spans
        offset, lead = self.offset, min(self.lead, len(self.text))
        return [(offset, offset + 1)] * lead + [
            (offset + i, offset + i + 1) for i in range(len(self.text) - lead)
        ]

    def prepend(self, prefix: str) -> None:
        """Put ``prefix`` in front; like tokenizers, its characters stand for the first character (its span)."""
        if not self.text:
            return
        if self.spans is None:
            self.text, self.lead = prefix + self.text, self.lead + len(prefix)
        else:
            self.set_aligned(prefix + self.text, self.spans[:1] * len(prefix) + self.spans)

    def set_aligned(self, text: str, spans: list[tuple[int, int]]) -> None:
        """Replace the text and give every character its span explicitly."""
        self.text, self.spans, self.lead = text, spans, 0

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original character span of normalized characters ``start:end``."""
        if self.spans is None:
            lead = self.lead
            if not lead:
                return self.offset + start, self.offset + end
            first = self.offset + max(start - lead, 0)
            return first, (self.offset + max(end - lead, 1) if end > start else first)
        if start >= end:  # an empty piece sits where the next character starts
            if start < len(self.spans):
                return self.spans[start][0], self.spans[start][0]
            position = self.spans[-1][1] if self.spans else self.offset
            return position, position
        return self.spans[start][0], self.spans[end - 1][1]

    def slice(self, start: int, end: int) -> NormalizedString:
        if self.spans is not None:
            return NormalizedString(self.text[start:end], self.offset, self.spans[start:end])
        lead = self.lead
        if start >= lead:
            return NormalizedString(self.text[start:end], self.offset + start - lead)
        return NormalizedString(self.text[start:end], self.offset, None, lead - start)

    # -- transformations (all in place) --------------------------------------------------------------------------

    def map_chars(self, table: CharMap) -> None:
        """Replace every character by ``table``'s string for it; each new character keeps the old one's span."""
        text = self.text
        new_text = text.translate(table)
        if table.resizing.isdisjoint(text):
            self.text = new_text
            return
        spans = self.all_spans()
        new_spans: list[tuple[int, int]] = []
        for char, span in zip(text, spans):
            out = table[ord(char)]
            if len(out) == 1:
                new_spans.append(span)
            elif out:
                new_spans.extend([span] * len(out))
        self.set_aligned(new_text, new_spans)

    def replace_ranges(self, edits: list[tuple[int, int, str]]) -> None:
        """Replace normalized ranges ``start:end`` (sorted, disjoint) by new strings.

        A same-length replacement keeps the spans character by character. Otherwise the new characters all take
        the span covering the replaced range (an insertion takes the span of the character before it).
        """
        if not edits:
            return
        spans = self.all_spans()
        text = self.text
        pieces: list[str] = []
        new_spans: list[tuple[int, int]] = []
        position = 0
        for start, end, new in edits:
            pieces.append(text[position:start])
            new_spans.extend(spans[position:start])
            pieces.append(new)
            if end - start == len(new):
                new_spans.extend(spans[start:end])
            elif new:
                if end > start:
                    covering = (spans[start][0], spans[end - 1][1])
                elif start > 0:
                    covering = spans[start - 1]
                elif spans:
                    covering = (spans[0][0], spans[0][0])
                else:
                    covering = (self.offset, self.offset)
                new_spans.extend([covering] * len(new))
            position = end
        pieces.append(text[position:])
        new_spans.extend(spans[position:])
        self.set_aligned("".join(pieces), new_spans)

    def normalize_unicode(self, form: str) -> None:
        """NFC/NFKC (which may merge characters), aligned exactly as tokenizers aligns them.

        The text is decomposed character by character, marks are put in canonical order and characters are
        composed again, keeping for every character how many original ones it stands for (see
        ``_unicode_stream``). Original characters are then handed out in order: a composed character takes
        the first of its originals (``e`` + U+0301 -> ``é`` gets the span of ``e``), an extra character of
        an expansion (NFKC ``ﬁ`` -> ``f`` ``i``) the span of the character before it.
        """
        text = self.text
        if unicodedata.is_normalized(form, text):
            return
        stream = _unicode_stream(text, form)
        spans = self.all_spans()
        new_spans: list[tuple[int, int]] = []
        position = 0
        for _, change in stream:
            if change > 0:  # an added character
                new_spans.append(spans[position - 1] if position else (spans[0][0], spans[0][0]))
            else:  # it takes the next original character, and -change more are absorbed into it
                new_spans.append(spans[position])
                position += 1 - change
        self.set_aligned("".join(char for char, _ in stream), new_spans)


def _unicode_stream(text: str, form: str) -> list[tuple[str, int]]:
    """``text`` in Unicode form ``form`` as ``(character, change)``: ``change`` is 1 for a character added by a
    decomposition, ``-n`` for one that absorbed ``n`` following characters by composition, else 0 (the
    change stream of tokenizers' ``unicode_normalization_alignments``)."""
    decompose = "NFKD" if form in ("NFKC", "NFKD") else "NFD"
    stream: list[tuple[str, int]] = []
    for char in text:
        parts = unicodedata.normalize(decompose, char)
        stream.append((parts[0], 0))
        stream.extend((part, 1) for part in parts[1:])
    # Canonical order: each run of marks sorted (stably) by combining class, changes moving with them.
    start = 0
    while start < len(stream):
        if unicodedata.combining(stream[start][0]) == 0:
            start += 1
            continue
        end = start
        while end < len(stream) and unicodedata.combining(stream[end][0]):
            end += 1
        stream[start:end] = sorted(stream[start:end], key=lambda item: unicodedata.combining(item[0]))
        start = end
    if form in ("NFD", "NFKD"):
        return stream
    composed: list[tuple[str, int]] = []
    starter = None  # index in ``composed`` of the last character of combining class 0
    for char, change in stream:
        ccc = unicodedata.combining(char)
        if starter is not None:
            # Blocked when a character in between has class 0 or a class not lower than this one.
            between = composed[-1][0] if len(composed) - 1 > starter else None
            if between is None or 0 < unicodedata.combining(between) < ccc:
                pair = unicodedata.normalize("NFC", composed[starter][0] + char)
                if len(pair) == 1:
                    composed[starter] = (pair, composed[starter][1] + change - 1)
                    continue
        composed.append((char, change))
        if ccc == 0:
            starter = len(composed) - 1
    return composed


def _split_by_matches(
    piece: NormalizedString, matches: list[tuple[int, int]], behavior: str, invert: bool = False
) -> list[NormalizedString]:
    """Split ``piece`` around ``matches`` (sorted ``(start, end)``) the way tokenizers' ``split`` does."""
    length = len(piece.text)
    marked: list[tuple[int, int, bool]] = []  # (start, end, is_match) covering the whole text
    previous = 0
    for start, end in matches:
        if start > previous:
            marked.append((previous, start, invert))
        marked.append((start, end, not invert))
        previous = end
    if previous < length:
        marked.append((previous, length, invert))

    if behavior == "Removed":
        kept = [(s, e) for s, e, is_match in marked if not is_match]
    elif behavior == "Isolated":
        kept = [(s, e) for s, e, _ in marked]
    elif behavior == "Contiguous":
        kept = []
        previous_match = None
        for s, e, is_match in marked:
            if kept and is_match == previous_match:
                kept[-1] = (kept[-1][0], e)
            else:
                kept.append((s, e))
            previous_match = is_match
    elif behavior == "MergedWithPrevious":
        kept = []
        previous_match = False
        for s, e, is_match in marked:
            if is_match and not previous_match and kept:
                kept[-1] = (kept[-1][0], e)
            else:
                kept.append((s, e))
            previous_match = is_match
    elif behavior == "MergedWithNext":
        kept = []
        previous_match = False
        for s, e, is_match in reversed(marked):
            if is_match and not previous_match and kept:
                kept[-1] = (s, kept[-1][1])
            else:
                kept.append((s, e))
            previous_match = is_match
        kept.reverse()
    else:
        raise TokenizerFileError(
            f"unknown split behavior {behavior!r}; expected one of Removed, Isolated, Contiguous, "
            "MergedWithPrevious, MergedWithNext"
        )
    return [piece.slice(s, e) for s, e in kept if e > s]


class PreTokenizedString:
    """The pieces ("words") of one input after added-token extraction and pre-tokenization.

    ``tokens[i]`` is already set for added tokens (they skip the pre-tokenizer and the model), ``None`` otherwise.
    """

    __slots__ = ("pieces", "tokens")

    def __init__(self, pieces: list[NormalizedString], tokens: list[list[tuple] | None] | None = None):
        self.pieces = pieces
        self.tokens = tokens if tokens is not None else [None] * len(pieces)

    def split(self, function) -> None:
        """Replace every not-yet-tokenized piece by ``function(piece)`` (a list of pieces)."""
        pieces: list[NormalizedString] = []
        tokens: list[list[tuple] | None] = []
        for piece, done in zip(self.pieces, self.tokens):
            if done is not None:
                pieces.append(piece)
                tokens.append(done)
                continue
            new = function(piece)
            pieces.extend(new)
            tokens.extend([None] * len(new))
        self.pieces, self.tokens = pieces, tokens


# --------------------------------------------------------------------------------------------------------------
# Normalizers
# --------------------------------------------------------------------------------------------------------------


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

    def normalize(self, piece: NormalizedString) -> None:
        table = self.__dict__.get("_table")
        if table is None:
            table = self.__dict__["_table"] = CharMap(self.map_char)
        piece.map_chars(table)


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
            if char in _WHITESPACE_SET:
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
        while self.strip_left and start < end and text[start] in _WHITESPACE_SET:
            start += 1
        while self.strip_right and end > start and text[end - 1] in _WHITESPACE_SET:
            end -= 1
        if (start, end) != (0, len(text)):
            stripped = piece.slice(start, end)
            piece.text, piece.offset, piece.spans, piece.lead = (
                stripped.text,
                stripped.offset,
                stripped.spans,
                stripped.lead,
            )


def compile_pattern(pattern: dict | str):
    """A tokenizer.json pattern ``{"String": s}`` or ``{"Regex": r}`` as a compiled ``regex`` pattern."""
    regex = _unicode_regex()
    if isinstance(pattern, str):
        return regex.compile(regex.escape(pattern))
    if "String" in pattern:
        return regex.compile(regex.escape(pattern["String"]))
    if "Regex" in pattern:
        return regex.compile(pattern["Regex"])
    raise TokenizerFileError(
        f"tokenizer.json: a pattern must be {{'String': ...}} or {{'Regex': ...}}, got {pattern!r}"
    )


@register(NORMALIZERS, "Replace")
@dataclass
class Replace(Normalizer):
    pattern: dict = field(default_factory=dict)
    content: str = ""

    def normalize(self, piece: NormalizedString) -> None:
        compiled = self.__dict__.get("_compiled") or self.__dict__.setdefault(
            "_compiled", compile_pattern(self.pattern)
        )
        edits = [
            (m.start(), m.end(), self.content) for m in compiled.finditer(piece.text) if m.end() > m.start()
        ]
        piece.replace_ranges(edits)


@register(NORMALIZERS, "Prepend")
@dataclass
class Prepend(Normalizer):
    prepend: str = ""

    def normalize(self, piece: NormalizedString) -> None:
        piece.prepend(self.prepend)


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


@register(NORMALIZERS, "Sequence")
@dataclass
class NormalizerSequence(StageSequence, Normalizer):
    stage_registry: ClassVar[dict] = NORMALIZERS
    items_key: ClassVar[str] = "normalizers"
    normalizers: list = field(default_factory=list)

    def normalize(self, piece: NormalizedString) -> None:
        for normalizer in self.normalizers:
            normalizer.normalize(piece)


# --------------------------------------------------------------------------------------------------------------
# Pre-tokenizers: cut a piece into words, keeping offsets
# --------------------------------------------------------------------------------------------------------------


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

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        compiled = self.__dict__.get("_compiled")
        if compiled is None:
            compiled = self.__dict__["_compiled"] = self.pattern()
        regex, behavior, invert = compiled
        matches = [m.span() for m in regex.finditer(piece.text)]
        return _split_by_matches(piece, matches, behavior, invert)


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
        regex = _unicode_regex()
        punct = regex.escape(ASCII_PUNCTUATION) + r"\p{P}"
        # \x1c-\x1f are control characters, not whitespace, for Rust (Python's isspace disagrees)
        _BERT_WORD_REGEX = regex.compile(f"[^{_WS_CLASS}{punct}]+|[{punct}]")
    return _BERT_WORD_REGEX


@register(PRE_TOKENIZERS, "Whitespace")
@dataclass
class Whitespace(RegexPreTokenizer):
    """Words are ``\\w+`` runs or runs of other non-space characters."""

    def pattern(self):
        return _unicode_regex().compile(r"\w+|[^\w\s]+"), "Removed", True


_NOT_WHITESPACE_RUN = re.compile(f"[^{_WS_CLASS}]+")


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
        regex = _unicode_regex()
        return regex.compile(f"[{regex.escape(ASCII_PUNCTUATION)}\\p{{P}}]"), self.behavior, False


@register(PRE_TOKENIZERS, "Digits")
@dataclass
class Digits(RegexPreTokenizer):
    individual_digits: bool = False

    def pattern(self):
        if self.individual_digits:
            return _unicode_regex().compile(r"\p{N}"), "Isolated", False
        return _unicode_regex().compile(r"\p{N}+"), "Isolated", False


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
# Models: the interface (implementations live in wordpiece.py, bpe.py, ...)
# --------------------------------------------------------------------------------------------------------------


class Model:
    """Turns one word into tokens. ``tokenize`` returns ``(id, token, start, end)`` with offsets in the word."""

    type_name: ClassVar[str] = ""

    def tokenize(self, word: str) -> list[tuple[int, str, int, int]]:
        raise NotImplementedError

    def token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    def id_to_token(self, index: int) -> str | None:
        raise NotImplementedError

    def get_vocab(self) -> dict[str, int]:
        raise NotImplementedError

    def get_vocab_size(self) -> int:
        return len(self.get_vocab())

    @classmethod
    def from_dict(cls, spec: dict):
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError


CACHE_CAPACITY = 100_000  # words; a word cache is dropped and rebuilt when full, which is rare and cheap


class WordCache(dict):
    """word -> tokens; a missing word is tokenized by ``compute`` and remembered (dropped all at once when full)."""

    def __init__(self, compute):
        super().__init__()
        self.compute = compute

    def __missing__(self, word: str):
        tokens = self.compute(word)
        if len(self) >= CACHE_CAPACITY:
            self.clear()
        self[word] = tokens
        return tokens


class CachedModel(Model):
    """A model that remembers the tokens of the words it has seen (real text repeats its words all the time).

    A hit is a plain dict lookup: ``tokenize`` *is* the cache's ``__getitem__``, so no Python frame runs per
    known word (10% of a warm WordPiece encode); a miss goes through ``WordCache.__missing__`` to ``_tokenize``.
    Subclasses call ``_start_cache()`` at the end of ``__init__``.
    """

    def _tokenize(self, word: str) -> tuple[tuple[int, str, int, int], ...]:
        raise NotImplementedError

    def _start_cache(self) -> None:
        self._cache = WordCache(self._tokenize)
        self.tokenize = self._cache.__getitem__

    def tokenize(self, word: str) -> tuple[tuple[int, str, int, int], ...]:
        return self._cache[word]  # (shadowed per instance by the cache's own __getitem__)

    def __getstate__(self) -> dict:  # copies and pickles start with an empty cache of their own
        return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "tokenize")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._start_cache()


class VocabModel(CachedModel):
    """A cached model over a ``{token: id}`` vocabulary (WordPiece, BPE): the lookups they share."""

    def _set_vocab(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab
        self.vocab_r = {index: token for token, index in vocab.items()}

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, index: int) -> str | None:
        return self.vocab_r.get(index)

    def get_vocab(self) -> dict[str, int]:
        return self.vocab

    def get_vocab_size(self) -> int:
        return len(self.vocab)


# --------------------------------------------------------------------------------------------------------------
# Encoding: the result of encoding one sequence (or pair)
# --------------------------------------------------------------------------------------------------------------


class Encoding:
    """Parallel per-token lists, like ``tokenizers.Encoding``."""

    __slots__ = (
        "ids",
        "tokens",
        "offsets",
        "word_ids",
        "type_ids",
        "special_tokens_mask",
        "attention_mask",
        "sequence_ids",
    )

    def __init__(
        self, ids, tokens, offsets, word_ids, type_ids, special_tokens_mask, attention_mask, sequence_ids
    ):
        self.ids: list[int] = ids
        self.tokens: list[str] = tokens
        self.offsets: list[tuple[int, int]] = offsets
        self.word_ids: list[int | None] = word_ids
        self.type_ids: list[int] = type_ids
        self.special_tokens_mask: list[int] = special_tokens_mask
        self.attention_mask: list[int] = attention_mask
        self.sequence_ids: list[int | None] = sequence_ids

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"Encoding(num_tokens={len(self.ids)}, tokens={self.tokens[:8]}{'...' if len(self) > 8 else ''})"
        )

    @property
    def words(self) -> list[int | None]:
        return self.word_ids

    @classmethod
    def from_tokens(
        cls, tokens: list[tuple[int, str, int, int, int | None]], type_id: int = 0, sequence_id=0
    ):
        """From ``(id, token, start, end, word)`` tuples of one sequence."""
        n = len(tokens)
        return cls(
            [t[0] for t in tokens],
            [t[1] for t in tokens],
            [(t[2], t[3]) for t in tokens],
            [t[4] for t in tokens],
            [type_id] * n,
            [0] * n,
            [1] * n,
            [sequence_id] * n,
        )

    @classmethod
    def special(cls, ids: list[int], tokens: list[str], type_id: int) -> Encoding:
        n = len(ids)
        return cls(
            list(ids), list(tokens), [(0, 0)] * n, [None] * n, [type_id] * n, [1] * n, [1] * n, [None] * n
        )

    @classmethod
    def merge(cls, encodings: list[Encoding]) -> Encoding:
        columns = zip(*[[getattr(encoding, name) for name in cls.__slots__] for encoding in encodings])
        return cls(*[list(chain.from_iterable(column)) for column in columns] or [[] for _ in cls.__slots__])

    def with_type_id(self, type_id: int, sequence_id: int) -> Encoding:
        n = len(self.ids)
        return Encoding(
            self.ids,
            self.tokens,
            self.offsets,
            self.word_ids,
            [type_id] * n,
            self.special_tokens_mask,
            self.attention_mask,
            [sequence_id] * n,
        )

    def pad(
        self, length: int, pad_id: int, pad_token: str, pad_type_id: int = 0, direction: str = "right"
    ) -> None:
        missing = length - len(self.ids)
        if missing <= 0:
            return
        filler = {
            "ids": pad_id,
            "tokens": pad_token,
            "offsets": (0, 0),
            "word_ids": None,
            "type_ids": pad_type_id,
            "special_tokens_mask": 1,
            "attention_mask": 0,
            "sequence_ids": None,
        }
        for name in self.__slots__:
            values = getattr(self, name)
            padding = [filler[name]] * missing
            setattr(self, name, values + padding if direction == "right" else padding + values)


# --------------------------------------------------------------------------------------------------------------
# Post-processors: add special tokens around one sequence or a pair
# --------------------------------------------------------------------------------------------------------------


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
            from .bpe import trim_offsets  # lives with the byte-level stages it belongs to

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


# --------------------------------------------------------------------------------------------------------------
# Decoders: tokens back to text
# --------------------------------------------------------------------------------------------------------------


class Decoder(Component):
    def decode_chain(self, tokens: list[str]) -> list[str]:
        raise NotImplementedError

    def decode(self, tokens: list[str]) -> str:
        return "".join(self.decode_chain(list(tokens)))


def cleanup_wordpiece(text: str) -> str:
    """Glue punctuation and contractions back on (applied per token by the WordPiece decoder)."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" do not", " don't")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


@register(DECODERS, "WordPiece")
@dataclass
class WordPieceDecoder(Decoder):
    prefix: str = "##"
    cleanup: bool = True

    def decode_chain(self, tokens: list[str]) -> list[str]:
        out = []
        for i, token in enumerate(tokens):
            if i != 0:  # like tokenizers: a leading "##" on the very first token is kept
                token = token[len(self.prefix) :] if token.startswith(self.prefix) else " " + token
            out.append(cleanup_wordpiece(token) if self.cleanup else token)
        return out


@register(DECODERS, "Sequence")
@dataclass
class DecoderSequence(StageSequence, Decoder):
    stage_registry: ClassVar[dict] = DECODERS
    items_key: ClassVar[str] = "decoders"
    decoders: list = field(default_factory=list)

    def decode_chain(self, tokens: list[str]) -> list[str]:
        for decoder in self.decoders:
            tokens = decoder.decode_chain(tokens)
        return tokens


# --------------------------------------------------------------------------------------------------------------
# Added tokens: matched whole in the text before anything else runs
# --------------------------------------------------------------------------------------------------------------


@dataclass
class AddedToken:
    """A token matched whole in the input. ``normalized=None`` means "not special" (the tokenizers default)."""

    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool | None = None
    special: bool = False

    def __post_init__(self):
        if self.normalized is None:
            self.normalized = not self.special

    def __str__(self) -> str:
        return self.content

    def to_dict(self, index: int) -> dict:
        return {
            "id": index,
            "content": self.content,
            "single_word": self.single_word,
            "lstrip": self.lstrip,
            "rstrip": self.rstrip,
            "normalized": self.normalized,
            "special": self.special,
        }


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


class AddedVocabulary:
    """The added tokens of a tokenizer and the two matchers that find them (on raw and on normalized text)."""

    def __init__(self):
        self.tokens: dict[int, AddedToken] = {}  # id -> token
        self.ids: dict[str, int] = {}  # content -> id
        self._normalizer: Normalizer | None = None
        self._display: dict[int, str] = {}  # id -> token string shown for it
        self._matchers = None  # built lazily: (raw regex, raw table, normalized regex, normalized table)

    @property
    def normalizer(self) -> Normalizer | None:
        return self._normalizer

    @normalizer.setter
    def normalizer(self, normalizer: Normalizer | None) -> None:
        self._normalizer = normalizer
        self._matchers = None
        self._display = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, tokens: list[AddedToken], model: Model) -> int:
        """Add tokens (a known content gets its flags updated). Like tokenizers, returns how many were not
        already there as the very same added token (a token of the model's vocabulary keeps its id but counts)."""
        added = 0
        for token in tokens:
            if not token.content or token in self.tokens.values():
                continue
            added += 1
            index = self.ids.get(token.content)
            if index is None:
                index = model.token_to_id(token.content)
            if index is None:
                size = model.get_vocab_size()
                top = max(self.tokens, default=None)
                index = size if top is None or (top < size and size > 0) else top + 1
            self.tokens[index] = token
            self.ids[token.content] = index
        self._matchers = None
        self._display = {}
        return added

    def display(self, index: int) -> str | None:
        """The token string of an added id (a normalized token shows its normalized form, like tokenizers)."""
        shown = self._display.get(index)
        if shown is None:
            token = self.tokens.get(index)
            if token is None:
                return None
            shown = token.content
            if token.normalized and self._normalizer is not None:
                shown = self._normalizer.normalize_str(shown)
            self._display[index] = shown
        return shown

    def is_special_id(self, index: int) -> bool:
        token = self.tokens.get(index)
        return token is not None and token.special

    def _build(self):
        raw, normalized = {}, {}
        for index, token in self.tokens.items():
            if token.normalized:
                normalized[self.display(index)] = (index, token)
            else:
                raw[token.content] = (index, token)

        def alternation(table):
            if not table:
                return None
            # Longest first: regex alternation is leftmost-first, so this gives leftmost-longest matches.
            keys = sorted(table, key=len, reverse=True)
            return re.compile("|".join(re.escape(k) for k in keys))

        self._matchers = (alternation(raw), raw, alternation(normalized), normalized)

    def split(self, piece: NormalizedString, normalized: bool, encode_special_tokens: bool = False):
        """Cut ``piece`` around added tokens: a list of ``(subpiece, (id, token) or None)``."""
        if self._matchers is None:
            self._build()
        regex, table = (self._matchers[2], self._matchers[3]) if normalized else self._matchers[:2]
        text = piece.text
        if regex is None or not text:
            return [(piece, None)]
        out = []
        position = 0
        for match in regex.finditer(text):
            start, end = match.span()
            if start < position:
                continue
            index, token = table[match.group()]
            if encode_special_tokens and token.special:
                continue
            if token.single_word and (
                (start > 0 and _is_word_char(text[start - 1]))
                or (end < len(text) and _is_word_char(text[end]))
            ):
                continue
            if token.lstrip:
                while start > position and text[start - 1] in _WHITESPACE_SET:
                    start -= 1
            if token.rstrip:
                while end < len(text) and text[end] in _WHITESPACE_SET:
                    end += 1
            if start > position:
                out.append((piece.slice(position, start), None))
            out.append((piece.slice(start, end), (index, match.group())))
            position = end
        if position < len(text):
            out.append((piece.slice(position, len(text)), None))
        return out

    def to_list(self) -> list[dict]:
        return [token.to_dict(index) for index, token in sorted(self.tokens.items())]


# --------------------------------------------------------------------------------------------------------------
# Tokenizer: the whole pipeline
# --------------------------------------------------------------------------------------------------------------


class Tokenizer:
    """A ``tokenizer.json`` brought to life: encode text to an ``Encoding``, decode ids to text.

    Truncation and padding are left to the caller (``PreTrainedTokenizer``); the ``truncation`` and
    ``padding`` sections of a loaded file are kept only so that saving writes them back.
    """

    def __init__(
        self,
        model: Model,
        normalizer: Normalizer | None = None,
        pre_tokenizer: PreTokenizer | None = None,
        post_processor: PostProcessor | None = None,
        decoder: Decoder | None = None,
    ):
        self.model = model
        self.added_vocabulary = AddedVocabulary()
        self.normalizer = normalizer
        self.pre_tokenizer = pre_tokenizer
        self.post_processor = post_processor
        self.decoder = decoder
        self.encode_special_tokens = False  # True: special tokens in the text are tokenized like any text
        self.truncation: dict | None = None
        self.padding: dict | None = None

    @property
    def normalizer(self) -> Normalizer | None:
        return self._normalizer

    @normalizer.setter
    def normalizer(self, normalizer: Normalizer | None) -> None:
        # Normalized added tokens are matched in their normalized form: a new normalizer changes them.
        self._normalizer = normalizer
        self.added_vocabulary.normalizer = normalizer

    # -- (de)serialization --------------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path) -> Tokenizer:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"tokenizer file {path} does not exist") from None
        return cls.from_str(text, source=str(path))

    @classmethod
    def from_str(cls, text: str, source: str = "tokenizer.json") -> Tokenizer:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise TokenizerFileError(
                f"{source} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
                "re-save it with save_pretrained or download it again"
            ) from None
        return cls.from_dict(spec, source)

    @classmethod
    def from_dict(cls, spec: dict, source: str = "tokenizer.json") -> Tokenizer:
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
            raise TokenizerFileError(f"{source} has no 'model' section: it is not a tokenizers file")
        tokenizer = cls(
            build(MODELS, spec["model"]),
            build(NORMALIZERS, spec.get("normalizer")),
            build(PRE_TOKENIZERS, spec.get("pre_tokenizer")),
            build(POST_PROCESSORS, spec.get("post_processor")),
            build(DECODERS, spec.get("decoder")),
        )
        tokenizer.truncation = spec.get("truncation")
        tokenizer.padding = spec.get("padding")
        for item in sorted(spec.get("added_tokens") or [], key=lambda t: t["id"]):
            token = AddedToken(**{k: v for k, v in item.items() if k != "id"})
            tokenizer.added_vocabulary.add([token], tokenizer.model)
            placed = tokenizer.added_vocabulary.ids[token.content]
            if placed != item["id"]:  # ids in the file win, even when they leave gaps
                del tokenizer.added_vocabulary.tokens[placed]
                tokenizer.added_vocabulary.tokens[item["id"]] = token
                tokenizer.added_vocabulary.ids[token.content] = item["id"]
        return tokenizer

    def to_dict(self) -> dict:
        def dump(stage):
            return None if stage is None else stage.to_dict()

        return {
            "version": "1.0",
            "truncation": self.truncation,
            "padding": self.padding,
            "added_tokens": self.added_vocabulary.to_list(),
            "normalizer": dump(self.normalizer),
            "pre_tokenizer": dump(self.pre_tokenizer),
            "post_processor": dump(self.post_processor),
            "decoder": dump(self.decoder),
            "model": self.model.to_dict(),
        }

    def to_str(self, pretty: bool = True) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2 if pretty else None)

    # -- vocabulary ---------------------------------------------------------------------------------------------

    def add_tokens(self, tokens: list[AddedToken | str]) -> int:
        tokens = [t if isinstance(t, AddedToken) else AddedToken(t) for t in tokens]
        return self.added_vocabulary.add(tokens, self.model)

    def add_special_tokens(self, tokens: list[AddedToken | str]) -> int:
        tokens = [t if isinstance(t, AddedToken) else AddedToken(t, special=True) for t in tokens]
        return self.added_vocabulary.add(tokens, self.model)

    def token_to_id(self, token: str) -> int | None:
        index = self.added_vocabulary.ids.get(token)
        return index if index is not None else self.model.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        token = self.added_vocabulary.display(index)
        return token if token is not None else self.model.id_to_token(index)

    def get_vocab(self, with_added_tokens: bool = True) -> dict[str, int]:
        vocab = dict(self.model.get_vocab())
        if with_added_tokens:
            for index, token in self.added_vocabulary.tokens.items():
                vocab[token.content] = index  # the content as added (id_to_token shows the normalized form)
        return vocab

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        if not with_added_tokens:
            return self.model.get_vocab_size()
        return len(self.get_vocab(True))

    # -- encode -------------------------------------------------------------------------------------------------

    def pre_tokenize(self, text: str, offset: int = 0) -> PreTokenizedString:
        """Added tokens, normalization and pre-tokenization of one text: the words the model will see."""
        vocabulary = self.added_vocabulary
        pieces: list[NormalizedString] = []
        tokens: list = []
        for raw, found in vocabulary.split(NormalizedString(text, offset), False, self.encode_special_tokens):
            if found is not None:
                pieces.append(raw)
                # Like tokenizers, the token string is the matched text (with any stripped spaces)
                tokens.append([(found[0], raw.text, 0, len(raw.text))])
                continue
            if self.normalizer is not None:
                self.normalizer.normalize(raw)
            for piece, found in vocabulary.split(raw, True, self.encode_special_tokens):
                pieces.append(piece)
                tokens.append(None if found is None else [(found[0], piece.text, 0, len(piece.text))])
        pretokenized = PreTokenizedString(pieces, tokens)
        if self.pre_tokenizer is not None:
            self.pre_tokenizer.pre_tokenize(pretokenized)
        return pretokenized

    def encode_sequence(
        self, text: str | list[str], type_id: int = 0, is_pretokenized: bool = False
    ) -> Encoding:
        """One sequence to tokens, without special tokens. A pre-tokenized input is a list of words."""
        if is_pretokenized:
            # Each word is encoded on its own; its offsets are relative to the word, like tokenizers does.
            parts = [
                self._encode_words(self.pre_tokenize(word), word_index)
                for word_index, word in enumerate(text)
            ]
            encoding = Encoding.merge(parts) if parts else Encoding.from_tokens([])
        else:
            encoding = self._encode_words(self.pre_tokenize(text), None)
        if type_id:
            encoding.type_ids = [type_id] * len(encoding.ids)
        return encoding

    def _encode_words(self, pretokenized: PreTokenizedString, word_index: int | None) -> Encoding:
        ids: list[int] = []
        tokens: list[str] = []
        offsets: list[tuple[int, int]] = []
        word_ids: list[int | None] = []
        # Hot loop (one pass per word of every text): methods bound once, single-token words handled inline.
        ids_append, tokens_append, offsets_append, words_append = (
            ids.append,
            tokens.append,
            offsets.append,
            word_ids.append,
        )
        tokenize = self.model.tokenize
        for index, (piece, done) in enumerate(zip(pretokenized.pieces, pretokenized.tokens)):
            pieces = done if done is not None else tokenize(piece.text)
            word = index if word_index is None else word_index
            if piece.spans is None:
                base, lead = piece.offset, piece.lead
                if lead:  # the first ``lead`` characters (a "▁" put in front) stand for the word's first one
                    for token_id, token, start, end in pieces:
                        ids_append(token_id)
                        tokens_append(token)
                        offsets_append(
                            (
                                base + (start - lead if start > lead else 0),
                                base + (end - lead if end > lead else 1),
                            )
                        )
                elif len(pieces) == 1:
                    token_id, token, start, end = pieces[0]
                    ids_append(token_id)
                    tokens_append(token)
                    offsets_append((base + start, base + end))
                    words_append(word)
                    continue
                else:
                    for token_id, token, start, end in pieces:
                        ids_append(token_id)
                        tokens_append(token)
                        offsets_append((base + start, base + end))
            else:
                for token_id, token, start, end in pieces:
                    ids_append(token_id)
                    tokens_append(token)
                    offsets_append(piece.original_span(start, end))
            word_ids.extend([word] * len(pieces))
        n = len(ids)
        return Encoding(ids, tokens, offsets, word_ids, [0] * n, [0] * n, [1] * n, [0] * n)

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        if self.post_processor is None:
            return 0
        return self.post_processor.num_special_tokens_to_add(is_pair)

    def post_process(
        self, encoding: Encoding, pair: Encoding | None = None, add_special_tokens=True
    ) -> Encoding:
        if self.post_processor is not None:
            return self.post_processor.process(encoding, pair, add_special_tokens)
        if pair is None:
            return encoding
        return Encoding.merge([encoding, pair.with_type_id(1, 1)])

    def encode(
        self,
        text: str | list[str],
        pair: str | list[str] | None = None,
        add_special_tokens: bool = True,
        is_pretokenized: bool = False,
    ) -> Encoding:
        first = self.encode_sequence(text, 0, is_pretokenized)
        second = None if pair is None else self.encode_sequence(pair, 1, is_pretokenized)
        if second is not None:
            second.sequence_ids = [1] * len(second.ids)
        return self.post_process(first, second, add_special_tokens)

    # -- decode -------------------------------------------------------------------------------------------------

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        tokens = []
        for index in ids:
            if skip_special_tokens and self.added_vocabulary.is_special_id(index):
                continue
            token = self.id_to_token(index)
            if token is not None:  # unknown ids are dropped, as tokenizers does
                tokens.append(token)
        if self.decoder is None:
            return " ".join(tokens)
        return self.decoder.decode(tokens)
