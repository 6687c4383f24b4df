"""GPT-2's byte-level alphabet: every byte written as one printable character (space -> ``Ġ``, newline -> ``Ċ``).

Byte-level BPE works on the UTF-8 bytes of a text, so it never meets an unknown character; writing each byte as
a visible character keeps its vocabulary and merges plain strings. The ``ByteLevel`` stages (pre-tokenizer,
post-processor, decoder) live with the other stages of their kind and share these tables.
"""

from __future__ import annotations

from dataclasses import dataclass


def bytes_to_unicode() -> list[str]:
    """GPT-2's table: byte ``b`` is written as ``table[b]``.

    Printable Latin-1 characters stand for themselves; the other 68 bytes (controls, space, ...) take the
    characters from U+0100 on, in byte order. Every byte thus has a visible, non-space stand-in.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {char: b for b, char in enumerate(BYTE_TO_CHAR)}
# str.translate tables. Encoding: a text decoded as Latin-1 has one character per byte, with the byte's value.
LATIN1_TO_BYTE_CHAR = {b: char for b, char in enumerate(BYTE_TO_CHAR)}
# Decoding: byte stand-ins -> Latin-1 characters; any other character <= U+00FF -> U+FFFF, so that a token that
# is not byte-level makes the Latin-1 encode fail and takes the slow path.
BYTE_CHAR_TO_LATIN1 = {ord(char): b for b, char in enumerate(BYTE_TO_CHAR)}
BYTE_CHAR_TO_LATIN1.update({c: 0xFFFF for c in range(256) if c not in BYTE_CHAR_TO_LATIN1})


def to_byte_chars(text: str) -> str:
    """The byte-level form of ``text``: one stand-in character per UTF-8 byte."""
    return text.encode("utf-8").decode("latin-1").translate(LATIN1_TO_BYTE_CHAR)


def utf8_length(char: str) -> int:
    code = ord(char)
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


@dataclass
class ByteLevelOptions:
    """The fields tokenizer.json gives each of the three ``ByteLevel`` stages, whichever of them uses them."""

    add_prefix_space: bool = True
    trim_offsets: bool = True
    use_regex: bool = True
