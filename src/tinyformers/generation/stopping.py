"""When a row stops: an end-of-sequence token, or text ending in a stop string (``stop_strings=`` with
``tokenizer=``, as transformers).

A stop string matches when it occurs in the row's text (prompt included) and that occurrence ends inside the
last token: it may span several tokens and overhang either end ("st" + "opera" stops at "stop"), but a string
that ended earlier and was followed by more tokens does not match again. Only the last ``len(longest string)``
tokens are looked at, as transformers does. Vocabularies whose decoder reads tokens as bytes (GPT-2's byte-level
one, byte-fallback pieces) are matched on bytes, so a stop string may end inside a multi-byte character's token.
"""

from __future__ import annotations

import weakref

import torch

# Token texts per tokenizer: building them means decoding the whole vocabulary; generate is called repeatedly.
_TOKEN_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
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
    bytes when the tokenizer's decoder reads tokens as bytes (byte-level GPT-2, ``<0x41>`` byte-fallback pieces),
    else strings. Cached per tokenizer."""
    try:
        return _TOKEN_TEXTS[tokenizer]
    except (KeyError, TypeError):
        pass
    vocab = tokenizer.get_vocab()
    decoder = getattr(getattr(tokenizer, "backend", None), "decoder", None)
    token_bytes = getattr(decoder, "token_bytes", None)  # None for a tokenizer of another library: strings
    raw = {index: token_bytes(token) for token, index in vocab.items()} if token_bytes else {}
    as_bytes = any(value is not None for value in raw.values())
    texts: list = [b"" if as_bytes else ""] * (max(vocab.values()) + 1)
    others = []
    for token, index in vocab.items():
        if raw.get(index) is None:
            others.append((token, index))
        else:
            texts[index] = raw[index]
    if others:  # the remaining tokens are decoded after a known prefix, as transformers does
        base = tokenizer.convert_ids_to_tokens(tokenizer(_PREFIX, add_special_tokens=False)["input_ids"])
        for token, index in others:
            text = tokenizer.convert_tokens_to_string([*base, token])
            text = text[text.index(_PREFIX) + len(_PREFIX) :]
            texts[index] = text.encode() if as_bytes else text
    try:
        _TOKEN_TEXTS[tokenizer] = texts, as_bytes
    except TypeError:  # not weak-referenceable: no cache
        pass
    return texts, as_bytes
