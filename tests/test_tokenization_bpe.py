"""Byte-level BPE / GPT2Tokenizer parity with transformers and tokenizers on GPT-2's real vocab.json + merges.txt."""

from __future__ import annotations

import copy
import json
import pickle
import shutil

import pytest

import conftest
from tinyformers.tokenization.base import PreTrainedTokenizer
from tinyformers.tokenization.bpe import BPE, read_merges_file
from tinyformers.tokenization.byte_level import BYTE_TO_CHAR, to_byte_chars
from tinyformers.tokenization.decoders import ByteLevelDecoder
from tinyformers.tokenization.gpt2 import GPT2Tokenizer
from tinyformers.tokenization.stages import TokenizerFileError
from tinyformers.tokenization.tokenizer import Tokenizer

TEXTS = [
    "Hello world! This is a plain English sentence.",
    " Hello world",
    "trailing spaces   ",
    "whitespace    runs   here\t\tand\n\n\nnewlines \n \n",
    "def f(x):\n\tif x > 0:\n        return x ** 2  # square\n\treturn -x\n",
    "I'm sure they'll say it's John's, we've been, you're right, I'd go. DON'T SHOUT'S",
    "café naïve Ångström résumé façade Über",
    "你好世界 mixed 中文 and 日本語のテキスト 한국어",
    "emoji 👋🏽 and 🤗, family 👨‍👩‍👧‍👦, flag 🇫🇷, heart ❤️",
    "Arabic مرحبا بالعالم and Hebrew שלום",
    "numbers 3.14159 and 1,000,000 and 42nd and ١٢٣ and ½",
    "punctuation!!! ??? ... --- ((nested)) [brackets] {braces} $100 +5 <tag> a=b ^ | ~",
    "a<|endoftext|>b and <|endoftext|> then<|endoftext|><|endoftext|>",
    "<|endoftext|>",
    "control\x00chars\x07in\x1ctext\x7f and \ufffd \x85\xa0\u2028\u3000\u200b zero width",
    "",
    "   ",
    "\n",
    "x" * 300 + " supercalifragilisticexpialidocious antidisestablishmentarianism",
    "https://example.com/path?q=1&x=y#frag and john.doe+tag@example.co.uk",
    "ΟΔΟΣ Σίσυφος İstanbul ǅungla ﬁne",
    "\u0301leading combining mark and e\u0301 decomposed",
]

PAIRS = [
    ("What is the capital of France?", "Paris is the capital."),
    ("short", " a second sequence with a leading space"),
]


@pytest.fixture(scope="module")
def oracle(hf_gpt2_tokenizer):
    return hf_gpt2_tokenizer


@pytest.fixture(scope="module")
def rust(oracle):
    return oracle.backend_tokenizer


@pytest.fixture(scope="module")
def ours(gpt2_tokenizer_dir):
    return GPT2Tokenizer.from_pretrained(gpt2_tokenizer_dir)


@pytest.fixture(scope="module")
def pipeline(rust):
    """Our pipeline loaded from the very tokenizer.json the oracle runs."""
    return Tokenizer.from_str(rust.to_str())


def offsets(rows):
    return [tuple(o) for o in rows]


def test_oracle_is_the_expected_class(oracle):
    assert type(oracle).__name__ == "GPT2Tokenizer"


def test_byte_table_is_gpt2s():
    assert len(set(BYTE_TO_CHAR)) == 256
    assert BYTE_TO_CHAR[ord(" ")] == "Ġ" and BYTE_TO_CHAR[ord("\n")] == "Ċ" and BYTE_TO_CHAR[ord("A")] == "A"
    assert BYTE_TO_CHAR[0] == "\u0100" and BYTE_TO_CHAR[0xAD] == "\u0143"
    assert to_byte_chars("é ") == "Ã©Ġ"


@pytest.mark.parametrize("text", TEXTS)
def test_single_text_matches_transformers(ours, oracle, text):
    keys = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    expected = oracle(text, **keys)
    got = ours(text, **keys)
    assert set(got) == set(expected)  # input_ids and attention_mask (no token_type_ids), as transformers
    for key in ("input_ids", "attention_mask", "special_tokens_mask"):
        assert got[key] == expected[key], key
    assert offsets(got["offset_mapping"]) == offsets(expected["offset_mapping"])
    assert got.tokens() == expected.tokens()
    assert got.word_ids() == expected.word_ids()


