"""sentencepiece: its own normalizer and decoder, and tokenizers built from a ``.model`` file.

Two ways to tokenize with a sentencepiece model, because the two libraries people compare against differ:

* ``SentencePieceTokenizer.from_model_file(path)`` is the ``sentencepiece`` library itself: its normalizer
  (longest match in the precompiled charsmap, extra spaces removed, a dummy "▁" prefix), its Unigram or BPE,
  its decoding (control pieces vanish, ``<unk>`` reads " ⁇ ").
* ``T5Tokenizer`` is what ``transformers`` builds for T5 (the ``tokenizers`` pipeline): ``Precompiled``
  normalizer, ``WhitespaceSplit`` + ``Metaspace`` pre-tokenizers, ``Unigram``, ``</s>`` appended, 100 sentinels.

The tokenizer.json stages that mimic sentencepiece (``Precompiled``, ``Metaspace``, ``ByteFallback``...) live with
the other stages of their kind.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from ..formats.sentencepiece_model import (
    BPE,
    BYTE,
    CONTROL,
    NORMAL,
    UNIGRAM,
    UNKNOWN,
    UNUSED,
    USER_DEFINED,
    SentencePieceModel,
    load_model_file,
)
from .added_vocabulary import token_text
from .base import PreTrainedTokenizer
from .chars import SPACE
from .charsmap import Charsmap
from .decoders import MetaspaceDecoder, SentencePieceDecoder
from .normalized import NormalizedString, split_by_matches
from .normalizers import Normalizer, Precompiled
from .pre_tokenizers import Metaspace, PreTokenizer, PreTokenizerSequence, WhitespaceSplit
from .processors import TemplateProcessing
from .stages import TokenizerFileError
from .tokenizer import Tokenizer
from .unigram import SentencePieceBPE, Unigram


@dataclass
class SentencePieceNormalizer(Normalizer):
    """sentencepiece's own normalizer (``normalizer.cc``), for tokenizers that must equal the library.

    Longest charsmap rule at each position; then, with ``remove_extra_whitespaces``, spaces at both ends go
    and inner runs become one; ``add_dummy_prefix`` puts a space in front (behind with
    ``treat_whitespace_as_suffix``); ``escape_whitespaces`` writes every space as "▁". Not a tokenizers stage:
    it is never written to tokenizer.json.
    """

    charsmap: Charsmap | None = None
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    treat_whitespace_as_suffix: bool = False

    def to_dict(self) -> dict:
        raise TokenizerFileError(
            "a tokenizer built from a sentencepiece .model has no tokenizer.json form; keep the .model file"
        )

    def _chunks(self, text: str):
        """``(replacement, start, end)`` for each consumed span of ``text``, in order."""
        charsmap = self.charsmap
        if charsmap is None or charsmap.triggers.isdisjoint(text):
            yield from ((char, i, i + 1) for i, char in enumerate(text))
            return
        start = 0
        while start < len(text):
            match = charsmap.longest_match(text, start)
            if match is None:
                yield text[start], start, start + 1
                start += 1
            else:
                used, replacement = match
                yield replacement, start, start + used
                start += used

    def normalize(self, piece: NormalizedString) -> None:
        if not self._normalize_plain(piece):
            self._normalize_any(piece)

    def _normalize_plain(self, piece: NormalizedString) -> bool:
        """The usual text (no charsmap rule applies, no runs of spaces): string methods instead of a loop."""
        text = piece.text
        charsmap = self.charsmap
        if charsmap is not None and not charsmap.triggers.isdisjoint(text):
            return False
        if not (self.remove_extra_whitespaces and self.escape_whitespaces) or self.treat_whitespace_as_suffix:
            return False
        kept = text.strip(" ")
        if "  " in kept:
            return False
        first = len(text) - len(text.lstrip(" "))
        escaped = kept.replace(" ", SPACE)  # same length: every character keeps its span
        prefix = SPACE if kept and self.add_dummy_prefix else ""
        if piece.is_identity:  # the dummy "▁" stands for the first kept character: still arithmetic
            piece.text, piece.offset, piece.lead = prefix + escaped, piece.offset + first, len(prefix)
            return True
        spans = piece.all_spans()[first : first + len(kept)]
        piece.set_aligned(prefix + escaped, spans[:1] * len(prefix) + spans)
        return True

    def _normalize_any(self, piece: NormalizedString) -> None:
        spans = piece.all_spans()
        remove_extra = self.remove_extra_whitespaces
        space = SPACE if self.escape_whitespaces else " "
        chars: list[str] = []
        new_spans: list[tuple[int, int]] = []
        is_previous_space = remove_extra  # True also drops the spaces at the start
        for replacement, start, end in self._chunks(piece.text):
            if is_previous_space:
                replacement = replacement.lstrip(" ")
            if replacement:
                span = (spans[start][0], spans[end - 1][1])
                for char in replacement:
                    chars.append(space if char == " " else char)
                    new_spans.append(span)
                is_previous_space = replacement[-1] == " "
            if not remove_extra:
                is_previous_space = False
        if remove_extra:
            while chars and chars[-1] == space:
                chars.pop()
                new_spans.pop()
        if chars and self.add_dummy_prefix:
            if self.treat_whitespace_as_suffix:
                chars.append(space)
                new_spans.append((new_spans[-1][1], new_spans[-1][1]))
            else:
                chars.insert(0, space)
                new_spans.insert(0, new_spans[0])
        piece.set_aligned("".join(chars), new_spans)


# --------------------------------------------------------------------------------------------------------------
# Pipelines built from a .model file
# --------------------------------------------------------------------------------------------------------------


def _as_model(model: SentencePieceModel | str | Path) -> SentencePieceModel:
    return model if isinstance(model, SentencePieceModel) else load_model_file(model)


def sentencepiece_pipeline(model: SentencePieceModel | str | Path) -> Tokenizer:
    """A pipeline that tokenizes and decodes exactly as ``sentencepiece.SentencePieceProcessor`` does."""
    model = _as_model(model)
    spec, normalizer_spec = model.trainer_spec, model.normalizer_spec
    pieces = model.pieces
    vocab = [(p.piece, p.score) for p in pieces]
    # Only normal, user-defined and unused pieces can be read from the text (unused ones are skipped).
    matchable = [i for i, p in enumerate(pieces) if p.type in (NORMAL, USER_DEFINED)]
    unk_id = spec.unk_id if 0 <= spec.unk_id < len(pieces) else None
    byte_fallback = spec.byte_fallback and any(p.type == BYTE for p in pieces)
    if spec.model_type == UNIGRAM:
        normal_scores = [p.score for p in pieces if p.type == NORMAL]
        top = max(normal_scores, default=0.0)
        # A user-defined piece always wins: sentencepiece scores it length * best score - 0.1.
        user = {i: len(pieces[i].piece) * top - 0.1 for i, p in enumerate(pieces) if p.type == USER_DEFINED}
        segmenter = Unigram(
            vocab, unk_id, byte_fallback, matchable, min_score=min(normal_scores, default=0.0), scores=user
        )
    elif spec.model_type == BPE:
        unused = [i for i, p in enumerate(pieces) if p.type == UNUSED]
        segmenter = SentencePieceBPE(vocab, unk_id, byte_fallback, matchable + unused, unused=unused)
    else:
        raise TokenizerFileError(
            f"sentencepiece model_type {spec.model_type} (WORD/CHAR) is not supported; only UNIGRAM and BPE are"
        )
    normalizer = SentencePieceNormalizer(
        Charsmap.load(normalizer_spec.precompiled_charsmap) if normalizer_spec.precompiled_charsmap else None,
        normalizer_spec.add_dummy_prefix,
        normalizer_spec.remove_extra_whitespaces,
        normalizer_spec.escape_whitespaces,
        spec.treat_whitespace_as_suffix,
    )
    # Cutting the normalized text into "▁word" pieces lets the model cache words; it changes nothing as long
    # as no piece has a "▁" inside (sentencepiece's default split_by_whitespace training guarantees it).
    split = normalizer_spec.escape_whitespaces and not any(
        SPACE in (p.piece[:-1] if spec.treat_whitespace_as_suffix else p.piece[1:])
        for p in pieces
        if p.type in (NORMAL, USER_DEFINED)
    )
    pre_tokenizer = None
    if split:
        behavior = "MergedWithPrevious" if spec.treat_whitespace_as_suffix else "MergedWithNext"
        pre_tokenizer = _SpaceSplit(behavior)
    decoder = SentencePieceDecoder(
        frozenset(p.piece for p in pieces if p.type == CONTROL),
        pieces[unk_id].piece if unk_id is not None else "<unk>",
        spec.unk_surface,
        normalizer_spec.add_dummy_prefix,
        spec.treat_whitespace_as_suffix,
    )
    return Tokenizer(segmenter, normalizer, pre_tokenizer, None, decoder)


@dataclass
class _SpaceSplit(PreTokenizer):
    behavior: str = "MergedWithNext"

    def split_piece(self, piece: NormalizedString) -> list[NormalizedString]:
        text = piece.text
        matches = [(i, i + 1) for i, char in enumerate(text) if char == SPACE] if SPACE in text else []
        return split_by_matches(piece, matches, self.behavior)


def t5_pipeline(
    model: SentencePieceModel | str | Path, extra_ids: int = 100, eos_token: str = "</s>"
) -> Tokenizer:
    """The pipeline transformers 5 builds for ``T5Tokenizer`` from ``spiece.model``."""
    model = _as_model(model)
    sentinels = [f"<extra_id_{i}>" for i in range(extra_ids - 1, -1, -1)]  # appended last-first, as T5 does
    vocab = [(p.piece, p.score) for p in model.pieces] + [(s, 0.0) for s in sentinels]
    charsmap = model.normalizer_spec.precompiled_charsmap
    metaspace = {"replacement": SPACE, "prepend_scheme": "always", "split": True}
    tokenizer = Tokenizer(
        Unigram(vocab, model.trainer_spec.unk_id, byte_fallback=False),
        normalizer=Precompiled(base64.b64encode(charsmap).decode("ascii")) if charsmap else None,
        pre_tokenizer=PreTokenizerSequence([WhitespaceSplit(), Metaspace(**metaspace)]),
        decoder=MetaspaceDecoder(**metaspace),
    )
    tokenizer.add_special_tokens([p.piece for p in model.pieces if p.type in (CONTROL, UNKNOWN)] + sentinels)
    eos_id = tokenizer.token_to_id(eos_token)
    tokenizer.post_processor = TemplateProcessing(
        f"$A:0 {eos_token}:0", f"$A:0 {eos_token}:0 $B:0 {eos_token}:0", [(eos_token, eos_id)]
    )
    return tokenizer


# --------------------------------------------------------------------------------------------------------------
# User-facing tokenizers
# --------------------------------------------------------------------------------------------------------------


class SentencePieceTokenizer(PreTrainedTokenizer):
    """Any sentencepiece ``.model``, tokenized exactly as the ``sentencepiece`` library does.

    ``encode(text)`` gives the ids of ``SentencePieceProcessor.encode(text)`` (no bos/eos; special-token text
    such as ``"</s>"`` is read as plain text, as sentencepiece does) and ``decode`` its ``decode``.
    """

    tokenizer_class_name = "SentencePieceTokenizer"
    model_input_names = ["input_ids", "attention_mask"]

    @classmethod
    def from_model_file(cls, path: str | Path, **config) -> SentencePieceTokenizer:
        model = load_model_file(path)
        spec = model.trainer_spec
        for name in ("unk", "bos", "eos", "pad"):
            index = getattr(spec, f"{name}_id")
            if 0 <= index < len(model.pieces):
                config.setdefault(f"{name}_token", model.pieces[index].piece)
        config.setdefault("split_special_tokens", True)
        config.setdefault("name_or_path", str(path))
        return cls(sentencepiece_pipeline(model), **config)

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        for name in ("tokenizer.model", "spiece.model", "sentencepiece.bpe.model"):
            if (Path(folder) / name).is_file():
                return sentencepiece_pipeline(Path(folder) / name)
        raise FileNotFoundError(f"no sentencepiece model (tokenizer.model or spiece.model) in {folder}")

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids


class T5Tokenizer(PreTrainedTokenizer):
    """T5's tokenizer as transformers 5 builds it: from tokenizer.json when present, else from spiece.model
    (pad 0, eos 1, unk 2 in T5's own files; ``extra_ids`` sentinels ``<extra_id_N>`` after the vocabulary,
    ``</s>`` appended to every sequence)."""

    tokenizer_class_name = "T5Tokenizer"
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, backend: Tokenizer, /, **config):
        config.setdefault("eos_token", "</s>")
        config.setdefault("unk_token", "<unk>")
        config.setdefault("pad_token", "<pad>")
        extra_ids = int(config.setdefault("extra_ids", 100))
        if not any(config.get(key) for key in ("extra_special_tokens", "additional_special_tokens")):
            config["extra_special_tokens"] = [f"<extra_id_{i}>" for i in range(extra_ids)]
        super().__init__(backend, **config)

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        folder = Path(folder)
        if (folder / "tokenizer.json").is_file():
            return Tokenizer.from_file(folder / "tokenizer.json")
        vocab_file = folder / "spiece.model"
        if not vocab_file.is_file():
            raise FileNotFoundError(
                f"{folder} has neither tokenizer.json nor spiece.model: a T5 tokenizer needs one of them "
                "(save one with save_pretrained, or copy the model's spiece.model there)"
            )
        eos = token_text(config.get("eos_token"), "</s>")
        return t5_pipeline(vocab_file, int(config.get("extra_ids", 100)), eos)

    def get_sentinel_tokens(self) -> list[str]:
        return [t for t in self._extra_special if t.startswith("<extra_id_")]

    def get_sentinel_token_ids(self) -> list[int]:
        return [self.backend.token_to_id(t) for t in self.get_sentinel_tokens()]
