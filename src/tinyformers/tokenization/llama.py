"""Llama's tokenizer: sentencepiece-style BPE, written as a ``tokenizers`` pipeline (``LlamaTokenizer``).

A sentencepiece BPE vocabulary spells a space as "▁" and knows the 256 bytes as ``<0x00>``..``<0xFF>``, so that
a character missing from the vocabulary is written as its UTF-8 bytes instead of ``<unk>``::

    "Hi ☃" -> "▁Hi▁☃" -> ["▁Hi", "▁", "<0xE2>", "<0x98>", "<0x83>"]

transformers 5 builds the same pipeline whatever files it starts from (tokenizer.json, tokenizer.model or a GGUF
file); only the vocabulary, the merges, the added tokens and the post-processor come from the files:

    normalizer      none
    pre-tokenizer   Metaspace("▁", prepend_scheme, split=False)    one word: merges may cross spaces
    model           BPE(fuse_unk=True, byte_fallback=True)          no unk token: unknown bytes are dropped
    decoder         Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)

``prepend_scheme`` is "first" (a "▁" only in front of the start of the text, not after a special token) unless
``legacy=True`` ("always") or ``add_prefix_space=False`` ("never"). A file without merges (a sentencepiece
``.model``, most GGUF files: see ``gguf.py``) gets them back from its vocabulary with ``generate_merges``.
"""

from __future__ import annotations

from pathlib import Path

from ..formats.sentencepiece_model import BPE as SENTENCEPIECE_BPE
from ..formats.sentencepiece_model import CONTROL, USER_DEFINED, load_model_file
from .added_vocabulary import AddedToken
from .base import PreTrainedTokenizer
from .bpe import BPE
from .chars import SPACE
from .decoders import ByteFallback, DecoderSequence, Fuse, ReplaceDecoder, StripDecoder
from .pre_tokenizers import Metaspace
from .processors import TemplateProcessing, bos_eos_template
from .stages import TokenizerFileError
from .tokenizer import Tokenizer


def generate_merges(vocab: dict[str, int], scores: dict[str, float] | None = None) -> list[tuple[str, str]]:
    """The merges a sentencepiece BPE vocabulary implies, ranked as transformers ranks them.

    Every way of cutting a token in two known pieces is a merge. Without scores the merges are ordered by the
    id of the token they build (sentencepiece gives better pieces lower ids); with scores, best score first.
    Ties go to the shorter left piece, then the shorter right piece; cuts of one token by their pieces' ids.
    """
    ranking = scores if scores is not None else vocab
    merges = []
    for token, rank in ranking.items():
        cuts = [
            (token[:i], token[i:], rank)
            for i in range(1, len(token))
            if token[:i] in vocab and token[i:] in vocab
        ]
        merges.extend(sorted(cuts, key=lambda cut: (vocab[cut[0]], vocab[cut[1]])))
    merges.sort(key=lambda cut: (cut[2], len(cut[0]), len(cut[1])), reverse=scores is not None)
    return [(left, right) for left, right, _ in merges]


def prepend_scheme(add_prefix_space: bool = True, legacy: bool = False) -> str:
    """Where Metaspace puts its "▁", from the two options transformers reads in tokenizer_config.json."""
    if not add_prefix_space:
        return "never"
    return "always" if legacy else "first"


def build_llama_pipeline(
    vocab: dict[str, int], merges: list, add_prefix_space: bool = True, legacy: bool = False
) -> Tokenizer:
    """The pipeline of transformers' ``LlamaTokenizer`` (no special tokens added yet: see ``LlamaTokenizer``)."""
    decoders = [ReplaceDecoder({"String": SPACE}, " "), ByteFallback(), Fuse()]
    if add_prefix_space:
        decoders.append(StripDecoder(" ", 1, 0))  # the "▁" Metaspace put in front
    return Tokenizer(
        BPE(vocab, merges, fuse_unk=True, byte_fallback=True),
        pre_tokenizer=Metaspace(SPACE, prepend_scheme(add_prefix_space, legacy), split=False),
        post_processor=TemplateProcessing(["$A:0"], ["$A:0", "$B:1"], {}),
        decoder=DecoderSequence(decoders),
    )