@pytest.mark.parametrize("text", TEXTS)
def test_pipeline_matches_rust_tokenizers(pipeline, rust, text):
    expected = rust.encode(text)
    got = pipeline.encode(text)
    assert got.ids == expected.ids
    assert got.tokens == expected.tokens
    assert got.offsets == expected.offsets
    assert got.word_ids == expected.word_ids
    assert got.special_tokens_mask == expected.special_tokens_mask


def test_pre_tokenizer_matches_rust(pipeline, rust):
    for text in TEXTS:
        assert pipeline.pre_tokenizer.pre_tokenize_str(text) == rust.pre_tokenizer.pre_tokenize_str(text), (
            text
        )


def test_pairs_and_batches_match_transformers(ours, oracle):
    for first, second in PAIRS:
        expected = oracle(first, second, return_offsets_mapping=True)
        got = ours(first, second, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"]
        assert offsets(got["offset_mapping"]) == offsets(expected["offset_mapping"])
        assert got.sequence_ids() == expected.sequence_ids()
    assert ours(TEXTS)["input_ids"] == oracle(TEXTS)["input_ids"]
    assert (
        ours(TEXTS, truncation=True, max_length=7)["input_ids"]
        == oracle(TEXTS, truncation=True, max_length=7)["input_ids"]
    )


def test_padding_needs_a_pad_token(gpt2_tokenizer_dir, oracle):
    tokenizer = GPT2Tokenizer.from_pretrained(gpt2_tokenizer_dir)
    assert tokenizer.pad_token is None and oracle.pad_token is None
    with pytest.raises(ValueError, match="pad token"):
        tokenizer(TEXTS[:3], padding=True)
    transformers = conftest.oracle("transformers")
    padded_oracle = transformers.AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir), padding_side="left")
    padded_oracle.pad_token = padded_oracle.eos_token
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # what batched generation with a decoder-only model needs
    assert dict(tokenizer(TEXTS[:5], padding=True)) == dict(padded_oracle(TEXTS[:5], padding=True))


@pytest.mark.parametrize("skip", [False, True])
def test_decode_is_lossless_and_matches_transformers(ours, oracle, skip):
    for text in TEXTS:
        ids = oracle(text)["input_ids"]
        decoded = ours.decode(ids, skip_special_tokens=skip)
        assert decoded == oracle.decode(ids, skip_special_tokens=skip)
        if not skip:
            assert decoded == text
    batch = [oracle(t)["input_ids"] for t in TEXTS]
    assert ours.batch_decode(batch, skip_special_tokens=skip) == oracle.batch_decode(
        batch, skip_special_tokens=skip
    )


def test_decode_of_broken_utf8_matches_transformers(ours, oracle):
    ids = oracle("👋🏽 é 中")["input_ids"]
    byte_ids = [ours.convert_tokens_to_ids(c) for c in to_byte_chars("👋🏽 é 中")]
    for cut in (ids[:1], ids[1:], ids[2:-1], byte_ids[1:], byte_ids[:-1], byte_ids[::2], byte_ids[::-1]):
        assert ours.decode(cut) == oracle.decode(cut), cut
    tokens = ours.convert_ids_to_tokens(ids)
    assert ours.convert_tokens_to_string(tokens) == oracle.convert_tokens_to_string(tokens)
    # A token that is not byte-level contributes its own UTF-8 bytes, as in tokenizers.
    decoder = ByteLevelDecoder()
    assert decoder.decode(["Hello", "Ġ", "wörld 😀", "Ġ!"]) == oracle.backend_tokenizer.decoder.decode(
        ["Hello", "Ġ", "wörld 😀", "Ġ!"]
    )


