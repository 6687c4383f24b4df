"""The tokenization pipeline of a ``tokenizer.json``, as small swappable pieces.

A text goes through the same stages as in the Hugging Face ``tokenizers`` library::

    added tokens -> normalizer -> pre-tokenizer -> model -> post-processor      (encode)
    ids -> tokens -> decoder                                                    (decode)

Each stage kind has its module (``normalizers``, ``pre_tokenizers``, ``processors``, ``decoders``; the models
``wordpiece``, ``bpe``, ``unigram``) and registers its classes by their tokenizer.json ``"type"`` (``stages``).
"""

from __future__ import annotations

import json

from . import bpe, unigram, wordpiece  # noqa: F401  (the models: importing them registers them)
from .added_vocabulary import AddedToken, AddedVocabulary
from .decoders import Decoder
from .encoding import Encoding
from .models import Model
from .normalized import NormalizedString, PreTokenizedString
from .normalizers import Normalizer
from .pre_tokenizers import PreTokenizer
from .processors import PostProcessor
from .stages import DECODERS, MODELS, NORMALIZERS, POST_PROCESSORS, PRE_TOKENIZERS, TokenizerFileError, build


class Tokenizer:
    """A ``tokenizer.json`` brought to life: encode text to an ``Encoding``, decode ids to text.

    Truncation and padding are left to the caller (``PreTrainedTokenizer``); the ``truncation`` and
    ``padding`` sections of a loaded file are kept only so that saving writes them back.
    """

    def __init__(
        self,
        model: Model,
        normalizer: Normalizer | None = None,
        pre_tokenizer: PreTokenizer | None = None,
        post_processor: PostProcessor | None = None,
        decoder: Decoder | None = None,
    ):
        self.model = model
        self.added_vocabulary = AddedVocabulary()
        self.normalizer = normalizer
        self.pre_tokenizer = pre_tokenizer
        self.post_processor = post_processor
        self.decoder = decoder
        self.encode_special_tokens = False  # True: special tokens in the text are tokenized like any text
        self.truncation: dict | None = None
        self.padding: dict | None = None

    @property
    def normalizer(self) -> Normalizer | None:
        return self._normalizer

    @normalizer.setter
    def normalizer(self, normalizer: Normalizer | None) -> None:
        # Normalized added tokens are matched in their normalized form: a new normalizer changes them.
        self._normalizer = normalizer
        self.added_vocabulary.use_normalizer(normalizer)

    # -- (de)serialization --------------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path) -> Tokenizer:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"tokenizer file {path} does not exist") from None
        return cls.from_str(text, source=str(path))

    @classmethod
    def from_str(cls, text: str, source: str = "tokenizer.json") -> Tokenizer:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise TokenizerFileError(
                f"{source} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
                "re-save it with save_pretrained or download it again"
            ) from None
        return cls.from_dict(spec, source)

    @classmethod
    def from_dict(cls, spec: dict, source: str = "tokenizer.json") -> Tokenizer:
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
            raise TokenizerFileError(f"{source} has no 'model' section: it is not a tokenizers file")
        tokenizer = cls(
            build(MODELS, spec["model"]),
            build(NORMALIZERS, spec.get("normalizer")),
            build(PRE_TOKENIZERS, spec.get("pre_tokenizer")),
            build(POST_PROCESSORS, spec.get("post_processor")),
            build(DECODERS, spec.get("decoder")),
        )
        tokenizer.truncation = spec.get("truncation")
        tokenizer.padding = spec.get("padding")
        for item in sorted(spec.get("added_tokens") or [], key=lambda t: t["id"]):
            token = AddedToken(**{k: v for k, v in item.items() if k != "id"})
            tokenizer.added_vocabulary.add([token], tokenizer.model)
            placed = tokenizer.added_vocabulary.ids[token.content]
            if placed != item["id"]:  # ids in the file win, even when they leave gaps
                del tokenizer.added_vocabulary.tokens[placed]
                tokenizer.added_vocabulary.tokens[item["id"]] = token
                tokenizer.added_vocabulary.ids[token.content] = item["id"]
        return tokenizer

    def to_dict(self) -> dict:
        def dump(stage):
            return None if stage is None else stage.to_dict()

        return {
            "version": "1.0",
            "truncation": self.truncation,
            "padding": self.padding,
            "added_tokens": self.added_vocabulary.to_list(),
            "normalizer": dump(self.normalizer),
            "pre_tokenizer": dump(self.pre_tokenizer),
            "post_processor": dump(self.post_processor),
            "decoder": dump(self.decoder),
            "model": self.model.to_dict(),
        }

    def to_str(self, pretty: bool = True) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2 if pretty else None)

    # -- vocabulary ---------------------------------------------------------------------------------------------

    def add_tokens(self, tokens: list[AddedToken | str]) -> int:
        tokens = [t if isinstance(t, AddedToken) else AddedToken(t) for t in tokens]
        return self.added_vocabulary.add(tokens, self.model)

    def add_special_tokens(self, tokens: list[AddedToken | str]) -> int:
        tokens = [t if isinstance(t, AddedToken) else AddedToken(t, special=True) for t in tokens]
        return self.added_vocabulary.add(tokens, self.model)

    def token_to_id(self, token: str) -> int | None:
        index = self.added_vocabulary.ids.get(token)
        return index if index is not None else self.model.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        token = self.added_vocabulary.display(index)
        return token if token is not None else self.model.id_to_token(index)

    def get_vocab(self, with_added_tokens: bool = True) -> dict[str, int]:
        vocab = dict(self.model.get_vocab())
        if with_added_tokens:
            for index, token in self.added_vocabulary.tokens.items():
                vocab[token.content] = index  # the content as added (id_to_token shows the normalized form)
        return vocab

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        if not with_added_tokens:
            return self.model.get_vocab_size()
        return len(self.get_vocab(True))

    # -- encode -------------------------------------------------------------------------------------------------

    def pre_tokenize(self, text: str, offset: int = 0) -> PreTokenizedString:
        """Added tokens, normalization and pre-tokenization of one text: the words the model will see."""
        vocabulary = self.added_vocabulary
        pieces: list[NormalizedString] = []
        tokens: list = []
        for raw, found in vocabulary.split(NormalizedString(text, offset), False, self.encode_special_tokens):
            if found is not None:
                pieces.append(raw)
                # Like tokenizers, the token string is the matched text (with any stripped spaces)
                tokens.append([(found[0], raw.text, 0, len(raw.text))])
                continue
            if self.normalizer is not None:
                self.normalizer.normalize(raw)
            for piece, found in vocabulary.split(raw, True, self.encode_special_tokens):
                pieces.append(piece)
                tokens.append(None if found is None else [(found[0], piece.text, 0, len(piece.text))])
        pretokenized = PreTokenizedString(pieces, tokens)
        if self.pre_tokenizer is not None:
            self.pre_tokenizer.pre_tokenize(pretokenized)
        return pretokenized

    def encode_sequence(
        self, text: str | list[str], type_id: int = 0, is_pretokenized: bool = False
    ) -> Encoding:
        """One sequence to tokens, without special tokens. A pre-tokenized input is a list of words."""
        if is_pretokenized:
            # Each word is encoded on its own; its offsets are relative to the word, like tokenizers does.
            parts = [
                self._encode_words(self.pre_tokenize(word), word_index)
                for word_index, word in enumerate(text)
            ]
            encoding = Encoding.merge(parts) if parts else Encoding.from_tokens([])
        else:
            encoding = self._encode_words(self.pre_tokenize(text), None)
        if type_id:
            encoding.type_ids = [type_id] * len(encoding.ids)
        return encoding

    def _encode_words(self, pretokenized: PreTokenizedString, word_index: int | None) -> Encoding:
        ids: list[int] = []
        tokens: list[str] = []
        offsets: list[tuple[int, int]] = []
        word_ids: list[int | None] = []
        # Hot loop (one pass per word of every text): methods bound once, single-token words handled inline.
        ids_append, tokens_append, offsets_append, words_append = (
            ids.append,
            tokens.append,
            offsets.append,
            word_ids.append,
        )
        tokenize = self.model.tokenize
        for index, (piece, done) in enumerate(zip(pretokenized.pieces, pretokenized.tokens)):
            pieces = done if done is not None else tokenize(piece.text)
            word = index if word_index is None else word_index
            if piece.spans is None:
                base, lead = piece.offset, piece.lead
                if lead:  # the first ``lead`` characters (a "▁" put in front) stand for the word's first one
                    for token_id, token, start, end in pieces:
                        ids_append(token_id)
                        tokens_append(token)
                        offsets_append(
                            (
                                base + (start - lead if start > lead else 0),
                                base + (end - lead if end > lead else 1),
                            )
                        )
                elif len(pieces) == 1:
                    token_id, token, start, end = pieces[0]
                    ids_append(token_id)
                    tokens_append(token)
                    offsets_append((base + start, base + end))
                    words_append(word)
                    continue
                else:
                    for token_id, token, start, end in pieces:
                        ids_append(token_id)
                        tokens_append(token)
                        offsets_append((base + start, base + end))
            else:
                for token_id, token, start, end in pieces:
                    ids_append(token_id)
                    tokens_append(token)
                    offsets_append(piece.original_span(start, end))
            word_ids.extend([word] * len(pieces))
        n = len(ids)
        return Encoding(ids, tokens, offsets, word_ids, [0] * n, [0] * n, [1] * n, [0] * n)

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        if self.post_processor is None:
            return 0
        return self.post_processor.num_special_tokens_to_add(is_pair)

    def post_process(
        self, encoding: Encoding, pair: Encoding | None = None, add_special_tokens=True
    ) -> Encoding:
        if self.post_processor is not None:
            return self.post_processor.process(encoding, pair, add_special_tokens)
        if pair is None:
            return encoding
        return Encoding.merge([encoding, pair.with_type_id(1, 1)])

    def encode(
        self,
        text: str | list[str],
        pair: str | list[str] | None = None,
        add_special_tokens: bool = True,
        is_pretokenized: bool = False,
    ) -> Encoding:
        first = self.encode_sequence(text, 0, is_pretokenized)
        second = None if pair is None else self.encode_sequence(pair, 1, is_pretokenized)
        if second is not None:
            second.sequence_ids = [1] * len(second.ids)
        return self.post_process(first, second, add_special_tokens)

    # -- decode -------------------------------------------------------------------------------------------------

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        tokens = []
        for index in ids:
            if skip_special_tokens and self.added_vocabulary.is_special_id(index):
                continue
            token = self.id_to_token(index)
            if token is not None:  # unknown ids are dropped, as tokenizers does
                tokens.append(token)
        if self.decoder is None:
            return " ".join(tokens)
        return self.decoder.decode(tokens)
