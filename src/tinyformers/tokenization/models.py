"""Models: the interface every model implements (``WordPiece``, ``BPE`` and ``Unigram`` live in their own modules)
and the word cache they share."""

from __future__ import annotations

from typing import ClassVar


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
