"""Byte-level BPE (GPT-2's tokenizer): the BPE model, the three ``ByteLevel`` stages and ``GPT2Tokenizer``.

Byte-level BPE never meets an unknown character. Text is cut into words by GPT-2's regex, each word is turned
into its UTF-8 bytes, and each byte is written as one printable character (space -> ``Ġ``, newline -> ``Ċ``)
so that the vocabulary and the merges are plain strings. BPE then starts from single characters and repeatedly
joins the adjacent pair that ranks first in the merges list, until no listed pair is left::

    "Hello world" -> ["Hello", " world"] -> ["Hello", "Ġworld"] -> ids [15496, 995]

Decoding maps the characters back to bytes and the bytes back to UTF-8, so ``decode(encode(text)) == text``.

The same ``BPE`` model also serves tokenizers that are not byte-level (SentencePiece-style files with
``byte_fallback``, ``unk_token``, ``continuing_subword_prefix``...), exactly as the ``tokenizers`` library does.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from .base import PreTrainedTokenizer, _read_json
from .pipeline import (
    DECODERS,
    MODELS,
    POST_PROCESSORS,
    PRE_TOKENIZERS,
    WHITESPACE,
    Decoder,
    Encoding,
    NormalizedString,
    PostProcessor,
    PreTokenizer,
    TemplatePiece,
    TemplateProcessing,
    Tokenizer,
    TokenizerFileError,
    VocabModel,
    _unicode_regex,
    register,
)

# GPT-2's pre-tokenizer regex: contractions, letters, numbers, other symbols (each with one optional leading
# space), then whitespace. "\s+(?!\S)" leaves the last space of a run to the word that follows it.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# --------------------------------------------------------------------------------------------------------------
# Bytes <-> printable characters
# --------------------------------------------------------------------------------------------------------------


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
_LATIN1_TO_BYTE_CHAR = {b: char for b, char in enumerate(BYTE_TO_CHAR)}
# Decoding: byte stand-ins -> Latin-1 characters; any other character <= U+00FF -> U+FFFF, so that a token that
# is not byte-level makes the Latin-1 encode fail and takes the slow path.
_BYTE_CHAR_TO_LATIN1 = {ord(char): b for b, char in enumerate(BYTE_TO_CHAR)}
_BYTE_CHAR_TO_LATIN1.update({c: 0xFFFF for c in range(256) if c not in _BYTE_CHAR_TO_LATIN1})
_SPACE_CHAR = BYTE_TO_CHAR[ord(" ")]  # "Ġ"
_TRIMMED = _SPACE_CHAR + WHITESPACE  # what trim_offsets leaves out of a token's offsets


def to_byte_chars(text: str) -> str:
    """The byte-level form of ``text``: one stand-in character per UTF-8 byte."""
    return text.encode("utf-8").decode("latin-1").translate(_LATIN1_TO_BYTE_CHAR)


def utf8_length(char: str) -> int:
    code = ord(char)
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


_GPT2_REGEX = None


def gpt2_regex():
    global _GPT2_REGEX
    if _GPT2_REGEX is None:
        _GPT2_REGEX = _unicode_regex().compile(GPT2_PATTERN)
    return _GPT2_REGEX


# --------------------------------------------------------------------------------------------------------------
# The BPE model
# --------------------------------------------------------------------------------------------------------------


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
        return cls(_read_json(Path(vocab_file)), read_merges_file(merges_file), **options)

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


# --------------------------------------------------------------------------------------------------------------
# ByteLevel: pre-tokenizer, post-processor and decoder (one tokenizer.json "type", three stages)
# --------------------------------------------------------------------------------------------------------------


@register(PRE_TOKENIZERS, "ByteLevel")
@dataclass
class ByteLevelPreTokenizer(PreTokenizer):
    """Optionally add a leading space, split with GPT-2's regex, then write every word as byte characters.

    ``trim_offsets`` is only stored here: the post-processor is the stage that trims.
    """

    add_prefix_space: bool = True
    trim_offsets: bool = True
    use_regex: bool = True

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        text = piece.text
        if not text:
            return []
        # Like tokenizers, the added space stands for the piece's first character (for offsets).
        prefixed = self.add_prefix_space and text[0] != " "
        if prefixed:
            text = " " + text
        words = gpt2_regex().findall(text) if self.use_regex else [text]
        out = []
        start = 0
        if piece.is_identity and text.isascii():
            # Fast path (most text): one byte per character, so offsets stay the identity and the whole text
            # is mapped at once. Character 0 of ``text`` is at ``base`` in the original.
            mapped, base = text.translate(_LATIN1_TO_BYTE_CHAR), piece.offset - prefixed
            for word in words:
                end = start + len(word)
                out.append(NormalizedString(mapped[start:end], base + start))
                start = end
            if prefixed:
                out[0] = self._byte_word(piece, words[0], 0, True)
            return out
        identity, base = piece.is_identity, piece.offset - prefixed
        for word in words:
            if identity and word.isascii() and (start or not prefixed):  # the same, word by word
                out.append(NormalizedString(word.translate(_LATIN1_TO_BYTE_CHAR), base + start))
            else:
                out.append(self._byte_word(piece, word, start, prefixed))
            start += len(word)
        return out

    @staticmethod
    def _byte_word(piece: NormalizedString, word: str, start: int, prefixed: bool) -> NormalizedString:
        """``word`` (at ``start`` in the possibly prefixed text) in byte characters, each with its char's span."""
        spans: list[tuple[int, int]] = []
        for position, char in enumerate(word, start - prefixed):
            index = max(position, 0)  # the added space (position -1) takes the first character's span
            spans.extend([piece.original_span(index, index + 1)] * utf8_length(char))
        return NormalizedString(to_byte_chars(word), spans[0][0], spans)


