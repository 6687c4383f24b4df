"""``BatchEncoding``: what a tokenizer call returns, a dict of model inputs with the per-item encodings."""

from __future__ import annotations

from .encoding import Encoding


def _holds_no_numbers(value: list | tuple) -> bool:
    """Whether a (nested) list has no number in it: ``[]``, ``[[]]``, ``[[], []]``..."""
    if not value:
        return True
    return isinstance(value[0], (list, tuple)) and all(_holds_no_numbers(row) for row in value)


class BatchEncoding(dict):
    """What a tokenizer call returns: a dict of model inputs, with attribute access and the per-item encodings."""

    def __init__(self, data: dict | None = None, encodings: list[Encoding] | None = None, tensor_type=None):
        super().__init__(data or {})
        self._encodings = encodings
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {name!r}") from None

    def __getitem__(self, key):
        if isinstance(key, int):  # like transformers: an int picks one item's Encoding
            if self._encodings is None:
                raise KeyError(
                    "this BatchEncoding has no per-item encodings; index it with a key like 'input_ids'"
                )
            return self._encodings[key]
        return super().__getitem__(key)

    def __getstate__(self):
        return {"data": dict(self), "encodings": self._encodings}

    def __setstate__(self, state):
        self.update(state["data"])
        self._encodings = state["encodings"]

    @property
    def encodings(self) -> list[Encoding] | None:
        return self._encodings

    def _encoding(self, batch_index: int) -> Encoding:
        if self._encodings is None:
            raise ValueError("word_ids/tokens need the encodings, which this BatchEncoding does not have")
        return self._encodings[batch_index]

    def tokens(self, batch_index: int = 0) -> list[str]:
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).sequence_ids

    def convert_to_tensors(self, tensor_type: str | None) -> BatchEncoding:
        """Turn every list value into a ``torch`` (``'pt'``) or ``numpy`` (``'np'``) array."""
        if tensor_type is None:
            return self
        tensor_type = str(getattr(tensor_type, "value", tensor_type))
        if tensor_type not in ("pt", "np"):
            raise ValueError(
                f"return_tensors={tensor_type!r} is not supported: use 'pt' (torch), 'np' or None"
            )
        for key, value in self.items():
            if not isinstance(value, (list, tuple)):
                continue
            rows = value if value and isinstance(value[0], (list, tuple)) else None
            if rows is not None:
                lengths = {len(row) for row in rows}
                if len(lengths) > 1:
                    raise ValueError(
                        f"return_tensors={tensor_type!r} needs equal lengths, but '{key}' has rows of lengths "
                        f"{min(lengths)} to {max(lengths)}: pass padding=True (or padding='max_length' with "
                        "truncation=True) to make them equal"
                    )
            # No number at all (empty texts, or the empty first window of an overflow): still integers, as
            # transformers, where torch and numpy would default to floats.
            empty = _holds_no_numbers(value)
            if tensor_type == "pt":
                import torch

                self[key] = torch.tensor(value, dtype=torch.int64 if empty else None)
            else:
                import numpy as np

                self[key] = np.asarray(value, dtype=np.int64 if empty else None)
        return self

    def to(self, device) -> BatchEncoding:
        """Move every tensor to ``device`` (as ``transformers``: returns the same object)."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self
