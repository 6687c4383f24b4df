"""``BertTokenizer``: BERT's WordPiece tokenizer, from tokenizer.json or from a legacy vocab.txt."""

from __future__ import annotations

from pathlib import Path

from .added_vocabulary import token_text
from .base import PreTrainedTokenizer
from .decoders import WordPieceDecoder
from .normalizers import BertNormalizer
from .pre_tokenizers import BertPreTokenizer
from .processors import TemplateProcessing
from .tokenizer import Tokenizer
from .wordpiece import WordPiece, load_vocab_file


def build_bert_pipeline(
    vocab_or_model: dict[str, int] | WordPiece,
    *,
    do_lower_case: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    unk_token: str = "[UNK]",
    cls_token: str = "[CLS]",
    sep_token: str = "[SEP]",
) -> Tokenizer:
    """BERT's pipeline, as transformers 5 builds it for ``BertTokenizer``."""
    model = vocab_or_model if isinstance(vocab_or_model, WordPiece) else WordPiece(vocab_or_model, unk_token)
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
            "unk_token": token_text(config.get("unk_token"), "[UNK]"),
            "cls_token": token_text(config.get("cls_token"), "[CLS]"),
            "sep_token": token_text(config.get("sep_token"), "[SEP]"),
        }
        if (folder / "tokenizer.json").is_file():
            return cls.rebuild_backend(folder, WordPiece, lambda model: build_bert_pipeline(model, **options))
        vocab_file = folder / "vocab.txt"
        if not vocab_file.is_file():
            raise FileNotFoundError(
                f"{folder} has neither tokenizer.json nor vocab.txt: a BERT tokenizer needs one of them "
                "(save one with save_pretrained, or copy the model's vocab.txt there)"
            )
        return build_bert_pipeline(load_vocab_file(vocab_file), **options)
