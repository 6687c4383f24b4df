"""WordPiece / BertTokenizer parity with transformers (tokenizers backend) on the real all-MiniLM-L6-v2 files."""

from __future__ import annotations

import shutil

import pytest

import conftest
from tinyformers.tokenization.bert import BertTokenizer
from tinyformers.tokenization.tokenizer import Tokenizer
from tinyformers.tokenization.wordpiece import WordPiece

TEXTS = [
    "Hello, world! This is a plain English sentence.",
    "café naïve Ångström résumé façade Über",
    "你好世界",
    "mixed 中文 and English text",
    "日本語のテキストです。カタカナとひらがな",
    "emoji 👋🏽 and 🤗 and 🥰 together",
    "visit https://example.com/path?q=1&x=y#frag now",
    "mail me at john.doe+tag@example.co.uk please",
    "def f(x): return x**2  # comment",
    "whitespace    runs   here",
    "tabs\tand\nnewlines\r\nmixed\u3000ideographic space",
    "control\x00chars\x07in\x1ctext\x7f and \ufffd replacement",
    "zero\u200bwidth\u200djoiner\u00adsoft hyphen",
    "a" * 150 + " long words " + "b" * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "numbers 3.14159 and 1,000,000 and 42nd and ١٢٣",
    "punctuation!!! ??? ... --- ((nested)) [brackets] {braces} $100 +5 <tag> a=b ^ | ~",
    "Don't stop. It's John's car; we've been there, they're here!",
    "ΟΔΟΣ Σίσυφος İstanbul ǅungla ﬁne",
    "",
    "   ",
    "[CLS] inside [SEP] text [MASK] here [PAD] [UNK]",
    "Ünïcödé ÀÉÎÕÜ ĄĘŁŃŚŹŻ",
    "\u0301leading combining mark",
    "한국어 텍스트",
    "𠀀 rare CJK extension and \U0002b81f edge",
]

PAIRS = [
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("short", "a much longer second sequence with many more words than the first one has"),
    ("a much longer first sequence with many more words than the second one has", "short"),
]


@pytest.fixture(scope="module")
def oracle(hf_minilm_tokenizer):
    return hf_minilm_tokenizer


@pytest.fixture(scope="module")
def rust(minilm_dir):
    tokenizers = conftest.oracle("tokenizers")
    tokenizer = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@pytest.fixture(scope="module")
def ours(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


def test_oracle_is_the_expected_class(oracle):
    assert type(oracle).__name__ == "BertTokenizer"


@pytest.mark.parametrize("text", TEXTS)
def test_single_text_matches_transformers(ours, oracle, text):
    keys = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    expected = oracle(text, **keys)
    got = ours(text, **keys)
    for key in ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask"):
        assert got[key] == expected[key], key
    assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in expected["offset_mapping"]]
    assert got.word_ids() == expected.word_ids()
    assert got.tokens() == expected.tokens()


@pytest.mark.parametrize("text", TEXTS)
def test_pipeline_matches_rust_tokenizers(rust, minilm_dir, text):
    pipeline = Tokenizer.from_file(minilm_dir / "tokenizer.json")
    expected = rust.encode(text)
    got = pipeline.encode(text)
    assert got.ids == expected.ids
    assert got.tokens == expected.tokens
    assert got.offsets == expected.offsets
    assert got.word_ids == expected.word_ids
    assert got.type_ids == expected.type_ids
    assert got.special_tokens_mask == expected.special_tokens_mask


def test_normalizer_and_pre_tokenizer_match_rust(rust, minilm_dir):
    pipeline = Tokenizer.from_file(minilm_dir / "tokenizer.json")
    for text in TEXTS:
        assert pipeline.normalizer.normalize_str(text) == rust.normalizer.normalize_str(text), text
        normalized = rust.normalizer.normalize_str(text)
        assert pipeline.pre_tokenizer.pre_tokenize_str(normalized) == rust.pre_tokenizer.pre_tokenize_str(
            normalized
        )


@pytest.mark.parametrize("first, second", PAIRS)
def test_pairs_match_transformers(ours, oracle, first, second):
    keys = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    expected = oracle(first, second, **keys)
    got = ours(first, second, **keys)
    assert dict(got) == {k: list(v) for k, v in expected.items()}
    assert got.sequence_ids() == expected.sequence_ids()


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second", True])
@pytest.mark.parametrize("max_length", [12, 17, 20])
def test_pair_truncation_matches_transformers(ours, oracle, strategy, max_length):
    for first, second in PAIRS:
        kwargs = dict(truncation=strategy, max_length=max_length)
        try:
            expected = oracle(first, second, **kwargs)
        except Exception:
            with pytest.raises(ValueError, match="truncat"):
                ours(first, second, **kwargs)
            continue
        assert ours(first, second, **kwargs)["input_ids"] == expected["input_ids"]
        assert ours(first, second, **kwargs)["token_type_ids"] == expected["token_type_ids"]


