"""When a row stops: an end-of-sequence token, or text ending in a stop string (``stop_strings=`` with
``tokenizer=``, as transformers).

A stop string matches when it occurs in the row's text (prompt included) and that occurrence ends inside the
last token: it may span several tokens and overhang either end ("st" + "opera" stops at "stop"), but a string
that ended earlier and was followed by more tokens does not match again. Only the last ``len(longest string)``
tokens are looked at, as transformers does. Byte-level vocabularies (GPT-2's) are matched on bytes, so a stop
string may end inside a multi-byte character's token.
"""

from __future__ import annotations

import json
import weakref

import torch

# Token texts per tokenizer: building them costs 40-80 ms for a 50k vocabulary; generate is called repeatedly.
_TOKEN_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BYTE_CHARS: dict[int, int] | None = None
_PREFIX = "abcdef"  # transformers' trick: decode after a known prefix so word-start markers become spaces


class StopConditions:
    """``done(ids, token)``: which rows stopped with the token just written (``ids`` = rows so far, token last)."""

    def __init__(self, eos: torch.Tensor | None, stop_strings: StopStrings | None):
        self.eos, self.stop_strings = eos, stop_strings
        # One eos id (the usual case) is a single comparison instead of isin's sort-and-search.
        self.single_eos = int(eos[0]) if eos is not None and len(eos) == 1 else None

    def done(self, ids: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        if self.single_eos is not None:
            done = token == self.single_eos
        elif self.eos is not None:
            done = torch.isin(token, self.eos)
        else:
            done = torch.zeros_like(token, dtype=torch.bool)
        if self.stop_strings is not None:
            done |= self.stop_strings(ids)
        return done


class StopStrings:
    """Rows whose text ends, inside the last token, with one of ``strings`` (see the module docstring)."""

    def __init__(self, strings: str | list[str], tokenizer):
        strings = [strings] if isinstance(strings, str) else list(strings)
        if not strings or not all(isinstance(s, str) and s for s in strings):
            raise ValueError(f"stop_strings must be non-empty strings, got {strings!r}")
        self.texts, byte_level = token_texts(tokenizer)
        self.targets = tuple(s.encode() if byte_level else s for s in strings)
        self.empty = b"" if byte_level else ""
        self.window = max(len(t) for t in self.targets)  # tokens looked at, as transformers

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        rows = ids[:, -self.window :].tolist()
        return torch.tensor([self._ends_with_stop(row) for row in rows], device=ids.device)

    def _ends_with_stop(self, row: list[int]) -> bool:
        texts, vocab = self.texts, len(self.texts)
        pieces = [texts[i] if 0 <= i < vocab else self.empty for i in row]
        text, last = self.empty.join(pieces), len(pieces[-1])
        # An occurrence that ends inside the last token starts at most len(target) - 1 characters before it.
        return last > 0 and any(t in text[max(0, len(text) - last - len(t) + 1) :] for t in self.targets)


def token_texts(tokenizer) -> tuple[list, bool]:
    """Every token id's text and whether texts are bytes, as transformers' ``StopStringCriteria`` sees them:
    bytes when the decoder is byte-level (GPT-2) or has byte fallback (``<0x41>`` tokens), else strings.
    Cached per tokenizer."""
    try:
        return _TOKEN_TEXTS[tokenizer]
    except (KeyError, TypeError):
        pass
    vocab = tokenizer.get_vocab()
    types = _decoder_types(tokenizer)
    mode = "byte_level" if "ByteLevel" in types else "byte_fallback" if "ByteFallback" in types else None
    to_bytes = {"byte_level": _byte_level_bytes, "byte_fallback": _byte_fallback_bytes}.get(mode)
    texts: list = [b"" if mode else ""] * (max(vocab.values()) + 1)
    others = []
    for token, index in vocab.items():
        raw = to_bytes(token) if to_bytes else None
        if raw is None:
            others.append((token, index))
        else:
            texts[index] = raw
    if others:  # the remaining tokens are decoded after a known prefix, as transformers does
        base = tokenizer.convert_ids_to_tokens(tokenizer(_PREFIX, add_special_tokens=False)["input_ids"])
        for token, index in others:
            text = tokenizer.convert_tokens_to_string([*base, token])
            text = text[text.index(_PREFIX) + len(_PREFIX) :]
            texts[index] = text.encode() if mode else text
    try:
        _TOKEN_TEXTS[tokenizer] = texts, mode is not None
    except TypeError:  # not weak-referenceable: no cache
        pass
    return texts, mode is not None


def _byte_level_bytes(token: str) -> bytes | None:
    """GPT-2's byte characters back to bytes; None if some character is not one (an added token)."""
    global _BYTE_CHARS
    if _BYTE_CHARS is None:
        from ..tokenization.bpe import CHAR_TO_BYTE

        # str.translate + latin-1 is ~20x faster than a per-character loop over a 50k vocabulary; characters
        # below 256 that are not byte characters map to U+FFFF so that encoding fails on them.
        _BYTE_CHARS = {c: 0xFFFF for c in range(256)}
        _BYTE_CHARS.update({ord(char): byte for char, byte in CHAR_TO_BYTE.items()})
    try:
        return token.translate(_BYTE_CHARS).encode("latin-1")
    except UnicodeEncodeError:
        return None


def _byte_fallback_bytes(token: str) -> bytes | None:
    hex_digits = "0123456789abcdefABCDEF"
    if (
        len(token) == 6
        and token.startswith("<0x")
        and token.endswith(">")
        and all(c in hex_digits for c in token[3:5])
    ):
        return bytes([int(token[3:5], 16)])
    return None


def _decoder_types(tokenizer) -> set[str]:
    """The component types of the tokenizer's decoder (ours: ``to_dict()``; tokenizers': its JSON state)."""
    backends = (getattr(tokenizer, name, None) for name in ("backend_tokenizer", "backend"))
    decoder = next((b.decoder for b in backends if getattr(b, "decoder", None) is not None), None)
    if decoder is None:
        return set()
    spec = decoder.to_dict() if hasattr(decoder, "to_dict") else None
    if spec is None:
        try:
            spec = json.loads(decoder.__getstate__())
        except (TypeError, ValueError, AttributeError):
            spec = {}
    types = {type(decoder).__name__}

    def collect(node) -> None:
        if isinstance(node, dict):
            types.add(str(node.get("type")))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(spec)
    return types