def _flag(config: dict, name: str, default: bool) -> bool:
    value = config.get(name)
    return default if value is None else bool(value)


class LlamaTokenizer(PreTrainedTokenizer):
    """Llama / Llama 2 / Mistral-v1 style tokenizer, from tokenizer.json or a legacy ``tokenizer.model``.

    Like transformers 5, a ``<s>`` is added in front of every sequence when the tokenizer.json post-processor
    says so (real Llama files do) or when ``add_bos_token`` is set in tokenizer_config.json; a folder with only
    ``tokenizer.model`` and no ``add_bos_token`` adds none. GGUF files default to ``add_bos_token=True``.
    """

    tokenizer_class_name = "LlamaTokenizer"
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, backend: Tokenizer, /, **config):
        config.setdefault("bos_token", "<s>")
        config.setdefault("eos_token", "</s>")
        config.setdefault("unk_token", "<unk>")
        config.setdefault("padding_side", "left")
        super().__init__(backend, **config)
        if "add_bos_token" in config or "add_eos_token" in config:
            self.update_post_processor()

    @property
    def add_bos_token(self) -> bool:
        return bool(self.init_kwargs.get("add_bos_token", False))

    @property
    def add_eos_token(self) -> bool:
        return bool(self.init_kwargs.get("add_eos_token", False))

    def update_post_processor(self) -> None:
        """``[bos] $A [eos]`` as ``add_bos_token``/``add_eos_token`` say (transformers' method of this name)."""
        bos = self.bos_token if self.add_bos_token else None
        eos = self.eos_token if self.add_eos_token else None
        self.backend.post_processor = bos_eos_template(self.backend, bos, eos)

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        folder = Path(folder)
        add_prefix_space, legacy = _flag(config, "add_prefix_space", True), _flag(config, "legacy", False)
        if (folder / "tokenizer.json").is_file():
            return cls.rebuild_backend(
                folder,
                BPE,
                lambda model: build_llama_pipeline(model.vocab, model.merges, add_prefix_space, legacy),
            )
        if (folder / "tokenizer.model").is_file():
            return llama_pipeline_from_model_file(folder / "tokenizer.model", add_prefix_space, legacy)
        raise FileNotFoundError(
            f"{folder} has neither tokenizer.json nor tokenizer.model: a Llama tokenizer needs one of them "
            "(save one with save_pretrained, or copy the model's tokenizer files there)"
        )


def llama_pipeline_from_model_file(
    path: str | Path, add_prefix_space: bool = True, legacy: bool = False
) -> Tokenizer:
    """A sentencepiece BPE ``.model`` as transformers converts it: merges rebuilt from the piece ids,
    control pieces added as special tokens and user-defined ones as plain added tokens."""
    model = load_model_file(path)
    if model.trainer_spec.model_type != SENTENCEPIECE_BPE:
        raise TokenizerFileError(
            f"{path} is not a sentencepiece BPE model (model_type {model.trainer_spec.model_type}); a Unigram "
            "model is read by T5Tokenizer or SentencePieceTokenizer"
        )
    vocab = {piece.piece: index for index, piece in enumerate(model.pieces)}
    backend = build_llama_pipeline(vocab, generate_merges(vocab), add_prefix_space, legacy)
    add_typed_tokens(backend, [piece.piece for piece in model.pieces], [piece.type for piece in model.pieces])
    return backend


def add_typed_tokens(backend: Tokenizer, tokens: list[str], types: list[int]) -> None:
    """Control tokens become special added tokens, user-defined ones plain added tokens (both matched whole)."""
    for kind, special in ((CONTROL, True), (USER_DEFINED, False)):
        found = [
            AddedToken(token, normalized=False, special=special)
            for token, token_kind in zip(tokens, types)
            if token_kind == kind
        ]
        if found:
            backend.add_tokens(found)
