"""The BPE model: start from characters, repeatedly join the adjacent pair that ranks first in the merges list.

Byte-level BPE (GPT-2's tokenizer, ``gpt2.py``) never meets an unknown character. Text is cut into words by
GPT-2's regex, each word is turned into its UTF-8 bytes, and each byte is written as one printable character
(space -> ``Ġ``, newline -> ``Ċ``) so that the vocabulary and the merges are plain strings (``byte_level.py``).
BPE then starts from single characters and joins pairs until no listed pair is left::

    "Hello world" -> ["Hello", " world"] -> ["Hello", "Ġworld"] -> ids [15496, 995]

The same ``BPE`` model also serves tokenizers that are not byte-level (SentencePiece-style files with
``byte_fallback``, ``unk_token``, ``continuing_subword_prefix``...), exactly as the ``tokenizers`` library does.
"""

from __future__ import annotations

from itertools import repeat
from pathlib import Path

from .byte_level import utf8_length
from .models import VocabModel
from .stages import MODELS, TokenizerFileError, read_json_object, register


def parse_merges(merges: list) -> tuple[list[tuple[str, str]], bool]:
    """Merges as ``(left, right)`` pairs, and whether they were written as ``"left right"`` strings."""
    as_strings = bool(merges) and isinstance(merges[0], str)
    pairs = []
    for rank, merge in enumerate(merges):
        if isinstance(merge, str):
            parts = merge.split(" ")
        elif isinstance(merge, (list, tuple)):
            parts = list(merge)
        else:
            parts = []
        if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
            raise TokenizerFileError(
                f"BPE merge {rank + 1} is {merge!r}: each merge must be 'left right' or ['left', 'right']"
            )
        pairs.append((parts[0], parts[1]))
    return pairs, as_strings