def test_add_prefix_space_matches_transformers(gpt2_tokenizer_dir):
    transformers = conftest.oracle("transformers")
    oracle = transformers.AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir), add_prefix_space=True)
    ours = GPT2Tokenizer.from_pretrained(gpt2_tokenizer_dir, add_prefix_space=True)
    for text in TEXTS:
        expected = oracle(text, return_offsets_mapping=True)
        got = ours(text, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"], text
        assert offsets(got["offset_mapping"]) == offsets(expected["offset_mapping"]), text
        assert ours.decode(got["input_ids"]) == oracle.decode(expected["input_ids"])
    words = ["Hello", "wonderful", "wörld", "!"]
    plain_oracle = transformers.AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir))
    plain_ours = GPT2Tokenizer.from_pretrained(gpt2_tokenizer_dir)
    for mine, theirs in ((ours, oracle), (plain_ours, plain_oracle)):  # with and without the prefix space
        expected = theirs(words, is_split_into_words=True, return_offsets_mapping=True)
        got = mine(words, is_split_into_words=True, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"]
        assert offsets(got["offset_mapping"]) == offsets(expected["offset_mapping"])
        assert got.word_ids() == expected.word_ids()


def test_vocabulary_api_matches_transformers(ours, oracle):
    assert ours.vocab_size == oracle.vocab_size == 50257
    assert len(ours) == len(oracle)
    assert ours.get_vocab() == oracle.get_vocab()
    assert ours.model_input_names == oracle.model_input_names == ["input_ids", "attention_mask"]
    assert ours.model_max_length == oracle.model_max_length == 1024
    assert ours.all_special_tokens == oracle.all_special_tokens
    assert ours.all_special_ids == oracle.all_special_ids
    for name in ("bos", "eos", "unk", "pad"):
        assert getattr(ours, f"{name}_token") == getattr(oracle, f"{name}_token")
        assert getattr(ours, f"{name}_token_id") == getattr(oracle, f"{name}_token_id")
    text = "Tokenization of unaffable words, naïvely"
    assert ours.tokenize(text) == oracle.tokenize(text)
    assert ours.encode(text) == oracle.encode(text)


def test_save_pretrained_loads_in_transformers(tmp_path, ours, oracle):
    transformers = conftest.oracle("transformers")
    ours.save_pretrained(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
    reloaded = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(reloaded).__name__ == "GPT2Tokenizer"
    assert reloaded(TEXTS)["input_ids"] == oracle(TEXTS)["input_ids"]
    assert reloaded.all_special_tokens == oracle.all_special_tokens
    tokenizers = conftest.oracle("tokenizers")
    rust = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert [rust.encode(t).ids for t in TEXTS] == [oracle(t)["input_ids"] for t in TEXTS]
    again = GPT2Tokenizer.from_pretrained(tmp_path)
    assert again(TEXTS)["input_ids"] == oracle(TEXTS)["input_ids"]


def test_transformers_save_loads_in_ours(tmp_path, gpt2_tokenizer_dir):
    transformers = conftest.oracle("transformers")
    oracle = transformers.AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir))
    oracle.add_tokens(["brandnewword", "<tool>"])
    oracle.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    oracle.save_pretrained(str(tmp_path))
    assert (tmp_path / "tokenizer.json").is_file()
    ours = GPT2Tokenizer.from_pretrained(tmp_path)
    texts = [t + " a brandnewword <tool> and <|im_start|>user" for t in TEXTS]
    for text in texts:
        expected = oracle(text, return_offsets_mapping=True)
        got = ours(text, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"]
        assert offsets(got["offset_mapping"]) == offsets(expected["offset_mapping"])
        for skip in (False, True):
            ids = expected["input_ids"]
            assert ours.decode(ids, skip_special_tokens=skip) == oracle.decode(ids, skip_special_tokens=skip)
    assert ours.all_special_tokens == oracle.all_special_tokens
    assert len(ours) == len(oracle)
    # The generic loader runs the saved tokenizer.json as it is, with the same result.
    generic = PreTrainedTokenizer.from_pretrained(tmp_path)
    assert generic(texts)["input_ids"] == oracle(texts)["input_ids"]


def test_copies_and_pickles_tokenize_alike(ours, oracle):
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert clone(TEXTS)["input_ids"] == oracle(TEXTS)["input_ids"]
        model = clone.backend.model
        assert model.tokenize.__self__ is model._cache and model._cache.compute.__self__ is model


def test_legacy_files_and_tokenizer_json_agree(tmp_path, gpt2_tokenizer_dir, ours, oracle):
    # A folder with only vocab.json + merges.txt (no config): the same tokenizer, with GPT-2's defaults.
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(gpt2_tokenizer_dir / name, tmp_path / name)
    bare = GPT2Tokenizer.from_pretrained(tmp_path)
    assert bare(TEXTS)["input_ids"] == oracle(TEXTS)["input_ids"]
    assert bare.eos_token == "<|endoftext|>" and bare.eos_token_id == 50256
    # The model writes merges back in the form it read them.
    merges = read_merges_file(gpt2_tokenizer_dir / "merges.txt")
    assert len(merges) == 50000 and merges[0] == ("Ġ", "t")
    vocab = ours.get_vocab()
    as_pairs = BPE(vocab, [list(m) for m in merges[:100]]).to_dict()["merges"]
    as_strings = BPE(vocab, [" ".join(m) for m in merges[:100]]).to_dict()["merges"]
    assert as_pairs[0] == ["Ġ", "t"] and as_strings[0] == "Ġ t"
    assert BPE.from_dict(BPE(vocab, as_strings).to_dict()).to_dict()["merges"] == as_strings


@pytest.mark.parametrize("options", [dict(add_bos_token=True), dict(add_bos_token=True, add_eos_token=True)])
def test_add_bos_and_eos_tokens_match_transformers(tmp_path, gpt2_tokenizer_dir, options):
    transformers = conftest.oracle("transformers")
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(gpt2_tokenizer_dir / name, tmp_path / name)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, **options}), encoding="utf-8")
    oracle = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = GPT2Tokenizer.from_pretrained(tmp_path)
    for args in (("Hello world",), PAIRS[0]):
        expected = oracle(*args, return_token_type_ids=True, return_special_tokens_mask=True)
        assert dict(ours(*args, return_token_type_ids=True, return_special_tokens_mask=True)) == dict(
            expected
        )


