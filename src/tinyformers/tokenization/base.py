"""The user-facing tokenizer: the ``transformers`` API (``tokenizer(texts, padding=True, ...)``) over a pipeline.

``PreTrainedTokenizer`` owns a ``tokenizer.Tokenizer`` (``backend``) and adds what ``transformers`` adds on top of
the ``tokenizers`` library: named special tokens, truncation and padding strategies, tensors, decoding options,
and ``from_pretrained``/``save_pretrained`` with ``tokenizer_config.json``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

from ..hub import upload as hub_upload
from ..hub.resolve import resolve_dir
from ..utils import atomic_write_text
from .added_vocabulary import AddedToken, token_text
from .batch_encoding import BatchEncoding
from .chat_template import ChatTemplateError, render
from .decoders import clean_up_spaces
from .encoding import Encoding
from .models import Model
from .stages import TokenizerFileError, read_json_object
from .tokenizer import Tokenizer
from .truncation import truncate

logger = logging.getLogger("tinyformers.tokenization")

VERY_LARGE_INTEGER = int(1e30)  # "no limit", as transformers writes it
LARGE_INTEGER = int(1e20)

SPECIAL_TOKEN_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)
EXTRA_SPECIAL_KEYS = ("extra_special_tokens", "additional_special_tokens")

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")

# tokenizer_config.json keys that describe where a tokenizer was loaded from, not the tokenizer: never saved.
_TRANSIENT_CONFIG_KEYS = {
    "name_or_path",
    "is_local",
    "local_files_only",
    "vocab_file",
    "tokenizer_file",
    "added_tokens_decoder",
    "_commit_hash",
    "cache_dir",
    "revision",
    "token",
    "trust_remote_code",
}


def _as_added_token(value: Any, special: bool = True) -> AddedToken | None:
    """A token from a config file: a string, a ``{"content": ...}`` dict (old AddedToken JSON) or an AddedToken."""
    if value is None or isinstance(value, AddedToken):
        return value
    if isinstance(value, dict):
        flags = {
            k: value[k] for k in ("single_word", "lstrip", "rstrip", "normalized", "special") if k in value
        }
        flags.setdefault("special", special)
        return AddedToken(value["content"], **flags)
    return AddedToken(str(value), special=special, normalized=not special)


class PreTrainedTokenizer:
    """A tokenizer with the ``transformers`` API, backed by a ``tokenizer.Tokenizer``."""

    model_input_names: ClassVar[list[str]] = ["input_ids", "token_type_ids", "attention_mask"]
    tokenizer_class_name: ClassVar[str] = "PreTrainedTokenizerFast"  # what save_pretrained writes by default

    def __init__(self, backend: Tokenizer, /, **config):
        self.backend = backend
        self.init_kwargs = dict(config)
        self.name_or_path = str(config.get("name_or_path", ""))
        self.model_max_length = int(config.get("model_max_length") or VERY_LARGE_INTEGER)
        self.padding_side = config.get("padding_side", "right")
        self.truncation_side = config.get("truncation_side", "right")
        for side_name in ("padding_side", "truncation_side"):
            if getattr(self, side_name) not in ("left", "right"):
                raise ValueError(f"{side_name} must be 'left' or 'right', got {getattr(self, side_name)!r}")
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        self.chat_template = config.get("chat_template")
        self.pad_token_type_id = int(config.get("pad_token_type_id", 0))
        self.split_special_tokens = bool(config.get("split_special_tokens", False))
        if config.get("model_input_names"):
            self.model_input_names = list(config["model_input_names"])
        self._warned_too_long = False

        self._special: dict[str, str | None] = {}
        to_register = []
        for name in SPECIAL_TOKEN_NAMES:
            token = _as_added_token(config.get(name))
            self._special[name] = None if token is None else token.content
            to_register.append(token)
        extras = next((config[k] for k in EXTRA_SPECIAL_KEYS if config.get(k)), [])
        if isinstance(extras, dict):  # transformers 5 may name its extra special tokens
            extras = list(extras.values())
        extra_tokens = [_as_added_token(t) for t in extras]
        self._extra_special: list[str] = [t.content for t in extra_tokens]
        to_register += extra_tokens

        # Tokens an old tokenizer_config.json lists with their ids (folders without tokenizer.json)
        listed = config.get("added_tokens_decoder") or {}
        for _, spec in sorted(listed.items(), key=lambda item: int(item[0])):
            token = _as_added_token(
                spec, special=spec.get("special", False) if isinstance(spec, dict) else True
            )
            if token.content not in backend.added_vocabulary.ids:
                backend.add_tokens([token])
        # Every special token is an added special token of the backend (never split, skipped by decode).
        known = backend.added_vocabulary.ids
        missing = [t for t in to_register if t is not None and t.content not in known]
        if missing:
            backend.add_special_tokens(
                [AddedToken(t.content, t.single_word, t.lstrip, t.rstrip, False, True) for t in missing]
            )
        backend.encode_special_tokens = self.split_special_tokens

    # -- loading and saving -------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, revision: str | None = None, **kwargs):
        """Load from a folder (or a hub id in the local cache) holding tokenizer.json / tokenizer_config.json.

        Keyword arguments override values of ``tokenizer_config.json`` (e.g. ``model_max_length=128``).
        """
        folder = resolve_dir(name_or_path, revision)
        config = cls.read_config(folder)
        config.update(kwargs)
        config["name_or_path"] = str(name_or_path)
        backend = cls.build_backend(folder, config)
        return cls(backend, **config)

    @staticmethod
    def read_config(folder: Path) -> dict:
        """tokenizer_config.json, with special_tokens_map.json and chat_template.jinja folded in."""
        folder = Path(folder)
        config = (
            read_json_object(folder / "tokenizer_config.json")
            if (folder / "tokenizer_config.json").is_file()
            else {}
        )
        if (folder / "special_tokens_map.json").is_file():
            for key, value in read_json_object(folder / "special_tokens_map.json").items():
                if key in SPECIAL_TOKEN_NAMES or key in EXTRA_SPECIAL_KEYS:
                    config.setdefault(key, value)
        if (folder / "added_tokens.json").is_file():
            PreTrainedTokenizer._fold_added_tokens_file(folder / "added_tokens.json", config)
        template = folder / "chat_template.jinja"
        if "chat_template" not in config and template.is_file():
            config["chat_template"] = template.read_text(encoding="utf-8")
        return config

    @staticmethod
    def _fold_added_tokens_file(path: Path, config: dict) -> None:
        """Legacy ``added_tokens.json`` (token -> id) as ``added_tokens_decoder`` entries, as transformers reads
        it: a token named as a special token is special (and not normalized), any other is a normalized one."""
        specials = {token_text(config.get(name)) for name in SPECIAL_TOKEN_NAMES if config.get(name)}
        for key in EXTRA_SPECIAL_KEYS:
            extras = config.get(key) or []
            specials.update(token_text(t) for t in (extras.values() if isinstance(extras, dict) else extras))
        listed = config.setdefault("added_tokens_decoder", {})
        for token, index in read_json_object(path).items():
            special = token in specials
            listed.setdefault(str(index), {"content": token, "special": special, "normalized": not special})

    @classmethod
    def build_backend(cls, folder: Path, config: dict) -> Tokenizer:
        """The pipeline for ``folder``: here its tokenizer.json (subclasses also read legacy vocab files)."""
        path = Path(folder) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no tokenizer.json in {folder}: {cls.__name__} needs one; for a folder with only legacy vocabulary "
                "files (vocab.txt, vocab.json + merges.txt) use AutoTokenizer or the model's tokenizer class"
            )
        return Tokenizer.from_file(path)

    @classmethod
    def rebuild_backend(cls, folder: Path, model_class: type[Model], build) -> Tokenizer:
        """A family's own pipeline around the model of ``folder``'s tokenizer.json, as transformers 5 rebuilds it.

        ``build(model)`` makes the family's pipeline from the loaded model; the file's added tokens (matched as the
        new pipeline normalizes), post-processor, truncation and padding sections are kept.
        """
        path = Path(folder) / "tokenizer.json"
        loaded = Tokenizer.from_file(path)
        if not isinstance(loaded.model, model_class):
            raise TokenizerFileError(
                f"{path} holds a {loaded.model.type_name} model, not {model_class.type_name}: load it with "
                f"AutoTokenizer or PreTrainedTokenizer instead of {cls.__name__}"
            )
        backend = build(loaded.model)
        backend.added_vocabulary = loaded.added_vocabulary
        backend.added_vocabulary.use_normalizer(backend.normalizer)
        if loaded.post_processor is not None:
            backend.post_processor = loaded.post_processor
        backend.truncation, backend.padding = loaded.truncation, loaded.padding
        return backend

    def config_to_save(self) -> dict:
        config = {k: v for k, v in self.init_kwargs.items() if k not in _TRANSIENT_CONFIG_KEYS}
        for key in (*SPECIAL_TOKEN_NAMES, *EXTRA_SPECIAL_KEYS):
            config.pop(key, None)
        config.update({name: token for name, token in self._special.items() if token is not None})
        if self._extra_special:
            config["extra_special_tokens"] = list(self._extra_special)
        config["model_max_length"] = self.model_max_length
        config["padding_side"] = self.padding_side
        config["truncation_side"] = self.truncation_side
        config["clean_up_tokenization_spaces"] = self.clean_up_tokenization_spaces
        if self.chat_template is not None:
            config["chat_template"] = self.chat_template
        else:
            config.pop("chat_template", None)
        if (
            type(self).tokenizer_class_name != PreTrainedTokenizer.tokenizer_class_name
            or "tokenizer_class" not in config
        ):
            config["tokenizer_class"] = type(self).tokenizer_class_name
        return config

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> tuple[str, ...]:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json (each atomically)."""
        if kwargs:
            logger.warning("save_pretrained ignores %s", ", ".join(sorted(kwargs)))
        folder = Path(save_directory)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(
                f"cannot save the tokenizer into {folder}: it is a file, pass a directory"
            )
        folder.mkdir(parents=True, exist_ok=True)
        special_map = {name: token for name, token in self._special.items() if token is not None}
        if self._extra_special:
            special_map["additional_special_tokens"] = list(self._extra_special)
        files = {
            "tokenizer.json": self.backend.to_str(),
            "tokenizer_config.json": json.dumps(
                self.config_to_save(), indent=2, ensure_ascii=False, sort_keys=True
            ),
            "special_tokens_map.json": json.dumps(special_map, indent=2, ensure_ascii=False),
        }
        for name, text in files.items():
            atomic_write_text(folder / name, text + "\n")
        return tuple(str(folder / name) for name in files)

    def push_to_hub(
        self, repo_id: str, *, commit_message: str | None = None, token: str | None = None, **kwargs
    ):
        """Upload the tokenizer files to ``repo_id`` in one commit (creating the repo, and a card if it has
        none); ``kwargs``: private, revision, and the card's license, tags, datasets, metrics."""
        return hub_upload.push_to_hub(
            self.save_pretrained, repo_id, commit_message=commit_message, token=token, **kwargs
        )

    # -- special tokens -----------------------------------------------------------------------------------------

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """The named special tokens (``bos_token``...). Like transformers 5, the extra special tokens are not in
        it: they are ``extra_special_tokens`` (special_tokens_map.json still lists them when saving)."""
        return {name: token for name, token in self._special.items() if token is not None}

    @property
    def extra_special_tokens(self) -> list[str]:
        return list(self._extra_special)

    additional_special_tokens = extra_special_tokens

    @property
    def all_special_tokens(self) -> list[str]:
        tokens = [t for t in self._special.values() if t is not None] + self._extra_special
        return list(dict.fromkeys(tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return [self.convert_tokens_to_ids(token) for token in self.all_special_tokens]

    def add_tokens(
        self, new_tokens: str | AddedToken | list[str | AddedToken], special_tokens: bool = False
    ) -> int:
        """Add tokens matched whole in the text; returns how many were not in the vocabulary yet."""
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        tokens = [
            t
            if isinstance(t, AddedToken)
            else AddedToken(str(t), special=special_tokens, normalized=not special_tokens)
            for t in new_tokens
        ]
        return self.backend.add_tokens(tokens)

    def add_special_tokens(self, special_tokens_dict: dict, replace_extra_special_tokens: bool = True) -> int:
        """Set named special tokens (``{"pad_token": "[PAD]"}``) and/or ``additional_special_tokens``."""
        added = []
        for key, value in special_tokens_dict.items():
            if key in EXTRA_SPECIAL_KEYS:
                tokens = [_as_added_token(t) for t in value]
                contents = [t.content for t in tokens]
                if replace_extra_special_tokens:
                    self._extra_special = contents
                else:
                    self._extra_special += [c for c in contents if c not in self._extra_special]
                added += tokens
            elif key in SPECIAL_TOKEN_NAMES:
                token = _as_added_token(value)
                self._special[key] = token.content
                added.append(token)
            else:
                raise ValueError(
                    f"unknown special token key {key!r}; use one of {', '.join(SPECIAL_TOKEN_NAMES)} "
                    "or 'additional_special_tokens'"
                )
        for token in added:
            token.special = True
        return self.backend.add_tokens(added)

    # -- vocabulary ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=False)

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {self.backend.id_to_token(i): i for i in sorted(self.backend.added_vocabulary.tokens)}

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        if isinstance(tokens, str):
            index = self.backend.token_to_id(tokens)
            return index if index is not None else self.unk_token_id
        return [self.convert_tokens_to_ids(token) for token in tokens]

    def convert_ids_to_tokens(
        self, ids: int | list[int], skip_special_tokens: bool = False
    ) -> str | list[str]:
        if isinstance(ids, int) or hasattr(ids, "item") and getattr(ids, "ndim", 1) == 0:
            return self.backend.id_to_token(int(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self.backend.id_to_token(int(i)) for i in ids if int(i) not in skip]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self.backend.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    # -- encoding -----------------------------------------------------------------------------------------------

    def tokenize(
        self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs
    ) -> list[str]:
        return self.backend.encode(text, pair, add_special_tokens=add_special_tokens).tokens

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs):
        """Only the ``input_ids`` of one text (or pair)."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        """The padding/truncation strategies and length, following transformers' rules (and its defaults)."""
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # a bare max_length means "truncate to it"
        if padding is True:
            padding = "longest"
        elif padding is False or padding is None:
            padding = "do_not_pad"
        padding = str(getattr(padding, "value", padding))
        if padding not in PADDING_STRATEGIES:
            raise ValueError(
                f"padding={padding!r} is not valid; use True, False or one of {PADDING_STRATEGIES}"
            )
        if truncation is True:
            truncation = "longest_first"
        elif truncation is False or truncation is None:
            truncation = "do_not_truncate"
        truncation = str(getattr(truncation, "value", truncation))
        if truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(
                f"truncation={truncation!r} is not valid; use True, False or one of {TRUNCATION_STRATEGIES}"
            )
        if max_length is None:
            if padding == "max_length":
                if self.model_max_length > LARGE_INTEGER:
                    padding = "do_not_pad"
                else:
                    max_length = self.model_max_length
            if truncation != "do_not_truncate":
                if self.model_max_length > LARGE_INTEGER:
                    truncation = "do_not_truncate"
                else:
                    max_length = self.model_max_length
        if padding != "do_not_pad" and (self.pad_token is None or self.pad_token_id is None):
            raise ValueError(
                "padding needs a pad token, but this tokenizer has none: set one, e.g. "
                "tokenizer.pad_token = tokenizer.eos_token, or tokenizer.add_special_tokens({'pad_token': '[PAD]'})"
            )
        if (
            truncation != "do_not_truncate"
            and padding != "do_not_pad"
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of
        ):
            raise ValueError(
                f"truncation length max_length={max_length} is not a multiple of pad_to_multiple_of="
                f"{pad_to_multiple_of}: make max_length a multiple of it"
            )
        return padding, truncation, max_length

    @staticmethod
    def _as_batch(text, text_pair, is_split_into_words: bool):
        """Normalize the inputs to a list of ``(first, second or None)`` and say whether the call was batched."""

        def is_words(value) -> bool:
            return isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value)

        def check(value, what: str):
            valid = isinstance(value, str) or (is_split_into_words and is_words(value))
            if not valid:
                expected = "a list of words (str)" if is_split_into_words else "a str"
                raise ValueError(
                    f"{what} must be {expected}, got {type(value).__name__}; pass text as a str, a list of str "
                    "(a batch), a list of (text, text_pair) tuples, or words with is_split_into_words=True"
                )

        if is_split_into_words:
            batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
        else:
            batched = isinstance(text, (list, tuple))
        if not batched:
            check(text, "text")
            if text_pair is not None:
                check(text_pair, "text_pair")
            # As transformers: an empty text_pair ("" or no words) of a single text means no pair at all
            # (in a batch it stays a pair with an empty second text).
            return [(text, text_pair or None)], False
        if isinstance(text_pair, str):
            raise TypeError("for a batch of texts, text_pair must be a list of the same length, not a str")
        if text_pair is not None and len(text_pair) != len(text):
            raise ValueError(
                f"text has {len(text)} items but text_pair has {len(text_pair)}: they must match"
            )
        items = []
        for i, item in enumerate(text):
            second = text_pair[i] if text_pair is not None else None
            if second is None and not is_split_into_words and isinstance(item, (list, tuple)):
                if len(item) != 2:
                    raise ValueError(
                        f"batch item {i} is a {len(item)}-item sequence; a pair must be (text, text_pair)"
                    )
                item, second = item
            check(item, f"text[{i}]")
            if second is not None:
                check(second, f"text_pair[{i}]")
            items.append((item, second))
        return items, True

    def _check_stride(self, truncation: str, max_length, stride: int) -> None:
        """Refuse a stride that cannot fit, before encoding anything, as tokenizers' ``enable_truncation`` does.

        Like tokenizers, it counts the special tokens of a single text even for pairs, and only when truncating;
        a stride too large for the windows a given text is cut into is refused when cutting it.
        """
        if truncation == "do_not_truncate":
            return
        if stride < 0:
            raise ValueError(f"stride must be 0 or more, got {stride}")
        n_added = self.backend.num_special_tokens_to_add(False)
        room = max_length - n_added
        # A max_length below the special tokens is refused when encoding ("leaves no room"), not here.
        if 0 <= room < stride:
            raise ValueError(
                f"stride={stride} is larger than max_length={max_length} minus the {n_added} special tokens of a "
                f"text ({room}); use a smaller stride or a larger max_length"
            )

    def _encode_one(
        self,
        first,
        second,
        add_special_tokens: bool,
        truncation: str,
        max_length,
        stride: int,
        is_split_into_words: bool,
        return_overflowing_tokens: bool,
    ) -> list[Encoding]:
        """One text (or pair) as model inputs: the truncated encoding, then the overflowing ones if asked for."""
        backend = self.backend
        encoding = backend.encode_sequence(first, 0, is_split_into_words)
        pair = None
        if second is not None:
            pair = backend.encode_sequence(second, 1, is_split_into_words)
            pair.sequence_ids = [1] * len(pair)
        if truncation == "do_not_truncate":
            return [backend.post_process(encoding, pair, add_special_tokens)]
        return truncate(
            backend,
            encoding,
            pair,
            max_length,
            truncation,
            stride,
            self.truncation_side,
            add_special_tokens,
            return_overflowing_tokens,
        )

    def _pad(
        self, windows: list[list[Encoding]], padding: str, max_length, pad_to_multiple_of, padding_side
    ) -> None:
        """Pad the encodings of every text (or pair): ``windows[i]`` is the truncated encoding of text i, then
        its overflowing ones. Like tokenizers, "longest" means the longest truncated encoding: an overflowing one
        is longer only when truncation kept no token of a text, and then it stays longer."""
        if padding == "do_not_pad" or not windows:
            return
        length = max(len(item[0]) for item in windows) if padding == "longest" else max_length
        if pad_to_multiple_of and length % pad_to_multiple_of:
            length += pad_to_multiple_of - length % pad_to_multiple_of
        side = padding_side or self.padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        for item in windows:
            for encoding in item:
                encoding.pad(length, self.pad_token_id, self.pad_token, self.pad_token_type_id, side)

    def _warn_if_too_long(self, length: int, max_length, verbose: bool) -> None:
        # Same rule as transformers: warn once (not an error) when nothing asked for a length limit.
        if max_length is None and length > self.model_max_length and verbose and not self._warned_too_long:
            logger.warning(
                "Token indices sequence length is longer than the specified maximum sequence length for this model "
                f"({length} > {self.model_max_length}). Running this sequence through the model will result in "
                "indexing errors; pass truncation=True to cut it"
            )
            self._warned_too_long = True

    def __call__(
        self,
        text=None,
        text_pair=None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs,
    ) -> BatchEncoding:
        """Tokenize a text, a pair, or a batch of either, into model inputs (see transformers' docs)."""
        if text is None:
            raise ValueError(
                "nothing to tokenize: pass text (a str, a list of str, or a list of (text, pair) tuples)"
            )
        if kwargs:
            logger.warning("Keyword arguments %s not recognized.", kwargs)
        items, batched = self._as_batch(text, text_pair, is_split_into_words)
        padding, truncation, max_length = self._strategies(
            padding, truncation, max_length, pad_to_multiple_of
        )
        self._check_stride(truncation, max_length, stride)
        windows = [
            self._encode_one(
                a,
                b,
                add_special_tokens,
                truncation,
                max_length,
                stride,
                is_split_into_words,
                return_overflowing_tokens,
            )
            for a, b in items
        ]
        self._pad(windows, padding, max_length, pad_to_multiple_of, padding_side)
        encodings = [encoding for item in windows for encoding in item]
        for encoding in encodings:
            self._warn_if_too_long(len(encoding), max_length, verbose)

        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        columns = {"input_ids": "ids"}
        if return_token_type_ids:
            columns["token_type_ids"] = "type_ids"
        if return_attention_mask:
            columns["attention_mask"] = "attention_mask"
        if return_special_tokens_mask:
            columns["special_tokens_mask"] = "special_tokens_mask"
        if return_offsets_mapping:
            columns["offset_mapping"] = "offsets"
        data: dict[str, Any] = {key: [getattr(e, field) for e in encodings] for key, field in columns.items()}
        if return_length:
            data["length"] = [len(e) for e in encodings]
        if return_overflowing_tokens:
            # Which text (or pair) of the call each encoding comes from: one row per window.
            data["overflow_to_sample_mapping"] = [index for index, item in enumerate(windows) for _ in item]
        elif not batched and return_tensors is None:
            # One text: no batch dimension (overflowing tokens keep it: each window is a row), as transformers
            data = {key: value[0] if key != "length" else value for key, value in data.items()}
        return BatchEncoding(data, encodings, tensor_type=return_tensors)

    def pad(
        self,
        encoded_inputs,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Pad already-encoded inputs (a dict of lists, or a list of dicts as a data collator has them)."""
        if isinstance(encoded_inputs, (list, tuple)):
            if not encoded_inputs:
                return BatchEncoding({}, tensor_type=return_tensors)
            encoded_inputs = {key: [item[key] for item in encoded_inputs] for key in encoded_inputs[0]}
        inputs = {key: [list(row) for row in value] for key, value in encoded_inputs.items()}
        single = inputs and not isinstance(inputs["input_ids"][0], list)
        if single:
            inputs = {key: [value] for key, value in inputs.items()}
        padding, _, max_length = self._strategies(padding, False, max_length, pad_to_multiple_of)
        rows = inputs["input_ids"]
        if return_attention_mask is not False and "attention_mask" not in inputs:
            inputs["attention_mask"] = [[1] * len(row) for row in rows]
        if padding != "do_not_pad":
            length = max(len(r) for r in rows) if padding == "longest" else max_length
            if pad_to_multiple_of and length % pad_to_multiple_of:
                length += pad_to_multiple_of - length % pad_to_multiple_of
            fillers = {
                "input_ids": self.pad_token_id,
                "attention_mask": 0,
                "token_type_ids": self.pad_token_type_id,
                "special_tokens_mask": 1,
            }
            left = (padding_side or self.padding_side) == "left"
            for key, value in inputs.items():
                filler = fillers.get(key, 0)
                for i, row in enumerate(value):
                    extra = [filler] * (length - len(row))
                    value[i] = extra + row if left else row + extra
        if single and return_tensors is None:
            inputs = {key: value[0] for key, value in inputs.items()}
        return BatchEncoding(inputs, tensor_type=return_tensors)

    # -- decoding -----------------------------------------------------------------------------------------------

    def decode(
        self,
        token_ids,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs,
    ) -> str:
        """Ids back to text. ``clean_up_tokenization_spaces`` defaults to the tokenizer's config value."""
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if token_ids and isinstance(token_ids[0], (list, tuple)):
            raise ValueError("decode takes one sequence of ids; use batch_decode for a batch")
        text = self.backend.decode([int(i) for i in token_ids], skip_special_tokens=skip_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        # Like transformers 5: the clean-up is meant for WordPiece and would corrupt byte-level BPE output.
        if clean_up_tokenization_spaces and self.backend.model.type_name != "BPE":
            text = self.clean_up_tokenization(text)
        return text

    def batch_decode(
        self, sequences, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs
    ) -> list[str]:
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces) for ids in sequences]

    # -- chat ---------------------------------------------------------------------------------------------------

    def apply_chat_template(
        self,
        conversation: list[dict] | list[list[dict]],
        tools: list[dict] | None = None,
        documents: list[dict] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool | str = False,
        tokenize: bool = True,
        padding=False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_dict: bool = True,
        tokenizer_kwargs: dict | None = None,
        **kwargs,
    ):
        """Render messages with the chat template; tokenized (a BatchEncoding, as transformers 5) unless tokenize=False.

        The rendered text already holds every special token the model expects, so it is encoded with
        ``add_special_tokens=False``: encoding it with them would add a second BOS.
        """
        template = chat_template or self.chat_template
        if isinstance(template, dict):  # several named templates: "default" unless tools select "tool_use"
            template = template.get("tool_use" if tools and "tool_use" in template else "default")
        if not template:
            raise ChatTemplateError(
                "this tokenizer has no chat_template; pass chat_template=... or use a chat model's tokenizer"
            )
        batched = bool(conversation) and isinstance(conversation[0], (list, tuple))
        chats = conversation if batched else [conversation]
        variables = {**self.special_tokens_map, **kwargs}
        texts = [
            render(
                template, chat, add_generation_prompt, continue_final_message, tools, documents, **variables
            )
            for chat in chats
        ]
        if not tokenize:
            return texts if batched else texts[0]
        out = self(
            texts if batched else texts[0],
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            add_special_tokens=False,
            return_tensors=return_tensors,
            **(tokenizer_kwargs or {}),
        )
        return out if return_dict else out["input_ids"]

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """transformers' clean-up: no space before . ? ! , and inside common English contractions."""
        return clean_up_spaces(text, contract_do_not=False)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, padding_side={self.padding_side!r}, "
            f"special_tokens={self.special_tokens_map})"
        )


def _special_token_property(name: str) -> property:
    def get(self) -> str | None:
        return self._special.get(name)

    def set(self, value) -> None:
        self._special[name] = None if value is None else str(value)

    return property(get, set, doc=f"The {name.replace('_', ' ')} (a string), or None.")


def _special_token_id_property(name: str) -> property:
    def get(self) -> int | None:
        token = self._special.get(name)
        return None if token is None else self.backend.token_to_id(token)

    def set(self, value) -> None:
        self._special[name] = None if value is None else self.backend.id_to_token(int(value))

    return property(get, set, doc=f"The id of the {name.replace('_', ' ')}, or None.")


for _name in SPECIAL_TOKEN_NAMES:
    setattr(PreTrainedTokenizer, _name, _special_token_property(_name))
    setattr(PreTrainedTokenizer, _name + "_id", _special_token_id_property(_name))