def test_long_text_truncation_uses_model_max_length(ours, oracle):
    text = " ".join(["tokenization"] * 400)
    expected = oracle(text, truncation=True)
    got = ours(text, truncation=True)
    assert len(got["input_ids"]) == 512
    assert got["input_ids"] == expected["input_ids"]
    left = ours.truncation_side
    try:
        ours.truncation_side = oracle.truncation_side = "left"
        assert (
            ours(text + " end", truncation=True, max_length=20)["input_ids"]
            == oracle(text + " end", truncation=True, max_length=20)["input_ids"]
        )
    finally:
        ours.truncation_side = oracle.truncation_side = left


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(padding=True),
        dict(padding="longest", return_special_tokens_mask=True),
        dict(padding="max_length", max_length=24, truncation=True),
        dict(padding=True, pad_to_multiple_of=8),
        dict(padding=True, padding_side="left"),
        dict(padding="max_length", truncation=True, max_length=8, return_offsets_mapping=True),
    ],
)
def test_batch_padding_matches_transformers(ours, oracle, kwargs):
    batch = TEXTS[:8]
    expected = oracle(batch, **kwargs)
    got = ours(batch, **kwargs)
    assert set(got) == set(expected)
    for key in expected:
        assert [list(map(tuple, r)) if key == "offset_mapping" else r for r in got[key]] == [
            list(map(tuple, r)) if key == "offset_mapping" else r for r in expected[key]
        ], key


def test_batch_of_pairs_matches_transformers(ours, oracle):
    firsts = [p[0] for p in PAIRS]
    seconds = [p[1] for p in PAIRS]
    expected = oracle(firsts, seconds, padding=True, truncation="only_second", max_length=22)
    assert dict(ours(firsts, seconds, padding=True, truncation="only_second", max_length=22)) == dict(
        expected
    )
    assert dict(ours(list(PAIRS), padding=True)) == dict(oracle(list(PAIRS), padding=True))


def test_tensors_match_transformers(ours, oracle):
    torch = conftest.oracle("torch")
    got = ours(TEXTS[:4], padding=True, return_tensors="pt")
    expected = oracle(TEXTS[:4], padding=True, return_tensors="pt")
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    single = ours("one text", return_tensors="np")
    assert single["input_ids"].shape == oracle("one text", return_tensors="np")["input_ids"].shape


def test_pretokenized_input_matches_transformers(ours, oracle):
    words = ["Hello", "wonderful", "World!", "café"]
    expected = oracle(words, is_split_into_words=True, return_offsets_mapping=True)
    got = ours(words, is_split_into_words=True, return_offsets_mapping=True)
    assert got["input_ids"] == expected["input_ids"]
    assert got.word_ids() == expected.word_ids()
    assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in expected["offset_mapping"]]


@pytest.mark.parametrize("skip", [False, True])
def test_decode_matches_transformers(ours, oracle, skip):
    for text in TEXTS + [f"{a} {b}" for a, b in PAIRS]:
        ids = oracle(text)["input_ids"]
        assert ours.decode(ids, skip_special_tokens=skip) == oracle.decode(ids, skip_special_tokens=skip), (
            text
        )
    batch = oracle(TEXTS[:5], padding=True)["input_ids"]
    assert ours.batch_decode(batch, skip_special_tokens=skip) == oracle.batch_decode(
        batch, skip_special_tokens=skip
    )
    ids = oracle("Don't stop. It's here , isn't it ?")["input_ids"]
    assert ours.decode(ids, clean_up_tokenization_spaces=True) == oracle.decode(
        ids, clean_up_tokenization_spaces=True
    )


def test_vocabulary_api_matches_transformers(ours, oracle):
    assert ours.vocab_size == oracle.vocab_size
    assert len(ours) == len(oracle)
    assert ours.get_vocab() == oracle.get_vocab()
    assert ours.all_special_tokens == oracle.all_special_tokens
    assert ours.all_special_ids == oracle.all_special_ids
    for name in ("pad", "cls", "sep", "mask", "unk"):
        assert getattr(ours, f"{name}_token") == getattr(oracle, f"{name}_token")
        assert getattr(ours, f"{name}_token_id") == getattr(oracle, f"{name}_token_id")
    assert ours.bos_token is None and oracle.bos_token is None
    assert ours.model_max_length == oracle.model_max_length
    tokens = ours.tokenize("Tokenization of unaffable words")
    assert tokens == oracle.tokenize("Tokenization of unaffable words")
    assert ours.convert_tokens_to_ids(tokens) == oracle.convert_tokens_to_ids(tokens)
    assert ours.convert_tokens_to_ids("notarealtoken!!") == oracle.convert_tokens_to_ids("notarealtoken!!")
    ids = ours.convert_tokens_to_ids(tokens)
    assert ours.convert_ids_to_tokens(ids) == oracle.convert_ids_to_tokens(ids)
    assert ours.convert_tokens_to_string(tokens) == oracle.convert_tokens_to_string(tokens)
    assert ours.encode("a pair", "of texts") == oracle.encode("a pair", "of texts")


