"""Character classes as the Rust ``tokenizers`` code defines them (not always what Python's str methods say)."""

from __future__ import annotations

import re

SPACE = "\u2581"  # "▁": sentencepiece's visible space, written by Metaspace and read back by its decoder


# Rust's char::is_whitespace (the Unicode White_Space property). Python's str.isspace() also accepts \x1c-\x1f.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
WHITESPACE_SET = frozenset(WHITESPACE)
WHITESPACE_CLASS = re.escape(WHITESPACE)
# BERT's punctuation is every ASCII symbol (so ``$`` and ``+`` count) and any Unicode P* character.
ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


# The CJK ideograph blocks of tokenizers' BertNormalizer (it differs slightly from the old Python code, and from
# the table of transformers' streamers).
CJK_BLOCKS = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_chinese_char(char: str) -> bool:
    code = ord(char)
    return any(first <= code <= last for first, last in CJK_BLOCKS)


def unicode_regex():
    """The ``regex`` module (Unicode classes such as ``\\p{L}``), imported on first use: it is slow to import."""
    import regex

    return regex