def trim_offsets(encoding: Encoding, add_prefix_space: bool) -> None:
    """Leave leading/trailing spaces (``Ġ``) of each token out of its offsets, as tokenizers does.

    A single leading space of the first token is kept when ``add_prefix_space`` put it there.
    """
    offsets = encoding.offsets
    for i, token in enumerate(encoding.tokens):
        leading = len(token) - len(token.lstrip(_TRIMMED))
        trailing = len(token) - len(token.rstrip(_TRIMMED))
        if not (leading or trailing):
            continue
        start, end = offsets[i]
        if leading:
            if (i == 0 or start == 0) and add_prefix_space and leading == 1:
                leading = 0
            start = min(start + leading, end)
        if trailing and end >= trailing:
            end = max(end - trailing, start)
        offsets[i] = (start, end)


@register(POST_PROCESSORS, "ByteLevel")
@dataclass
class ByteLevelPostProcessor(PostProcessor):
    """Adds no tokens; trims the spaces out of the offsets (``trim_offsets``) and joins a pair."""

    add_prefix_space: bool = True
    trim_offsets: bool = True
    use_regex: bool = True

    def process(self, encoding: Encoding, pair: Encoding | None, add_special_tokens: bool) -> Encoding:
        for part in (encoding, pair):
            if part is not None and self.trim_offsets:
                trim_offsets(part, self.add_prefix_space)
        return encoding if pair is None else Encoding.merge([encoding, pair])

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        return 0


@register(DECODERS, "ByteLevel")
@dataclass
class ByteLevelDecoder(Decoder):
    """Byte characters back to bytes, bytes back to text (invalid UTF-8 becomes U+FFFD).

    A token that is not made of byte characters (an added token like ``"<|im_start|>"`` is, but not one with
    ``"😀"`` in it) contributes its own UTF-8 bytes.
    """

    add_prefix_space: bool = True
    trim_offsets: bool = True
    use_regex: bool = True

    def decode_chain(self, tokens: list[str]) -> list[str]:
        try:
            data = "".join(tokens).translate(_BYTE_CHAR_TO_LATIN1).encode("latin-1")
        except UnicodeEncodeError:  # some token is not byte-level: convert token by token
            data = b"".join(self._token_bytes(token) for token in tokens)
        return [data.decode("utf-8", errors="replace")]

    @staticmethod
    def _token_bytes(token: str) -> bytes:
        if all(char in CHAR_TO_BYTE for char in token):
            return bytes(CHAR_TO_BYTE[char] for char in token)
        return token.encode("utf-8")


# --------------------------------------------------------------------------------------------------------------
# GPT2Tokenizer
# --------------------------------------------------------------------------------------------------------------


