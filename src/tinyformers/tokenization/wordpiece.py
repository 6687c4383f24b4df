"""WordPiece (BERT's subword model) and ``BertTokenizer``.

WordPiece cuts a word greedily, longest vocabulary match first: "unaffable" -> "un", "##aff", "##able". Pieces
after the first carry the ``##`` prefix. If any position of the word has no match, the *whole* word becomes
``[UNK]`` (not just the failing part), and so does any word longer than ``max_input_chars_per_word`` characters.
"""

from __future__ import annotations

from pathlib import Path

from .base import PreTrainedTokenizer
from .pipeline import (
    MODELS,
    BertNormalizer,
    BertPreTokenizer,
    TemplateProcessing,
    Tokenizer,
    TokenizerFileError,
    VocabModel,
    WordPieceDecoder,
    register,
)


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


def build_bert_pipeline(
    vocab_or_model: dict[str, int] | WordPiece,
    *,
    do_lower_case: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    unk_token: str = "[UNK]",
    cls_token: str = "[CLS]",
    sep_token: str = "[SEP]",
    post_processor=None,
) -> Tokenizer:
    """BERT's pipeline, as transformers 5 builds it for ``BertTokenizer``."""
    model = vocab_or_model if isinstance(vocab_or_model, WordPiece) else WordPiece(vocab_or_model, unk_token)
    if post_processor is None:
        cls_id = model.token_to_id(cls_token)
        sep_id = model.token_to_id(sep_token)
        post_processor = TemplateProcessing(
            f"{cls_token}:0 $A:0 {sep_token}:0",
            f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
            [(cls_token, 2 if cls_id is None else cls_id), (sep_token, 3 if sep_id is None else sep_id)],
        )
    return Tokenizer(
        model,
        normalizer=BertNormalizer(True, tokenize_chinese_chars, strip_accents, do_lower_case),
        pre_tokenizer=BertPreTokenizer(),
        post_processor=post_processor,
        decoder=WordPieceDecoder("##", True),
    )


def _token_text(value, default: str) -> str:
    if value is None:
        return default
    return value["content"] if isinstance(value, dict) else str(value)


class BertTokenizer(PreTrainedTokenizer):
    """BERT's WordPiece tokenizer, from tokenizer.json or from a legacy vocab.txt.

    Like transformers 5, the normalizer follows ``tokenizer_config.json`` (``do_lower_case``, ``strip_accents``,
    ``tokenize_chinese_chars``) even when tokenizer.json is present; vocabulary, added tokens and post-processor
    come from tokenizer.json. ``never_split`` is accepted and ignored, as in transformers 5 (add such words with
    ``add_tokens`` instead).
    """

    tokenizer_class_name = "BertTokenizer"

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        folder = Path(folder)
        options = {
            "do_lower_case": config.get("do_lower_case", True),
            "strip_accents": config.get("strip_accents"),
            "tokenize_chinese_chars": config.get("tokenize_chinese_chars", True),
            "unk_token": _token_text(config.get("unk_token"), "[UNK]"),
            "cls_token": _token_text(config.get("cls_token"), "[CLS]"),
            "sep_token": _token_text(config.get("sep_token"), "[SEP]"),
        }
        if (folder / "tokenizer.json").is_file():
            loaded = Tokenizer.from_file(folder / "tokenizer.json")
            if not isinstance(loaded.model, WordPiece):
                raise TokenizerFileError(
                    f"{folder / 'tokenizer.json'} holds a {loaded.model.type_name} model, not WordPiece: load it "
                    "with AutoTokenizer or PreTrainedTokenizer instead of BertTokenizer"
                )
            backend = build_bert_pipeline(loaded.model, post_processor=loaded.post_processor, **options)
            backend.added_vocabulary = loaded.added_vocabulary
            backend.normalizer = backend.normalizer  # re-attach: added tokens match in normalized form
            return backend
        vocab_file = folder / "vocab.txt"
        if not vocab_file.is_file():
            raise FileNotFoundError(
                f"{folder} has neither tokenizer.json nor vocab.txt: a BERT tokenizer needs one of them "
                "(save one with save_pretrained, or copy the model's vocab.txt there)"
            )
        return build_bert_pipeline(load_vocab_file(vocab_file), **options)
