"""Build a tokenizer from the ``tokenizer.ggml.*`` metadata of a GGUF file, as transformers does.

GGUF stores the vocabulary as a token list (the id is the position), merges as ``"a b"`` strings, a type per
token (3 = control, 4 = user-defined: sentencepiece's numbers) and the ids of the special tokens. Two vocabulary
types are read:

* ``"gpt2"`` (byte-level BPE: SmolLM2, Llama 3, Qwen...): GPT-2's pipeline with the split regex the ``pre`` name
  stands for;
* ``"llama"`` (sentencepiece BPE: Llama 2, Mistral v1, TinyLlama...): Llama's pipeline, merges from the file or
  derived from the scores.

Both add control tokens as special tokens and user-defined ones as plain added tokens.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..formats.sentencepiece_model import CONTROL, USER_DEFINED
from .added_vocabulary import AddedToken, token_text
from .base import PreTrainedTokenizer
from .bpe import BPE
from .byte_level import BYTE_TO_CHAR
from .gpt2 import GPT2Tokenizer, build_gpt2_pipeline
from .llama import build_llama_pipeline, generate_merges
from .pre_tokenizers import ByteLevelPreTokenizer, PreTokenizerSequence, Split
from .processors import bos_eos_template

_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# `tokenizer.ggml.pre` -> the regex its merges were learned with. Names not listed (e.g. "smollm") use GPT-2's.
SPLITS = {
    **dict.fromkeys(
        ("llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "pixtral"), _LLAMA3_SPLIT
    ),
    **dict.fromkeys(("gpt-4o", "llama4"), _GPT4O_SPLIT),
}


_BYTE_ALPHABET = frozenset(BYTE_TO_CHAR)


def _byte_spelling(token: str) -> str:
    """GGUF may store a token in plain UTF-8; the BPE vocabulary spells every token in the byte alphabet."""
    if all(ch in _BYTE_ALPHABET for ch in token):
        return token
    return "".join(BYTE_TO_CHAR[b] for b in token.encode("utf-8"))


def special_tokens_config(fields: dict, tokens: list[str]) -> dict:
    """The tokenizer settings every GGUF vocabulary type shares: its chat template and the special tokens its
    ``tokenizer.ggml.*_token_id`` fields name."""
    config = {"chat_template": fields.get("chat_template")}
    for name, key in (
        ("bos", "bos_token_id"),
        ("eos", "eos_token_id"),
        ("unk", "unknown_token_id"),
        ("pad", "padding_token_id"),
    ):
        if fields.get(key) is not None:
            config[f"{name}_token"] = tokens[fields[key]]
    return config


def tokenizer_from_gguf(path: str | os.PathLike, **kwargs) -> PreTrainedTokenizer:
    from ..formats.gguf import GGUFFile, tokenizer_fields  # (formats.gguf imports torch for the tensors)

    fields = tokenizer_fields(GGUFFile(path).metadata)
    kind = fields.get("model")
    if kind == "llama":
        return llama_tokenizer_from_gguf(fields, **kwargs)
    if kind == "gpt2":
        return gpt2_tokenizer_from_gguf(fields, **kwargs)
    raise ValueError(
        f"{Path(path).name}: GGUF tokenizer type '{kind}' is not supported yet; supported: gpt2 (byte-level "
        "BPE), llama (sentencepiece BPE)"
    )


def gpt2_tokenizer_from_gguf(fields: dict, **kwargs) -> PreTrainedTokenizer:
    """``tokenizer.ggml.model == "gpt2"``: GPT-2's pipeline over the file's vocabulary and merges."""
    tokens = fields["tokens"]
    vocab = {_byte_spelling(token): index for index, token in enumerate(tokens)}
    merges = [tuple(merge.split(" ")) for merge in fields.get("merges", [])]
    backend = build_gpt2_pipeline(BPE(vocab, merges), add_prefix_space=False)
    split = SPLITS.get(fields.get("pre"))
    if split is not None:
        backend.pre_tokenizer = PreTokenizerSequence(
            [
                Split.from_dict({"pattern": {"Regex": split}, "behavior": "Isolated", "invert": False}),
                ByteLevelPreTokenizer(add_prefix_space=False, use_regex=False),
            ]
        )
    config = special_tokens_config(fields, tokens)
    for flag in ("add_bos_token", "add_eos_token"):
        if flag in fields:
            config[flag] = bool(fields[flag])
    config.update(kwargs)
    # A control token spelled outside the byte alphabet is a converter mislabel: adding it would grow the
    # vocabulary, so only tokens the vocabulary spells as they are become added tokens.
    return _with_typed_tokens(GPT2Tokenizer(backend, **config), fields, vocab, config)


def llama_tokenizer_from_gguf(fields: dict, **kwargs) -> PreTrainedTokenizer:
    """``tokenizer.ggml.model == "llama"``: the vocabulary with its scores and types, merges from the file or
    derived from the scores, as transformers' GGUF loader builds it (a plain tokenizer, bos added by default)."""
    tokens = list(fields["tokens"])
    vocab = {token: index for index, token in enumerate(tokens)}
    if fields.get("merges"):
        merges = [tuple(merge.split(" ")) for merge in fields["merges"]]
    else:
        scores = fields.get("scores") or [0.0] * len(tokens)
        merges = generate_merges(vocab, dict(zip(tokens, scores)))
    backend = build_llama_pipeline(vocab, merges)
    config = special_tokens_config(fields, tokens)
    config["add_bos_token"] = bool(fields.get("add_bos_token", True))  # llama.cpp's default for this type
    config["add_eos_token"] = bool(fields.get("add_eos_token", False))
    config.update(kwargs)
    return _with_typed_tokens(PreTrainedTokenizer(backend, **config), fields, vocab, config)


def _with_typed_tokens(
    tokenizer: PreTrainedTokenizer, fields: dict, vocab: dict[str, int], config: dict
) -> PreTrainedTokenizer:
    """Control tokens as extra special tokens, user-defined ones as plain added tokens (both matched whole, and
    only those ``vocab`` holds as they are), then ``[bos] $A [eos]`` as the ``add_*_token`` flags say."""
    tokens = fields["tokens"]
    types = fields.get("token_type") or [1] * len(tokens)
    control = [
        AddedToken(t, normalized=False, special=True)
        for t, kind in zip(tokens, types)
        if kind == CONTROL and t in vocab
    ]
    if control:
        tokenizer.add_special_tokens(
            {"additional_special_tokens": control}, replace_extra_special_tokens=False
        )
    user_defined = [
        AddedToken(t, normalized=False)
        for t, kind in zip(tokens, types)
        if kind == USER_DEFINED and t in vocab
    ]
    if user_defined:
        tokenizer.add_tokens(user_defined)
    bos = token_text(config.get("bos_token")) if config.get("add_bos_token") else None
    eos = token_text(config.get("eos_token")) if config.get("add_eos_token") else None
    tokenizer.backend.post_processor = bos_eos_template(tokenizer.backend, bos, eos)
    return tokenizer