def bos_eos_template(backend: Tokenizer, bos: str | None, eos: str | None) -> TemplateProcessing:
    """``[bos] $A [eos]`` / ``[bos] $A [eos] [bos] $B [eos]`` (B's part with type id 1), as transformers builds it."""
    specials = {}
    for token in (bos, eos):
        if token is not None:
            index = backend.token_to_id(token)
            if index is None:
                raise TokenizerFileError(
                    f"{token!r} is to be added to every sequence but is not in the vocabulary; add it first"
                )
            specials[token] = {"id": token, "ids": [index], "tokens": [token]}

    def sequence(name: str, type_id: int) -> list[TemplatePiece]:
        head = [TemplatePiece(False, bos, type_id)] if bos else []
        tail = [TemplatePiece(False, eos, type_id)] if eos else []
        return [*head, TemplatePiece(True, name, type_id), *tail]

    return TemplateProcessing(sequence("A", 0), sequence("A", 0) + sequence("B", 1), specials)


def build_gpt2_pipeline(model: BPE, add_prefix_space: bool = False) -> Tokenizer:
    """GPT-2's pipeline, as transformers 5 builds it for ``GPT2Tokenizer``: no normalizer, byte-level BPE."""
    return Tokenizer(
        model,
        pre_tokenizer=ByteLevelPreTokenizer(add_prefix_space=add_prefix_space),
        post_processor=TemplateProcessing(["$A:0"], ["$A:0", "$B:1"], {}),
        decoder=ByteLevelDecoder(),
    )


def _token_text(value) -> str | None:
    return value["content"] if isinstance(value, dict) else value


class GPT2Tokenizer(PreTrainedTokenizer):
    """GPT-2's byte-level BPE tokenizer, from tokenizer.json or from legacy ``vocab.json`` + ``merges.txt``.

    Like transformers 5, the pipeline is rebuilt from the configuration even when tokenizer.json exists: its
    vocabulary, merges, added tokens and post-processor are kept; the pre-tokenizer follows
    ``add_prefix_space`` of tokenizer_config.json (default False). There is no pad token by default: set
    ``tokenizer.pad_token = tokenizer.eos_token`` to pad.
    """

    tokenizer_class_name = "GPT2Tokenizer"
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, backend: Tokenizer, /, **config):
        for name in ("bos_token", "eos_token", "unk_token"):
            config.setdefault(name, "<|endoftext|>")
        config.setdefault("add_prefix_space", False)
        super().__init__(backend, **config)

    @property
    def add_prefix_space(self) -> bool:
        return bool(self.init_kwargs.get("add_prefix_space", False))

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        folder = Path(folder)
        add_prefix_space = bool(config.get("add_prefix_space", False))
        if (folder / "tokenizer.json").is_file():
            loaded = Tokenizer.from_file(folder / "tokenizer.json")
            if not isinstance(loaded.model, BPE):
                raise TokenizerFileError(
                    f"{folder / 'tokenizer.json'} holds a {loaded.model.type_name} model, not BPE: load it with "
                    "AutoTokenizer or PreTrainedTokenizer instead of GPT2Tokenizer"
                )
            # transformers keeps only the vocabulary and merges of the model (no unk token, no byte fallback)
            model = BPE(loaded.model.vocab, loaded.model.to_dict()["merges"])  # (merges in the file's form)
            backend = build_gpt2_pipeline(model, add_prefix_space)
            backend.added_vocabulary = loaded.added_vocabulary
            if loaded.post_processor is not None:
                backend.post_processor = loaded.post_processor
            backend.truncation, backend.padding = loaded.truncation, loaded.padding
        else:
            vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
            if not (vocab_file.is_file() and merges_file.is_file()):
                raise FileNotFoundError(
                    f"{folder} has neither tokenizer.json nor vocab.json + merges.txt: a GPT-2 tokenizer needs one "
                    "of them (save one with save_pretrained, or copy the model's files there)"
                )
            backend = build_gpt2_pipeline(BPE.from_files(vocab_file, merges_file), add_prefix_space)
        if config.get("add_bos_token") or config.get("add_eos_token"):
            bos = (
                _token_text(config.get("bos_token", "<|endoftext|>")) if config.get("add_bos_token") else None
            )
            eos = (
                _token_text(config.get("eos_token", "<|endoftext|>")) if config.get("add_eos_token") else None
            )
            backend.post_processor = bos_eos_template(backend, bos, eos)
        return backend