@register(MODELS, "BPE")
class BPE(VocabModel):
    """Byte-pair encoding: start from characters, join the best-ranked adjacent pair until none is left.

    Tokens of a word are cached (the same words come back all the time in real text). Offsets are character
    offsets into the word; a ``byte_fallback`` token covers the whole character its byte belongs to.
    """

    def __init__(
        self,
        vocab: dict[str, int],
        merges: list,
        *,
        dropout: float | None = None,
        unk_token: str | None = None,
        continuing_subword_prefix: str | None = None,
        end_of_word_suffix: str | None = None,
        fuse_unk: bool = False,
        byte_fallback: bool = False,
        ignore_merges: bool = False,
    ):
        if dropout:
            raise NotImplementedError(
                f"BPE dropout={dropout} is not supported (it makes encoding random); set 'dropout' to null"
            )
        self._set_vocab(dict(vocab))
        self.merges, self._merges_as_strings = parse_merges(list(merges))
        self.dropout = dropout
        self.unk_token = unk_token
        self.continuing_subword_prefix = continuing_subword_prefix
        self.end_of_word_suffix = end_of_word_suffix
        self.fuse_unk = fuse_unk
        self.byte_fallback = byte_fallback
        self.ignore_merges = ignore_merges
        # pair -> rank and pair -> joined token. A pair listed twice keeps its last rank, like tokenizers.
        self._ranks: dict[tuple[str, str], int] = {}
        self._joined: dict[tuple[str, str], str] = {}
        cut = len(continuing_subword_prefix or "")  # the right part loses its prefix when joined
        for rank, (left, right) in enumerate(self.merges):
            joined = left + right[cut:]
            for token in (left, right, joined):
                if token not in self.vocab:
                    raise TokenizerFileError(
                        f"BPE merge {rank + 1} ({left!r} {right!r}) uses {token!r}, which is not in the vocabulary"
                    )
            self._ranks[(left, right)] = rank
            self._joined[(left, right)] = joined
        self._start_cache()

    @classmethod
    def from_dict(cls, spec: dict) -> BPE:
        vocab, merges = spec.get("vocab"), spec.get("merges")
        if not isinstance(vocab, dict) or not isinstance(merges, list):
            raise TokenizerFileError(
                "tokenizer.json: a BPE model needs a 'vocab' object (token -> id) and a 'merges' list"
            )
        options = (
            "dropout",
            "unk_token",
            "continuing_subword_prefix",
            "end_of_word_suffix",
            "fuse_unk",
            "byte_fallback",
            "ignore_merges",
        )
        return cls(vocab, merges, **{key: spec[key] for key in options if key in spec})

    def to_dict(self) -> dict:
        if self._merges_as_strings:
            merges = [f"{left} {right}" for left, right in self.merges]
        else:
            merges = [[left, right] for left, right in self.merges]
        return {
            "type": "BPE",
            "dropout": self.dropout,
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.continuing_subword_prefix,
            "end_of_word_suffix": self.end_of_word_suffix,
            "fuse_unk": self.fuse_unk,
            "byte_fallback": self.byte_fallback,
            "ignore_merges": self.ignore_merges,
            "vocab": self.vocab,
            "merges": merges,
        }

    @classmethod
    def from_files(cls, vocab_file: str | Path, merges_file: str | Path, **options) -> BPE:
        """GPT-2's legacy files: ``vocab.json`` and ``merges.txt``."""
        return cls(read_json_object(Path(vocab_file)), read_merges_file(merges_file), **options)

    # -- tokenization -------------------------------------------------------------------------------------------

    def _tokenize(self, word: str) -> tuple[tuple[int, str, int, int], ...]:
        if not word:
            return ()
        vocab = self.vocab
        if self.ignore_merges and word in vocab:  # Llama-3 style: a known word is taken whole
            return ((vocab[word], word, 0, len(word)),)
        simple = not (self.continuing_subword_prefix or self.end_of_word_suffix)
        if simple and all(map(vocab.__contains__, word)):
            # The common case (always true for byte-level text): one symbol per character, offsets follow lengths
            symbols = self._merge(list(word), None)[0]
            tokens, start = [], 0
            for symbol in symbols:
                end = start + len(symbol)
                tokens.append((vocab[symbol], symbol, start, end))
                start = end
            return tuple(tokens)
        # General case. Like tokenizers, offsets add up the UTF-8 sizes of the symbols kept (so a dropped unknown
        # character shifts the offsets after it) and are then read as characters of the word.
        symbols, sizes = self._merge(*self._initial_symbols(word))
        char_of_byte = [i for i, char in enumerate(word) for _ in range(utf8_length(char))]
        last = len(char_of_byte) - 1
        tokens, start = [], 0
        for symbol, size in zip(symbols, sizes):
            end = start + size
            span = (char_of_byte[min(start, last)], char_of_byte[min(end - 1, last)] + 1)
            tokens.append((vocab[symbol], symbol, *span))
            start = end
        return tuple(tokens)

    def _initial_symbols(self, word: str) -> tuple[list[str], list[int]]:
        """One symbol per character (with prefix/suffix) and its UTF-8 size, as tokenizers' ``merge_word``.

        A character missing from the vocabulary becomes its ``<0xNN>`` byte tokens (``byte_fallback``), else
        the unknown token (consecutive ones fused into one with ``fuse_unk``), else it is dropped.
        """
        vocab, prefix, suffix = self.vocab, self.continuing_subword_prefix, self.end_of_word_suffix
        symbols: list[str] = []
        sizes: list[int] = []
        unknown = 0  # UTF-8 size of a pending unknown token (it may still grow), 0 if none
        last = len(word) - 1
        for i, char in enumerate(word):
            size = utf8_length(char)
            symbol = char
            if i > 0 and prefix:
                symbol = prefix + symbol
            if i == last and suffix:
                symbol = symbol + suffix
            if symbol in vocab:
                if unknown:
                    symbols.append(self.unk_token)
                    sizes.append(unknown)
                    unknown = 0
                symbols.append(symbol)
                sizes.append(size)
                continue
            if self.byte_fallback:
                byte_tokens = [f"<0x{b:02X}>" for b in symbol.encode("utf-8")]
                if all(t in vocab for t in byte_tokens):
                    # (like tokenizers, a pending unknown token is not flushed first)
                    symbols.extend(byte_tokens)
                    sizes.extend([1] * len(byte_tokens))
                    continue
            if self.unk_token is not None:
                if self.unk_token not in vocab:
                    raise TokenizerFileError(
                        f"BPE: the unknown token {self.unk_token!r} is not in the vocabulary, so {char!r} cannot "
                        "be encoded; add it to the vocabulary or fix 'unk_token'"
                    )
                if unknown and not self.fuse_unk:
                    symbols.append(self.unk_token)
                    sizes.append(unknown)
                    unknown = 0
                unknown += size
        if unknown:
            symbols.append(self.unk_token)
            sizes.append(unknown)
        return symbols, sizes

    def _merge(self, symbols: list[str], sizes: list[int] | None):
        """Join the best-ranked adjacent pair, every occurrence left to right, until no pair has a rank.

        ``sizes`` (one per symbol) add up along the joins; ``None`` when the symbols' lengths are enough.
        """
        get_rank, joined = self._ranks.get, self._joined
        missing = len(self.merges)
        # ranks[i] is the rank of the pair (symbols[i], symbols[i + 1]). A join changes only the two pairs
        # around it, so they are the only ones looked up again (instead of every pair after every join:
        # 1.7x faster merging on BBC news words). The leftmost best pair goes first, which joins every occurrence of a
        # pair left to right as tokenizers does.
        ranks = list(map(get_rank, zip(symbols, symbols[1:]), repeat(missing)))
        while ranks:
            rank = min(ranks)
            if rank == missing:
                break
            i = ranks.index(rank)
            pair = (symbols[i], symbols[i + 1])
            symbols[i : i + 2] = [joined[pair]]
            if sizes is not None:
                sizes[i : i + 2] = [sizes[i] + sizes[i + 1]]
            del ranks[i]
            if i > 0:
                ranks[i - 1] = get_rank((symbols[i - 1], symbols[i]), missing)
            if i < len(ranks):
                ranks[i] = get_rank((symbols[i], symbols[i + 1]), missing)
        return symbols, sizes


def read_merges_file(path: str | Path) -> list[tuple[str, str]]:
    """merges.txt: an optional ``#version`` line, then one ``left right`` pair per line (rank = line order)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except FileNotFoundError:
        raise FileNotFoundError(f"merges file {path} does not exist") from None
    merges = []
    for number, line in enumerate(lines, 1):
        if line.startswith("#version") or not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise TokenizerFileError(f"{path}, line {number}: expected 'left right', got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges
