"""Each pipeline stage against the same stage of the Rust ``tokenizers`` library, built from the same JSON."""

from __future__ import annotations

import json

import pytest

from conftest import oracle
from tinyformers.tokenization.normalizers import CharMapNormalizer
from tinyformers.tokenization.stages import (
    NORMALIZERS,
    POST_PROCESSORS,
    PRE_TOKENIZERS,
    TokenizerFileError,
    build,
    register,
)
from tinyformers.tokenization.tokenizer import Tokenizer

tokenizers = oracle("tokenizers")
decoders, normalizers, pre_tokenizers, processors = (
    oracle(f"tokenizers.{name}") for name in ("decoders", "normalizers", "pre_tokenizers", "processors")
)

SAMPLES = [
    "Hello World",
    "  Café  NAÏVE\tÅngström \n",
    "e\u0301 composed? ﬁ ① Ⅸ ｆｕｌｌ",
    "digits 12345 and 3.14, x2y",
    "punct!? (a)-[b] {c}",
    "你好 世界 ΟΔΟΣ",
    "",
]


def rust_json(component) -> dict:
    return json.loads(component.__getstate__())


NORMALIZER_CASES = [
    normalizers.Lowercase(),
    normalizers.NFD(),
    normalizers.NFKD(),
    normalizers.NFC(),
    normalizers.NFKC(),
    normalizers.StripAccents(),
    normalizers.Strip(),
    normalizers.Strip(left=False, right=True),
    normalizers.Replace(" ", "▁"),
    normalizers.Replace(tokenizers.Regex(r"\s+"), " "),
    normalizers.Prepend("▁"),
    normalizers.BertNormalizer(lowercase=False),
    normalizers.BertNormalizer(strip_accents=True, lowercase=False, handle_chinese_chars=False),
    normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]),
]


@pytest.mark.parametrize("rust", NORMALIZER_CASES, ids=lambda n: type(n).__name__)
def test_normalizers_match_rust(rust):
    ours = build(NORMALIZERS, rust_json(rust))
    for text in SAMPLES:
        assert ours.normalize_str(text) == rust.normalize_str(text), text
    assert ours.to_dict() == rust_json(rust)


PRE_TOKENIZER_CASES = [
    pre_tokenizers.BertPreTokenizer(),
    pre_tokenizers.Whitespace(),
    pre_tokenizers.WhitespaceSplit(),
    pre_tokenizers.Punctuation(),
    pre_tokenizers.Punctuation("merged_with_previous"),
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.Digits(individual_digits=False),
    pre_tokenizers.Split(" ", "removed"),
    pre_tokenizers.Split(" ", "merged_with_next"),
    pre_tokenizers.Split(" ", "merged_with_previous"),
    pre_tokenizers.Split(" ", "contiguous"),
    pre_tokenizers.Split(tokenizers.Regex(r"\d+"), "isolated", invert=True),
    pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(True)]),
]


@pytest.mark.parametrize("rust", PRE_TOKENIZER_CASES, ids=lambda p: type(p).__name__)
def test_pre_tokenizers_match_rust(rust):
    ours = build(PRE_TOKENIZERS, rust_json(rust))
    for text in SAMPLES + ["a  b   c", "1 2  33"]:
        assert ours.pre_tokenize_str(text) == rust.pre_tokenize_str(text), text


def wordpiece_tokenizer(vocab_words):
    vocab = {w: i for i, w in enumerate(["[UNK]", "[CLS]", "[SEP]", "<s>", "</s>", *vocab_words])}
    rust = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    rust.normalizer = normalizers.BertNormalizer()
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rust.decoder = decoders.WordPiece()
    return rust


WORDS = ["hello", "world", "wonder", "##ful", "a", "b", "c", ",", "!"]


@pytest.mark.parametrize(
    "processor",
    [
        processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1)),
        processors.RobertaProcessing(("</s>", 4), ("<s>", 3), trim_offsets=False),
        processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", 1), ("[SEP]", 2)],
        ),
        processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 4)]),
    ],
    ids=lambda p: type(p).__name__,
)
def test_post_processors_match_rust(processor):
    rust = wordpiece_tokenizer(WORDS)
    rust.post_processor = processor
    ours = Tokenizer.from_str(rust.to_str())
    assert isinstance(ours.post_processor, POST_PROCESSORS[rust_json(processor)["type"]])
    for pair in (None, "a b, c!"):
        for add in (True, False):
            expected = rust.encode("Hello wonderful world", pair, add_special_tokens=add)
            got = ours.encode("Hello wonderful world", pair, add_special_tokens=add)
            assert (got.ids, got.type_ids, got.special_tokens_mask) == (
                expected.ids,
                expected.type_ids,
                expected.special_tokens_mask,
            )
            assert got.offsets == expected.offsets
        assert ours.num_special_tokens_to_add(pair is not None) == rust.num_special_tokens_to_add(
            pair is not None
        )


def test_added_token_flags_match_rust():
    rust = wordpiece_tokenizer(WORDS)
    rust.add_tokens(
        [
            tokenizers.AddedToken("<mask>", lstrip=True, special=True, normalized=False),
            tokenizers.AddedToken("<r>", rstrip=True, normalized=False),
            tokenizers.AddedToken("ab", single_word=True),
            tokenizers.AddedToken("Big", normalized=True),
        ]
    )
    ours = Tokenizer.from_str(rust.to_str())
    for text in ["x <mask> y", "x  <r>   y", "ab cab ab_ abc (ab)", "BIG big Big", "<mask><r>ab"]:
        expected = rust.encode(text)
        got = ours.encode(text)
        assert (got.ids, got.offsets, got.tokens) == (expected.ids, expected.offsets, expected.tokens), text
        assert ours.decode(got.ids, False) == rust.decode(expected.ids, skip_special_tokens=False)


def test_unknown_stage_type_lists_supported_ones():
    with pytest.raises(TokenizerFileError, match="unsupported normalizer type 'Wobble'.*BertNormalizer"):
        build(NORMALIZERS, {"type": "Wobble"})


def test_a_new_stage_can_be_registered():
    @register(NORMALIZERS, "TestUppercase")
    class Uppercase(CharMapNormalizer):
        @classmethod
        def from_dict(cls, spec):
            return cls()

        def to_dict(self):
            return {"type": "TestUppercase"}

        def map_char(self, char):
            return char.upper()

    try:
        assert build(NORMALIZERS, {"type": "TestUppercase"}).normalize_str("straße") == "STRASSE"
    finally:
        del NORMALIZERS["TestUppercase"]


COMPOSING = [
    "e\u0301",
    "cafe\u0301 x",
    "a\u0300\u0323 b",
    "ﬁne e\u0301\u0301",
    "\u1100\u1161\u11a8 k",
    "\u212b ①½ ｅ\u0301",
]


@pytest.mark.parametrize("form", ["NFC", "NFKC"])
def test_composition_offsets_match_rust(form):
    """A composed character gets the span of its first original character only (e + U+0301 -> é: (0, 1))."""
    rust = tokenizers.Tokenizer(tokenizers.models.WordPiece({"[UNK]": 0}, unk_token="[UNK]"))
    rust.normalizer = getattr(normalizers, form)()
    rust.pre_tokenizer = pre_tokenizers.Split(tokenizers.Regex(r"[\s\S]"), "isolated")  # one word per char
    ours = Tokenizer.from_str(rust.to_str())
    for text in COMPOSING:
        expected, got = rust.encode(text), ours.encode(text)
        assert (got.tokens, got.offsets) == (expected.tokens, expected.offsets), text
