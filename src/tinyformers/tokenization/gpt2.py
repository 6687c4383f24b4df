"""``GPT2Tokenizer``: GPT-2's byte-level BPE, from tokenizer.json or from legacy ``vocab.json`` + ``merges.txt``."""

from __future__ import annotations

from pathlib import Path

from .added_vocabulary import token_text
from .base import PreTrainedTokenizer
from .bpe import BPE
from .decoders import ByteLevelDecoder
from .pre_tokenizers import ByteLevelPreTokenizer
from .processors import TemplateProcessing, bos_eos_template
from .tokenizer import Tokenizer


def build_gpt2_pipeline(model: BPE, add_prefix_space: bool = False) -> Tokenizer:
    """GPT-2's pipeline, as transformers 5 builds it for ``GPT2Tokenizer``: no normalizer, byte-level BPE."""
    return Tokenizer(
        model,
        pre_tokenizer=ByteLevelPreTokenizer(add_prefix_space=add_prefix_space),
        post_processor=TemplateProcessing(["$A:0"], ["$A:0", "$B:1"], {}),
        decoder=ByteLevelDecoder(),
    )


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
            # transformers keeps only the vocabulary and merges of the model (no unk token, no byte fallback)
            backend = cls.rebuild_backend(
                folder,
                BPE,
                lambda model: build_gpt2_pipeline(
                    BPE(model.vocab, model.to_dict()["merges"]),  # (merges in the file's form)
                    add_prefix_space,
                ),
            )
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
                token_text(config.get("bos_token", "<|endoftext|>")) if config.get("add_bos_token") else None
            )
            eos = (
                token_text(config.get("eos_token", "<|endoftext|>")) if config.get("add_eos_token") else None
            )
            backend.post_processor = bos_eos_template(backend, bos, eos)
        return backend
