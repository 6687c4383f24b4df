"""``Encoding``: the result of encoding one sequence (or pair), as parallel per-token lists."""

from __future__ import annotations

from itertools import chain


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
