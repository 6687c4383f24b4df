"""Added tokens: matched whole in the text before anything else runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .chars import WHITESPACE_SET
from .models import Model
from .normalized import NormalizedString
from .normalizers import Normalizer


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
        self.normalizer: Normalizer | None = None  # set with use_normalizer
        self._display: dict[int, str] = {}  # id -> token string shown for it
        self._matchers = None  # built lazily: (raw regex, raw table, normalized regex, normalized table)

    def use_normalizer(self, normalizer: Normalizer | None) -> None:
        """Match normalized tokens as ``normalizer`` writes them (the pipeline's own normalizer)."""
        self.normalizer = normalizer
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
            if token.normalized and self.normalizer is not None:
                shown = self.normalizer.normalize_str(shown)
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
                while start > position and text[start - 1] in WHITESPACE_SET:
                    start -= 1
            if token.rstrip:
                while end < len(text) and text[end] in WHITESPACE_SET:
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


def token_text(value, default: str | None = None) -> str | None:
    """The text of a token as config files write it: a string, an AddedToken or a ``{"content": ...}`` dict."""
    if value is None:
        return default
    return value["content"] if isinstance(value, dict) else str(value)
