"""Decoders: tokens back to text (WordPiece's, ByteLevel, Metaspace, and the sentencepiece-style chain of Llama
files: Replace, ByteFallback, Fuse, Strip).

Every decoder also says which bytes a token stands for on its own (``token_bytes``): a byte-level character
string, a ``<0x41>`` byte piece. Text that is matched against generated tokens (stop strings) asks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .byte_level import BYTE_CHAR_TO_LATIN1, ByteLevelOptions
from .chars import SPACE
from .pre_tokenizers import MetaspaceOptions
from .stages import DECODERS, Component, PatternReplacement, StageSequence, TokenizerFileError, register


class Decoder(Component):
    def decode_chain(self, tokens: list[str]) -> list[str]:
        raise NotImplementedError

    def decode(self, tokens: list[str]) -> str:
        return "".join(self.decode_chain(list(tokens)))

    def token_bytes(self, token: str) -> bytes | None:
        """The bytes ``token`` stands for when this decoder reads it as bytes (a byte-level string, a
        ``<0x41>`` piece), or ``None`` when it is text, whose meaning depends on the tokens around it."""
        return None


_CLEANUPS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)
_CLEANUPS_KEEPING_DO_NOT = tuple(pair for pair in _CLEANUPS if pair[0] != " do not")


def clean_up_spaces(text: str, contract_do_not: bool = True) -> str:
    """Glue punctuation and contractions back on. The WordPiece decoder of tokenizers applies it to every token;
    transformers' ``clean_up_tokenization`` is the same without turning " do not" into " don't"."""
    for old, new in _CLEANUPS if contract_do_not else _CLEANUPS_KEEPING_DO_NOT:
        text = text.replace(old, new)
    return text


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
            out.append(clean_up_spaces(token) if self.cleanup else token)
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

    def token_bytes(self, token: str) -> bytes | None:
        return next((b for b in map(lambda d: d.token_bytes(token), self.decoders) if b is not None), None)


@register(DECODERS, "ByteLevel")
@dataclass
class ByteLevelDecoder(ByteLevelOptions, Decoder):
    """Byte characters back to bytes, bytes back to text (invalid UTF-8 becomes U+FFFD).

    A token that is not made of byte characters (an added token like ``"<|im_start|>"`` is, but not one with
    ``"😀"`` in it) contributes its own UTF-8 bytes.
    """

    def decode_chain(self, tokens: list[str]) -> list[str]:
        try:
            data = "".join(tokens).translate(BYTE_CHAR_TO_LATIN1).encode("latin-1")
        except UnicodeEncodeError:  # some token is not byte-level: convert token by token
            data = b"".join(self.token_bytes(token) for token in tokens)
        return [data.decode("utf-8", errors="replace")]

    def token_bytes(self, token: str) -> bytes:
        try:
            return token.translate(BYTE_CHAR_TO_LATIN1).encode("latin-1")
        except UnicodeEncodeError:  # not made of byte characters: its own UTF-8 bytes
            return token.encode("utf-8")


@register(DECODERS, "Metaspace")
@dataclass
class MetaspaceDecoder(MetaspaceOptions, Decoder):
    """ "▁" back to spaces; in the first token (unless ``prepend_scheme`` is never) they are dropped."""

    def decode_chain(self, tokens: list[str]) -> list[str]:
        first = "" if self.prepend_scheme != "never" else " "
        return [token.replace(self.replacement, first if i == 0 else " ") for i, token in enumerate(tokens)]


def _bytes_to_tokens(buffer: bytearray) -> list[str]:
    """Collected ``<0xXX>`` bytes as one string, or one "�" per byte when they are not valid UTF-8."""
    try:
        return [buffer.decode("utf-8")]
    except UnicodeDecodeError:
        return ["\ufffd"] * len(buffer)


def _byte_value(token: str) -> int | None:
    """The byte of a ``<0xNN>`` byte-fallback piece, else None."""
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

    def token_bytes(self, token: str) -> bytes | None:
        return _piece_bytes(token)


def _piece_bytes(token: str) -> bytes | None:
    byte = _byte_value(token)
    return None if byte is None else bytes((byte,))


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
class ReplaceDecoder(PatternReplacement, Decoder):
    def decode_chain(self, tokens: list[str]) -> list[str]:
        compiled = self.compiled
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
        raise TokenizerFileError(
            "a tokenizer built from a sentencepiece .model has no tokenizer.json form; keep the .model file"
        )

    def token_bytes(self, token: str) -> bytes | None:
        return _piece_bytes(token)

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