def test_bad_files_fail_clearly(tmp_path, gpt2_tokenizer_dir):
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\nthree parts here\n", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="line 3"):
        read_merges_file(tmp_path / "merges.txt")
    with pytest.raises(TokenizerFileError, match="not in the vocabulary"):
        BPE({"a": 0, "b": 1}, ["a b"])
    with pytest.raises(NotImplementedError, match="dropout"):
        BPE({"a": 0}, [], dropout=0.1)
    with pytest.raises(FileNotFoundError, match=r"vocab.json \+ merges.txt"):
        GPT2Tokenizer.from_pretrained(tmp_path)


def test_bbc_news_matches_rust(bbc_dir, rust, pipeline):
    files = sorted(bbc_dir.glob("*/*.txt"))[::15]  # ~150 articles from every topic (~330 KB)
    files.append(bbc_dir / "sports" / "199.txt")  # the latin-1 one
    size = 0
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        size += len(text.encode("utf-8"))
        expected = rust.encode(text)
        got = pipeline.encode(text)
        assert got.ids == expected.ids, path.name
        assert got.offsets == expected.offsets, path.name
        assert pipeline.decode(got.ids) == text
    assert size > 300_000


# --------------------------------------------------------------------------------------------------------------
# BPE options that GPT-2 does not use, against tokenizers on small hand-made vocabularies
# --------------------------------------------------------------------------------------------------------------

SMALL_TEXTS = [
    "hello world",
    "low lower lowest newer wider",
    "héllo wörld ❤ 中",
    "zzz qqq hello",
    "",
    "ab ba aab",
]


def small_vocab(extra=()):
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["<unk>", *letters, "he", "ll", "hell", "hello", "lo", "low", "er", "wo", "wor", "worl", "world"]
    tokens += [*extra]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}


SMALL_MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("l", "o"), ("lo", "w"), ("e", "r")]
SMALL_MERGES += [("w", "o"), ("wo", "r"), ("wor", "l"), ("worl", "d")]


def rust_bpe_tokenizer(model, pre_tokenizer="whitespace"):
    tokenizers = conftest.oracle("tokenizers")
    tokenizer = tokenizers.Tokenizer(model)
    if pre_tokenizer == "whitespace":
        tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    elif pre_tokenizer == "bytelevel":
        tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tokenizer


def assert_same_encodings(rust, texts):
    ours = Tokenizer.from_str(rust.to_str())
    assert json.loads(ours.to_str())["model"] == json.loads(rust.to_str())["model"]
    for text in texts:
        expected = rust.encode(text)
        got = ours.encode(text)
        assert (got.ids, got.tokens, got.offsets) == (expected.ids, expected.tokens, expected.offsets), text


@pytest.mark.parametrize(
    "options",
    [
        dict(unk_token="<unk>"),
        dict(unk_token="<unk>", fuse_unk=True),
        dict(),  # no unknown token: unknown characters are dropped
        dict(ignore_merges=True, unk_token="<unk>"),
        dict(unk_token="<unk>", end_of_word_suffix="</w>"),
    ],
)
def test_bpe_options_match_rust(options):
    tokenizers = conftest.oracle("tokenizers")
    vocab = small_vocab()
    merges = list(SMALL_MERGES)
    if "end_of_word_suffix" in options:
        vocab = small_vocab(["o</w>", "d</w>", "r</w>", "w</w>", "hello</w>", "ld</w>", "world</w>"])
        merges += [("hell", "o</w>"), ("l", "d</w>"), ("wor", "ld</w>")]
    model = tokenizers.models.BPE(vocab, merges, **options)
    assert_same_encodings(rust_bpe_tokenizer(model), SMALL_TEXTS + ["lowered helloworld", "xyz"])


def test_ignore_merges_takes_known_words_whole():
    tokenizers = conftest.oracle("tokenizers")
    # "lower" and "xyz" are words of the vocabulary that the merges never build
    vocab = small_vocab(["lower", "xyz"])
    texts = ["hello lower lowerx xyz xyzz"]
    for ignore in (False, True):
        model = tokenizers.models.BPE(vocab, SMALL_MERGES, unk_token="<unk>", ignore_merges=ignore)
        assert_same_encodings(rust_bpe_tokenizer(model), texts)
    tokens = Tokenizer.from_str(rust_bpe_tokenizer(model).to_str()).encode(texts[0]).tokens
    assert tokens == ["hello", "lower", "low", "er", "x", "xyz", "x", "y", "z", "z"]


def test_continuing_subword_prefix_matches_rust():
    tokenizers = conftest.oracle("tokenizers")
    vocab = {
        t: i for i, t in enumerate(["<unk>", "h", "e", "l", "o", "##e", "##l", "##o", "##ll", "he", "hell"])
    }
    model = tokenizers.models.BPE(
        vocab,
        [("h", "##e"), ("##l", "##l"), ("he", "##ll")],
        unk_token="<unk>",
        continuing_subword_prefix="##",
    )
    assert_same_encodings(rust_bpe_tokenizer(model), ["hello hell ell hex", "olé"])


