"""WordPiece, BERT's subword model (``BertTokenizer`` is in ``bert.py``).

WordPiece cuts a word greedily, longest vocabulary match first: "unaffable" -> "un", "##aff", "##able". Pieces
after the first carry the ``##`` prefix. If any position of the word has no match, the *whole* word becomes
``[UNK]`` (not just the failing part), and so does any word longer than ``max_input_chars_per_word`` characters.
"""

from __future__ import annotations

from pathlib import Path

from .models import VocabModel
from .stages import MODELS, TokenizerFileError, register


@register(MODELS, "WordPiece")
class WordPiece(VocabModel):
    def __init__(
        self,
        vocab: dict[str, int],
        unk_token: str = "[UNK]",
        continuing_subword_prefix: str = "##",
        max_input_chars_per_word: int = 100,
    ):
        self._set_vocab(dict(vocab))
        self.unk_token = unk_token
        self.continuing_subword_prefix = continuing_subword_prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        # No vocabulary entry is longer than this, so longer candidates need not be tried.
        self._longest = max((len(token) for token in self.vocab), default=0)
        self._start_cache()

    @classmethod
    def from_dict(cls, spec: dict) -> WordPiece:
        vocab = spec.get("vocab")
        if not isinstance(vocab, dict):
            raise TokenizerFileError(
                "tokenizer.json: a WordPiece model needs a 'vocab' object mapping tokens to ids"
            )
        return cls(
            vocab,
            spec.get("unk_token", "[UNK]"),
            spec.get("continuing_subword_prefix", "##"),
            spec.get("max_input_chars_per_word", 100),
        )

    @classmethod
    def from_vocab_file(cls, path: str | Path, **kwargs) -> WordPiece:
        return cls(load_vocab_file(path), **kwargs)

    def to_dict(self) -> dict:
        return {
            "type": "WordPiece",
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.continuing_subword_prefix,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "vocab": self.vocab,
        }

    def _unknown(self, word: str) -> tuple[tuple[int, str, int, int], ...]:
        unk_id = self.vocab.get(self.unk_token)
        if unk_id is None:
            raise TokenizerFileError(
                f"WordPiece: the unknown token {self.unk_token!r} is not in the vocabulary, so {word[:30]!r} "
                "cannot be encoded; add it to the vocabulary or fix 'unk_token'"
            )
        return ((unk_id, self.unk_token, 0, len(word)),)

    def _tokenize(self, word: str) -> tuple[tuple[int, str, int, int], ...]:
        if not word:
            return ()
        if len(word) > self.max_input_chars_per_word:
            return self._unknown(word)
        vocab, prefix, longest = self.vocab, self.continuing_subword_prefix, self._longest
        pieces = []
        start, length = 0, len(word)
        while start < length:
            end = min(length, start + longest)
            while end > start:
                candidate = word[start:end] if start == 0 else prefix + word[start:end]
                index = vocab.get(candidate)
                if index is not None:
                    pieces.append((index, candidate, start, end))
                    break
                end -= 1
            else:
                return self._unknown(word)  # one position without a match makes the whole word unknown
            start = end
        return tuple(pieces)


def load_vocab_file(path: str | Path) -> dict[str, int]:
    """vocab.txt: one token per line, the id is the line number (a repeated token keeps its last line)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return {line.rstrip("\n"): index for index, line in enumerate(handle)}
    except FileNotFoundError:
        raise FileNotFoundError(f"vocabulary file {path} does not exist") from None