def test_added_tokens_match_transformers(minilm_dir):
    transformers = conftest.oracle("transformers")
    oracle = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    ours = BertTokenizer.from_pretrained(minilm_dir)
    for tokenizer in (ours, oracle):
        assert tokenizer.add_tokens(["newword", "NewToken", "mal formed"]) == 3
        assert tokenizer.add_special_tokens({"additional_special_tokens": ["<ent>", "<|sep|>"]}) == 2
    texts = [
        "a newword inside, NEWWORD and newwords and xnewwordy",
        "the NewToken and newtoken; mal formed MAL FORMED",
        "x<ent>y <|sep|> [CLS] <ENT> <ent>",
    ]
    for text in texts:
        expected = oracle(text, return_offsets_mapping=True)
        got = ours(text, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"], text
        assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in expected["offset_mapping"]], (
            text
        )
        assert got.tokens() == expected.tokens()
        ids = expected["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == oracle.decode(ids, skip_special_tokens=skip)
    assert ours.all_special_tokens == oracle.all_special_tokens
    assert len(ours) == len(oracle)
    assert ours.get_vocab() == oracle.get_vocab()


def test_legacy_vocab_txt_gives_identical_ids(tmp_path, minilm_dir, ours, oracle):
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    legacy = BertTokenizer.from_pretrained(tmp_path)
    assert legacy(TEXTS, padding=True)["input_ids"] == oracle(TEXTS, padding=True)["input_ids"]
    assert legacy("[CLS] special [MASK]").tokens() == oracle("[CLS] special [MASK]").tokens()
    assert legacy.decode(oracle(TEXTS[0])["input_ids"], skip_special_tokens=True) == oracle.decode(
        oracle(TEXTS[0])["input_ids"], skip_special_tokens=True
    )
    transformers = conftest.oracle("transformers")
    legacy_oracle = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert legacy(TEXTS)["input_ids"] == legacy_oracle(TEXTS)["input_ids"]


def test_legacy_options_follow_config(tmp_path, minilm_dir):
    transformers = conftest.oracle("transformers")
    shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")
    text = "Café NAÏVE Ångström 中文"
    for options in (dict(do_lower_case=False), dict(strip_accents=False), dict(tokenize_chinese_chars=False)):
        expected = transformers.BertTokenizer.from_pretrained(str(tmp_path), **options)(text)["input_ids"]
        assert BertTokenizer.from_pretrained(tmp_path, **options)(text)["input_ids"] == expected, options


def test_save_pretrained_loads_in_transformers(tmp_path, ours, oracle):
    transformers = conftest.oracle("transformers")
    ours.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / name).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
    reloaded = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(reloaded).__name__ == "BertTokenizer"
    assert reloaded(TEXTS, padding=True)["input_ids"] == oracle(TEXTS, padding=True)["input_ids"]
    tokenizers = conftest.oracle("tokenizers")
    rust = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    # A freshly loaded transformers tokenizer writes the file's padding and truncation sections back, as ours
    # does (a used one writes those its last call set).
    transformers.AutoTokenizer.from_pretrained(oracle.name_or_path).save_pretrained(tmp_path / "theirs")
    rust_theirs = tokenizers.Tokenizer.from_file(str(tmp_path / "theirs" / "tokenizer.json"))
    assert [rust.encode(t).ids for t in TEXTS] == [rust_theirs.encode(t).ids for t in TEXTS]


def test_transformers_save_loads_in_ours(tmp_path, minilm_dir):
    transformers = conftest.oracle("transformers")
    oracle = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    oracle.add_tokens(["brandnewword"])
    oracle.add_special_tokens({"additional_special_tokens": ["<special>"]})
    oracle.save_pretrained(str(tmp_path))
    ours = BertTokenizer.from_pretrained(tmp_path)
    text = "a brandnewword and <special> here " + TEXTS[1]
    assert ours(text)["input_ids"] == oracle(text)["input_ids"]
    assert ours.all_special_tokens == oracle.all_special_tokens
    ours.save_pretrained(tmp_path / "again")
    again = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "again"))
    assert again(text)["input_ids"] == oracle(text)["input_ids"]
    assert again.all_special_tokens == oracle.all_special_tokens


def test_bbc_news_matches_rust(bbc_dir, rust, minilm_dir):
    pipeline = Tokenizer.from_file(minilm_dir / "tokenizer.json")
    files = sorted(bbc_dir.glob("*/*.txt"))[::7]  # ~320 articles from every topic (~0.7 MB)
    assert len(files) > 300
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        expected = rust.encode(text)
        got = pipeline.encode(text)
        assert got.ids == expected.ids, path.name
        assert got.offsets == expected.offsets, path.name


def test_wordpiece_greedy_longest_match_and_unknown_words():
    vocab = {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "una": 4, "##ff": 5, "a": 6}
    model = WordPiece(vocab, max_input_chars_per_word=12)
    assert [t[1] for t in model.tokenize("unaffable")] == ["una", "##ff", "##able"]
    assert model.tokenize("unaffablex") == ((0, "[UNK]", 0, 10),)  # one miss: the whole word is unknown
    assert model.tokenize("a" * 13) == ((0, "[UNK]", 0, 13),)  # too long
    assert WordPiece.from_dict(model.to_dict()).vocab == vocab