def test_byte_fallback_matches_rust():
    tokenizers = conftest.oracle("tokenizers")
    vocab = small_vocab([f"<0x{b:02X}>" for b in range(256)] + ["▁"])
    model = tokenizers.models.BPE(vocab, SMALL_MERGES, unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    rust = rust_bpe_tokenizer(model, pre_tokenizer=None)
    texts = SMALL_TEXTS + ["emoji 👋🏽 and 🤗 ok", "ÀÉÎ", "hello\nworld\t!"]
    assert_same_encodings(rust, texts)
    # Without the byte tokens of a character, byte fallback gives way to the (fused) unknown token.
    partial = small_vocab([f"<0x{b:02X}>" for b in range(0xE0)])
    model = tokenizers.models.BPE(partial, SMALL_MERGES, unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    assert_same_encodings(rust_bpe_tokenizer(model, pre_tokenizer=None), texts)


def test_byte_level_bpe_from_tokenizers_library_matches(gpt2_tokenizer_dir):
    """A small byte-level BPE trained by tokenizers, with a ByteLevel post-processor that trims offsets."""
    tokenizers = conftest.oracle("tokenizers")
    corpus = [t for t in TEXTS if t] * 3
    for add_prefix_space in (False, True):
        rust = tokenizers.Tokenizer(tokenizers.models.BPE())
        rust.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        rust.decoder = tokenizers.decoders.ByteLevel()
        rust.post_processor = tokenizers.processors.ByteLevel(
            trim_offsets=True, add_prefix_space=add_prefix_space
        )
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=400,
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        rust.train_from_iterator(corpus, trainer)
        assert_same_encodings(rust, TEXTS + [f"{a}  {b}  " for a, b in PAIRS])
        ours = Tokenizer.from_str(rust.to_str())
        for first, second in PAIRS:
            expected, got = rust.encode(first, second), ours.encode(first, second)
            assert (got.ids, got.offsets, got.type_ids) == (expected.ids, expected.offsets, expected.type_ids)
        ids = ours.encode(TEXTS[8]).ids
        assert ours.decode(ids) == rust.decode(ids) == " " * add_prefix_space + TEXTS[8]


LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def test_byte_level_after_a_normalizer_and_a_split_matches_rust(rust):
    """Llama-3 style (Split by regex, then ByteLevel without its own regex), behind a normalizer that moves
    offsets: the byte-level words carry explicit spans back to the original text."""
    tokenizers = conftest.oracle("tokenizers")
    pre = tokenizers.pre_tokenizers
    variant = tokenizers.Tokenizer.from_str(rust.to_str())
    variant.normalizer = tokenizers.normalizers.Sequence(
        [tokenizers.normalizers.NFKC(), tokenizers.normalizers.Replace("x", "yy")]
    )
    texts = TEXTS + [
        "ﬁne x² ①  Xx x",
        "I'M HERE'S 12345 x\r\n\r\n y",
        "a\u0300\u0323 \u1100\u1161\u11a8 ｅ\u0301",
    ]
    for pre_tokenizer in (
        pre.ByteLevel(add_prefix_space=True),
        pre.Sequence(
            [
                pre.Split(tokenizers.Regex(LLAMA3_PATTERN), "isolated"),
                pre.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        ),
    ):
        variant.pre_tokenizer = pre_tokenizer
        ours = Tokenizer.from_str(variant.to_str())
        for text in texts:
            expected, got = variant.encode(text), ours.encode(text)
            assert (got.ids, got.tokens, got.offsets) == (expected.ids, expected.tokens, expected.offsets), (
                text
            )


def test_roberta_processing_trims_offsets_like_rust(rust):
    tokenizers = conftest.oracle("tokenizers")
    for add_prefix_space in (False, True):
        roberta = tokenizers.Tokenizer.from_str(rust.to_str())
        roberta.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        roberta.post_processor = tokenizers.processors.RobertaProcessing(
            ("<|endoftext|>", 50256),
            ("<|endoftext|>", 50256),
            trim_offsets=True,
            add_prefix_space=add_prefix_space,
        )
        ours = Tokenizer.from_str(roberta.to_str())
        for text in TEXTS[:6] + ["  two leading spaces", "x   "]:
            expected, got = roberta.encode(text), ours.encode(text)
            assert (got.ids, got.offsets) == (expected.ids, expected.offsets), text
        expected, got = roberta.encode(*PAIRS[1]), ours.encode(*PAIRS[1])
        assert (got.ids, got.offsets) == (expected.ids, expected.offsets)


def test_legacy_added_tokens_json_matches_transformers(tmp_path, gpt2_tokenizer_dir):
    transformers = conftest.oracle("transformers")
    for path in gpt2_tokenizer_dir.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<pad>": 50257, "<|sep|>": 50258}))
    special_map = json.loads((tmp_path / "special_tokens_map.json").read_text())
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({**special_map, "pad_token": "<pad>"}))
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = GPT2Tokenizer.from_pretrained(tmp_path)
    assert len(ours) == len(theirs) == 50259
    for text in ["a<pad>b <|sep|> c", "x <pad><|sep|>"]:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text
        ids = theirs(text)["input_ids"]
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True)
