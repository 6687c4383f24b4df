"""sentencepiece: its normalizer, the tokenizer.json stages that mimic it, and tokenizers built from a ``.model``.

Two ways to tokenize with a sentencepiece model, because the two libraries people compare against differ:

* ``SentencePieceTokenizer.from_model_file(path)`` is the ``sentencepiece`` library itself: its normalizer
  (longest match in the precompiled charsmap, extra spaces removed, a dummy "▁" prefix), its Unigram or BPE,
  its decoding (control pieces vanish, ``<unk>`` reads " ⁇ ").
* ``T5Tokenizer`` is what ``transformers`` builds for T5 (the ``tokenizers`` pipeline): ``Precompiled``
  normalizer, ``WhitespaceSplit`` + ``Metaspace`` pre-tokenizers, ``Unigram``, ``</s>`` appended, 100 sentinels.

The precompiled charsmap is a normalization table (NFKC plus sentencepiece's own rules) stored as a darts-clone
double-array trie over UTF-8 bytes plus a blob of NUL-terminated replacement strings.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..formats.sentencepiece_model import (
    BPE,
    BYTE,
    CONTROL,
    NORMAL,
    UNIGRAM,
    UNKNOWN,
    UNUSED,
    USER_DEFINED,
    SentencePieceModel,
    load_model_file,
)
from .base import PreTrainedTokenizer
from .pipeline import (
    DECODERS,
    NORMALIZERS,
    PRE_TOKENIZERS,
    Decoder,
    NormalizedString,
    Normalizer,
    PreTokenizer,
    PreTokenizerSequence,
    TemplateProcessing,
    Tokenizer,
    TokenizerFileError,
    WhitespaceSplit,
    _split_by_matches,
    compile_pattern,
    register,
)
from .unigram import SentencePieceBPE, Unigram

SPACE = "\u2581"  # "▁", sentencepiece's visible space

# --------------------------------------------------------------------------------------------------------------
# The precompiled charsmap
# --------------------------------------------------------------------------------------------------------------


def _unit_offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


class Charsmap:
    """A precompiled charsmap: ``lookup`` walks the trie over UTF-8 bytes exactly as darts-clone does.

    The trie shares common endings (it is a graph of ~44k units holding ~200k rules), so it is never expanded
    into a dict. Loading instead visits each node once to find ``triggers``: the characters that can take part
    in a rule (one-character rules, and any later character of a longer rule). A text without any of them,
    the usual case, skips normalization altogether.
    """

    _loaded: dict[bytes, Charsmap] = {}  # one table per distinct blob: T5 checkpoints share theirs

    def __init__(self, blob: bytes):
        if len(blob) < 4:
            raise TokenizerFileError("precompiled charsmap is too short to hold its trie size")
        (trie_size,) = struct.unpack_from("<I", blob)
        if trie_size % 4 or 4 + trie_size > len(blob):
            raise TokenizerFileError("precompiled charsmap is truncated: its trie is larger than the blob")
        self.units = struct.unpack_from(f"<{trie_size // 4}I", blob, 4)
        self.strings = blob[4 + trie_size :]
        self._replacements: dict[int, str] = {}
        self.triggers = self._find_triggers()

    @classmethod
    def load(cls, blob: bytes) -> Charsmap:
        found = cls._loaded.get(blob)
        if found is None:
            found = cls._loaded[blob] = cls(blob)
        return found

    def lookup(self, key: bytes) -> list[tuple[int, int]]:
        """darts-clone ``commonPrefixSearch``: ``(length, value)`` of every rule that is a prefix of ``key``."""
        units = self.units
        position = _unit_offset(units[0])
        found = []
        for length, byte in enumerate(key, 1):
            position ^= byte
            if position >= len(units) or units[position] & 0x800000FF != byte:
                break
            unit = units[position]
            position ^= _unit_offset(unit)
            if unit & 0x100:  # has a leaf: the bytes read so far are a rule
                found.append((length, units[position] & 0x7FFFFFFF))
        return found

    def replacement(self, value: int) -> str:
        text = self._replacements.get(value)
        if text is None:
            end = self.strings.find(b"\0", value)
            text = self._replacements[value] = self.strings[value : end if end >= 0 else None].decode(
                "utf-8", "replace"
            )
        return text

    def _find_triggers(self) -> frozenset[str]:
        """Walk the trie one character at a time (each node once; numpy tries all 255 bytes of a level)."""
        import numpy as np

        units = np.asarray(self.units, dtype=np.int64)
        labels = np.arange(1, 256, dtype=np.int64)  # label 0 is where a node keeps its value, not a child

        def children(bases):
            """(row, byte, child position, child base) of every edge out of the nodes ``bases``."""
            positions = np.asarray(bases, dtype=np.int64)[:, None] ^ labels[None, :]
            inside = positions < len(units)
            unit = units[np.where(inside, positions, 0)]
            rows, columns = np.nonzero(inside & ((unit & 0x800000FF) == labels[None, :]))
            child = positions[rows, columns]
            child_unit = units[child]
            child_base = child ^ ((child_unit >> 10) << ((child_unit & (1 << 9)) >> 6))
            return rows.tolist(), (columns + 1).tolist(), child_unit.tolist(), child_base.tolist()

        root = _unit_offset(self.units[0])
        triggers: set[str] = set()
        seen = {root}
        level = [root]  # nodes reached at a character boundary
        while level:
            # Partial characters: (node at the boundary, bytes so far, node after them)
            partial = [(origin, b"", origin) for origin in level]
            next_level = []
            while partial:
                rows, bytes_, child_units, child_bases = children([node for _, _, node in partial])
                still = []
                for row, byte, child_unit, child_base in zip(rows, bytes_, child_units, child_bases):
                    origin, so_far, _ = partial[row]
                    so_far += bytes([byte])
                    try:
                        char = so_far.decode("utf-8")
                    except UnicodeDecodeError:
                        if len(so_far) < 4:
                            still.append((origin, so_far, child_base))
                        continue
                    if origin != root or child_unit & 0x100:
                        triggers.add(char)
                    if child_base not in seen:
                        seen.add(child_base)
                        next_level.append(child_base)
                partial = still
            level = next_level
        return frozenset(triggers)

    def longest_match(self, text: str, start: int) -> tuple[int, str] | None:
        """sentencepiece: the longest rule at ``text[start:]`` as ``(characters used, replacement)``."""
        key = text[start : start + 32].encode("utf-8")
        found = self.lookup(key)
        if not found:
            return None
        length, value = found[-1]
        return len(key[:length].decode("utf-8")), self.replacement(value)

    def shortest_match(self, text: str) -> str | None:
        """tokenizers: the replacement of the *shortest* rule that is a prefix of ``text`` (its first result)."""
        found = self.lookup(text.encode("utf-8"))
        return self.replacement(found[0][1]) if found else None


def _grapheme_regex():
    import regex

    return regex.compile(r"\X")


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
        self._graphemes = None

    def to_dict(self) -> dict:
        return {"type": "Precompiled", "precompiled_charsmap": self.precompiled_charsmap}

    def normalize(self, piece: NormalizedString) -> None:
        charsmap = self.charsmap
        text = piece.text
        if charsmap is None or charsmap.triggers.isdisjoint(text):
            return
        if self._graphemes is None:
            self._graphemes = _grapheme_regex()
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


@dataclass
class SentencePieceNormalizer(Normalizer):
    """sentencepiece's own normalizer (``normalizer.cc``), for tokenizers that must equal the library.

    Longest charsmap rule at each position; then, with ``remove_extra_whitespaces``, spaces at both ends go
    and inner runs become one; ``add_dummy_prefix`` puts a space in front (behind with
    ``treat_whitespace_as_suffix``); ``escape_whitespaces`` writes every space as "▁". Not a tokenizers stage:
    it is never written to tokenizer.json.
    """

    charsmap: Charsmap | None = None
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    treat_whitespace_as_suffix: bool = False

    def to_dict(self) -> dict:
        raise TokenizerFileError(
            "a tokenizer built from a sentencepiece .model has no tokenizer.json form; keep the .model file"
        )

    def _chunks(self, text: str):
        """``(replacement, start, end)`` for each consumed span of ``text``, in order."""
        charsmap = self.charsmap
        if charsmap is None or charsmap.triggers.isdisjoint(text):
            yield from ((char, i, i + 1) for i, char in enumerate(text))
            return
        start = 0
        while start < len(text):
            match = charsmap.longest_match(text, start)
            if match is None:
                yield text[start], start, start + 1
                start += 1
            else:
                used, replacement = match
                yield replacement, start, start + used
                start += used

    def normalize(self, piece: NormalizedString) -> None:
        if not self._normalize_plain(piece):
            self._normalize_any(piece)

    def _normalize_plain(self, piece: NormalizedString) -> bool:
        """The usual text (no charsmap rule applies, no runs of spaces): string methods instead of a loop."""
        text = piece.text
        charsmap = self.charsmap
        if charsmap is not None and not charsmap.triggers.isdisjoint(text):
            return False
        if not (self.remove_extra_whitespaces and self.escape_whitespaces) or self.treat_whitespace_as_suffix:
            return False
        kept = text.strip(" ")
        if "  " in kept:
            return False
        first = len(text) - len(text.lstrip(" "))
        escaped = kept.replace(" ", SPACE)  # same length: every character keeps its span
        prefix = SPACE if kept and self.add_dummy_prefix else ""
        if piece.is_identity:  # the dummy "▁" stands for the first kept character: still arithmetic
            piece.text, piece.offset, piece.lead = prefix + escaped, piece.offset + first, len(prefix)
            return True
        spans = piece.all_spans()[first : first + len(kept)]
        piece.set_aligned(prefix + escaped, spans[:1] * len(prefix) + spans)
        return True

    def _normalize_any(self, piece: NormalizedString) -> None:
        spans = piece.all_spans()
        remove_extra = self.remove_extra_whitespaces
        space = SPACE if self.escape_whitespaces else " "
        chars: list[str] = []
        new_spans: list[tuple[int, int]] = []
        is_previous_space = remove_extra  # True also drops the spaces at the start
        for replacement, start, end in self._chunks(piece.text):
            if is_previous_space:
                replacement = replacement.lstrip(" ")
            if replacement:
                span = (spans[start][0], spans[end - 1][1])
                for char in replacement:
                    chars.append(space if char == " " else char)
                    new_spans.append(span)
                is_previous_space = replacement[-1] == " "
            if not remove_extra:
                is_previous_space = False
        if remove_extra:
            while chars and chars[-1] == space:
                chars.pop()
                new_spans.pop()
        if chars and self.add_dummy_prefix:
            if self.treat_whitespace_as_suffix:
                chars.append(space)
                new_spans.append((new_spans[-1][1], new_spans[-1][1]))
            else:
                chars.insert(0, space)
                new_spans.insert(0, new_spans[0])
        piece.set_aligned("".join(chars), new_spans)


# --------------------------------------------------------------------------------------------------------------
# Metaspace: spaces shown as "▁"
# --------------------------------------------------------------------------------------------------------------


def _prepend_scheme(spec: dict) -> str:
    if "prepend_scheme" in spec:
        return spec["prepend_scheme"]
    return "always" if spec.get("add_prefix_space", True) else "never"  # files older than tokenizers 0.14


@register(PRE_TOKENIZERS, "Metaspace")
@dataclass
class Metaspace(PreTokenizer):
    """Spaces become "▁"; a "▁" is put in front (``always``, or ``first`` for the piece at the very start of
    the input); with ``split`` each "▁" begins a new word."""

    replacement: str = SPACE
    prepend_scheme: str = "always"
    split: bool = True

    @classmethod
    def from_dict(cls, spec: dict):
        return cls(spec.get("replacement", SPACE), _prepend_scheme(spec), spec.get("split", True))

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
        return _split_by_matches(piece, matches, "MergedWithNext")

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


@register(DECODERS, "Metaspace")
@dataclass
class MetaspaceDecoder(Decoder):
    """ "▁" back to spaces; in the first token (unless ``prepend_scheme`` is never) they are dropped."""

    replacement: str = SPACE
    prepend_scheme: str = "always"
    split: bool = True

    @classmethod
    def from_dict(cls, spec: dict):
        return cls(spec.get("replacement", SPACE), _prepend_scheme(spec), spec.get("split", True))

    def decode_chain(self, tokens: list[str]) -> list[str]:
        first = "" if self.prepend_scheme != "never" else " "
        return [token.replace(self.replacement, first if i == 0 else " ") for i, token in enumerate(tokens)]


# --------------------------------------------------------------------------------------------------------------
# Decoders of sentencepiece-style tokenizer.json files (Llama: Replace, ByteFallback, Fuse, Strip)
# --------------------------------------------------------------------------------------------------------------


def _bytes_to_tokens(buffer: bytearray) -> list[str]:
    """Collected ``<0xXX>`` bytes as one string, or one "�" per byte when they are not valid UTF-8."""
    try:
        return [buffer.decode("utf-8")]
    except UnicodeDecodeError:
        return ["\ufffd"] * len(buffer)


def _byte_value(token: str) -> int | None:
    if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        try:
            return int(token[3:5], 16)
        except ValueError:
            return None
    return None


@register(DECODERS, "ByteFallback")
@dataclass
class ByteFallback(Decoder):
    def decode_chain(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        buffer = bytearray()
        for token in tokens:
            byte = _byte_value(token)
            if byte is not None:
                buffer.append(byte)
                continue
            if buffer:
                out.extend(_bytes_to_tokens(buffer))
                buffer.clear()
            out.append(token)
        if buffer:
            out.extend(_bytes_to_tokens(buffer))
        return out


@register(DECODERS, "Fuse")
@dataclass
class Fuse(Decoder):
    def decode_chain(self, tokens: list[str]) -> list[str]:
        return ["".join(tokens)]


@register(DECODERS, "Strip")
@dataclass
class StripDecoder(Decoder):
    """Remove up to ``start`` leading and ``stop`` trailing ``content`` characters from every token."""

    content: str = " "
    start: int = 0
    stop: int = 0

    def decode_chain(self, tokens: list[str]) -> list[str]:
        out = []
        for token in tokens:
            begin, end = 0, len(token)
            while begin < min(self.start, len(token)) and token[begin] == self.content:
                begin += 1
            while len(token) - end < self.stop and end > begin and token[end - 1] == self.content:
                end -= 1
            out.append(token[begin:end])
        return out


@register(DECODERS, "Replace")
@dataclass
class ReplaceDecoder(Decoder):
    pattern: dict = field(default_factory=dict)
    content: str = ""

    def decode_chain(self, tokens: list[str]) -> list[str]:
        compiled = self.__dict__.get("_compiled") or self.__dict__.setdefault(
            "_compiled", compile_pattern(self.pattern)
        )
        return [compiled.sub(self.content.replace("\\", "\\\\"), token) for token in tokens]


@dataclass
class SentencePieceDecoder(Decoder):
    """sentencepiece's ``DecodeIds``: control pieces vanish, the unknown piece reads ``unk_surface``, byte pieces
    join into UTF-8, "▁" is a space and the dummy-prefix space of the first piece is dropped."""

    control: frozenset = frozenset()
    unk_piece: str = "<unk>"
    unk_surface: str = " \u2047 "
    add_dummy_prefix: bool = True
    treat_whitespace_as_suffix: bool = False

    def to_dict(self) -> dict:
        return SentencePieceNormalizer.to_dict(self)  # type: ignore[arg-type]

    def decode_chain(self, tokens: list[str]) -> list[str]:
        pieces = ByteFallback().decode_chain([t for t in tokens if t not in self.control])
        out = []
        for piece in pieces:
            if piece == self.unk_piece:
                out.append(self.unk_surface)
                continue
            text = piece.replace(SPACE, " ")
            # The dummy-prefix space goes from every piece until one leaves some text (a lone "▁" leaves none).
            if not any(out) and self.add_dummy_prefix and not self.treat_whitespace_as_suffix:
                text = text[1:] if text.startswith(" ") else text
            out.append(text)
        if out and self.add_dummy_prefix and self.treat_whitespace_as_suffix and out[-1].endswith(" "):
            out[-1] = out[-1][:-1]
        return out


# --------------------------------------------------------------------------------------------------------------
# Pipelines built from a .model file
# --------------------------------------------------------------------------------------------------------------


def _as_model(model: SentencePieceModel | str | Path) -> SentencePieceModel:
    return model if isinstance(model, SentencePieceModel) else load_model_file(model)


def sentencepiece_pipeline(model: SentencePieceModel | str | Path) -> Tokenizer:
    """A pipeline that tokenizes and decodes exactly as ``sentencepiece.SentencePieceProcessor`` does."""
    model = _as_model(model)
    spec, normalizer_spec = model.trainer_spec, model.normalizer_spec
    pieces = model.pieces
    vocab = [(p.piece, p.score) for p in pieces]
    # Only normal, user-defined and unused pieces can be read from the text (unused ones are skipped).
    matchable = [i for i, p in enumerate(pieces) if p.type in (NORMAL, USER_DEFINED)]
    unk_id = spec.unk_id if 0 <= spec.unk_id < len(pieces) else None
    byte_fallback = spec.byte_fallback and any(p.type == BYTE for p in pieces)
    if spec.model_type == UNIGRAM:
        normal_scores = [p.score for p in pieces if p.type == NORMAL]
        top = max(normal_scores, default=0.0)
        # A user-defined piece always wins: sentencepiece scores it length * best score - 0.1.
        user = {i: len(pieces[i].piece) * top - 0.1 for i, p in enumerate(pieces) if p.type == USER_DEFINED}
        segmenter = Unigram(vocab, unk_id, byte_fallback, matchable, min(normal_scores, default=0.0), user)
    elif spec.model_type == BPE:
        unused = [i for i, p in enumerate(pieces) if p.type == UNUSED]
        segmenter = SentencePieceBPE(vocab, unk_id, byte_fallback, matchable + unused, unused)
    else:
        raise TokenizerFileError(
            f"sentencepiece model_type {spec.model_type} (WORD/CHAR) is not supported; only UNIGRAM and BPE are"
        )
    normalizer = SentencePieceNormalizer(
        Charsmap.load(normalizer_spec.precompiled_charsmap) if normalizer_spec.precompiled_charsmap else None,
        normalizer_spec.add_dummy_prefix,
        normalizer_spec.remove_extra_whitespaces,
        normalizer_spec.escape_whitespaces,
        spec.treat_whitespace_as_suffix,
    )
    # Cutting the normalized text into "▁word" pieces lets the model cache words; it changes nothing as long
    # as no piece has a "▁" inside (sentencepiece's default split_by_whitespace training guarantees it).
    split = normalizer_spec.escape_whitespaces and not any(
        SPACE in (p.piece[:-1] if spec.treat_whitespace_as_suffix else p.piece[1:])
        for p in pieces
        if p.type in (NORMAL, USER_DEFINED)
    )
    pre_tokenizer = None
    if split:
        behavior = "MergedWithPrevious" if spec.treat_whitespace_as_suffix else "MergedWithNext"
        pre_tokenizer = _SpaceSplit(behavior)
    decoder = SentencePieceDecoder(
        frozenset(p.piece for p in pieces if p.type == CONTROL),
        pieces[unk_id].piece if unk_id is not None else "<unk>",
        spec.unk_surface,
        normalizer_spec.add_dummy_prefix,
        spec.treat_whitespace_as_suffix,
    )
    return Tokenizer(segmenter, normalizer, pre_tokenizer, None, decoder)


@dataclass
class _SpaceSplit(PreTokenizer):
    behavior: str = "MergedWithNext"

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        text = piece.text
        matches = [(i, i + 1) for i, char in enumerate(text) if char == SPACE] if SPACE in text else []
        return _split_by_matches(piece, matches, self.behavior)


def t5_pipeline(
    model: SentencePieceModel | str | Path, extra_ids: int = 100, eos_token: str = "</s>"
) -> Tokenizer:
    """The pipeline transformers 5 builds for ``T5Tokenizer`` from ``spiece.model``."""
    model = _as_model(model)
    sentinels = [f"<extra_id_{i}>" for i in range(extra_ids - 1, -1, -1)]  # appended last-first, as T5 does
    vocab = [(p.piece, p.score) for p in model.pieces] + [(s, 0.0) for s in sentinels]
    charsmap = model.normalizer_spec.precompiled_charsmap
    metaspace = {"replacement": SPACE, "prepend_scheme": "always", "split": True}
    tokenizer = Tokenizer(
        Unigram(vocab, model.trainer_spec.unk_id, byte_fallback=False),
        normalizer=Precompiled(base64.b64encode(charsmap).decode("ascii")) if charsmap else None,
        pre_tokenizer=PreTokenizerSequence([WhitespaceSplit(), Metaspace(**metaspace)]),
        decoder=MetaspaceDecoder(**metaspace),
    )
    tokenizer.add_special_tokens([p.piece for p in model.pieces if p.type in (CONTROL, UNKNOWN)] + sentinels)
    eos_id = tokenizer.token_to_id(eos_token)
    tokenizer.post_processor = TemplateProcessing(
        f"$A:0 {eos_token}:0", f"$A:0 {eos_token}:0 $B:0 {eos_token}:0", [(eos_token, eos_id)]
    )
    return tokenizer


# --------------------------------------------------------------------------------------------------------------
# User-facing tokenizers
# --------------------------------------------------------------------------------------------------------------


class SentencePieceTokenizer(PreTrainedTokenizer):
    """Any sentencepiece ``.model``, tokenized exactly as the ``sentencepiece`` library does.

    ``encode(text)`` gives the ids of ``SentencePieceProcessor.encode(text)`` (no bos/eos; special-token text
    such as ``"</s>"`` is read as plain text, as sentencepiece does) and ``decode`` its ``decode``.
    """

    tokenizer_class_name = "SentencePieceTokenizer"
    model_input_names = ["input_ids", "attention_mask"]

    @classmethod
    def from_model_file(cls, path: str | Path, **config) -> SentencePieceTokenizer:
        model = load_model_file(path)
        spec = model.trainer_spec
        for name in ("unk", "bos", "eos", "pad"):
            index = getattr(spec, f"{name}_id")
            if 0 <= index < len(model.pieces):
                config.setdefault(f"{name}_token", model.pieces[index].piece)
        config.setdefault("split_special_tokens", True)
        config.setdefault("name_or_path", str(path))
        return cls(sentencepiece_pipeline(model), **config)

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        for name in ("tokenizer.model", "spiece.model", "sentencepiece.bpe.model"):
            if (Path(folder) / name).is_file():
                return sentencepiece_pipeline(Path(folder) / name)
        raise FileNotFoundError(f"no sentencepiece model (tokenizer.model or spiece.model) in {folder}")

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids


class T5Tokenizer(PreTrainedTokenizer):
    """T5's tokenizer as transformers 5 builds it: from tokenizer.json when present, else from spiece.model
    (pad 0, eos 1, unk 2 in T5's own files; ``extra_ids`` sentinels ``<extra_id_N>`` after the vocabulary,
    ``</s>`` appended to every sequence)."""

    tokenizer_class_name = "T5Tokenizer"
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, backend: Tokenizer, /, **config):
        config.setdefault("eos_token", "</s>")
        config.setdefault("unk_token", "<unk>")
        config.setdefault("pad_token", "<pad>")
        extra_ids = int(config.setdefault("extra_ids", 100))
        if not any(config.get(key) for key in ("extra_special_tokens", "additional_special_tokens")):
            config["extra_special_tokens"] = [f"<extra_id_{i}>" for i in range(extra_ids)]
        super().__init__(backend, **config)

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        folder = Path(folder)
        if (folder / "tokenizer.json").is_file():
            return Tokenizer.from_file(folder / "tokenizer.json")
        vocab_file = folder / "spiece.model"
        if not vocab_file.is_file():
            raise FileNotFoundError(
                f"{folder} has neither tokenizer.json nor spiece.model: a T5 tokenizer needs one of them "
                "(save one with save_pretrained, or copy the model's spiece.model there)"
            )
        eos = config.get("eos_token", "</s>")
        eos = eos["content"] if isinstance(eos, dict) else str(eos)
        return t5_pipeline(vocab_file, int(config.get("extra_ids", 100)), eos)

    def get_sentinel_tokens(self) -> list[str]:
        return [t for t in self._extra_special if t.startswith("<extra_id_")]

    def get_sentinel_token_ids(self) -> list[int]:
        return [self.backend.token_to_id(t) for t in self.get_sentinel_tokens()]
