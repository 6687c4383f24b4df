"""``return_overflowing_tokens`` with ``stride``: parity with transformers' fast tokenizers (tokenizers backend) on
the BERT (WordPiece), GPT-2 (byte-level BPE) and T5 (sentencepiece unigram) assets, for every output field."""

from __future__ import annotations

import itertools
import json

import pytest

from conftest import oracle
from tinyformers.tokenization.base import PreTrainedTokenizer
from tinyformers.tokenization.bert import BertTokenizer
from tinyformers.tokenization.gpt2 import GPT2Tokenizer
from tinyformers.tokenization.sentencepiece import T5Tokenizer

MODELS = ("bert", "gpt2", "t5")
ARTICLES = ("tech/001.txt", "business/002.txt", "sports/003.txt")
QUESTIONS = (
    "Who pushed through the law requiring the use of ink?",
    "What did the company report?",
    "How did the match end?",
)
SHORT_TEXTS = (
    "A short one.",
    "café naïve Ångström — “quoted” text, emoji 🤗 and 3.14159!",
    "",
)


@pytest.fixture(scope="module")
def articles(bbc_dir) -> list[str]:
    """Real news texts, cut to a few hundred tokens so that every window count stays readable."""
    return [(bbc_dir / name).read_text(encoding="utf-8")[:1500] for name in ARTICLES]


def _load(name: str, request) -> tuple:
    """(ours, transformers') tokenizers for one asset; GPT-2 gets its end-of-text token as pad token."""
    transformers = oracle("transformers")
    if name == "bert":
        folder = request.getfixturevalue("minilm_dir")
        return BertTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(str(folder))
    if name == "gpt2":
        folder = request.getfixturevalue("gpt2_tokenizer_dir")
        pad = {"pad_token": "<|endoftext|>"}
        return (
            GPT2Tokenizer.from_pretrained(folder, **pad),
            transformers.AutoTokenizer.from_pretrained(str(folder), **pad),
        )
    # A folder with only spiece.model, whose class AutoTokenizer cannot tell: T5Tokenizer is what it would return
    folder = request.getfixturevalue("t5_tokenizer_dir")
    return T5Tokenizer.from_pretrained(folder), transformers.T5Tokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module", params=MODELS)
def tokenizers(request) -> tuple:
    return _load(request.param, request)


@pytest.fixture(scope="module")
def bert(request) -> tuple:
    return _load("bert", request)


@pytest.fixture(scope="module")
def t5(request) -> tuple:
    return _load("t5", request)


def _plain(value):
    """Lists all the way down (tensors, and the offset tuples of transformers' lists), to compare values."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def assert_same(got, expected) -> None:
    """Same keys in the same order, same values and containers (tensor or list), same per-row encodings."""
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert type(got[key]).__name__ == type(value).__name__, key
        if hasattr(value, "dtype"):
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        assert _plain(got[key]) == _plain(value), key
    assert len(got.encodings) == len(expected.encodings)
    for row, encoding in enumerate(expected.encodings):
        assert got.tokens(row) == encoding.tokens, row
        assert got.word_ids(row) == expected.word_ids(row), row
        assert got.sequence_ids(row) == expected.sequence_ids(row), row


def check(tokenizers, *args, **kwargs):
    ours, theirs = tokenizers
    expected = theirs(*args, **kwargs)
    got = ours(*args, **kwargs)
    assert_same(got, expected)
    return got


ALL_FIELDS = dict(
    return_overflowing_tokens=True,
    return_offsets_mapping=True,
    return_special_tokens_mask=True,
    return_length=True,
    return_token_type_ids=True,
)


# --------------------------------------------------------------------------------------------------------------
# Single texts and batches
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_length, stride", [(16, 0), (32, 8), (64, 31), (128, 0)])
def test_batch_of_texts(tokenizers, articles, max_length, stride):
    texts = [*articles, *SHORT_TEXTS]
    got = check(tokenizers, texts, truncation=True, max_length=max_length, stride=stride, **ALL_FIELDS)
    mapping = got["overflow_to_sample_mapping"]
    assert sorted(set(mapping)) == list(range(len(texts))) and mapping == sorted(mapping)
    assert max(got["length"]) <= max_length


@pytest.mark.parametrize("max_length, stride", [(20, 5), (50, 0)])
def test_one_text_keeps_the_batch_dimension(tokenizers, articles, max_length, stride):
    got = check(tokenizers, articles[0], max_length=max_length, stride=stride, **ALL_FIELDS)
    assert isinstance(got["input_ids"][0], list) and len(got["input_ids"]) > 1
    assert set(got["overflow_to_sample_mapping"]) == {0}
    ours, theirs = tokenizers
    kwargs = dict(max_length=max_length, stride=stride, return_overflowing_tokens=True)
    assert ours.encode(articles[0], **kwargs) == theirs.encode(articles[0], **kwargs) == got["input_ids"]


def test_windows_overlap_by_stride(tokenizers, articles):
    ours, _ = tokenizers
    stride = 6
    got = check(
        tokenizers,
        articles[1],
        truncation=True,
        max_length=40,
        stride=stride,
        add_special_tokens=False,
        return_overflowing_tokens=True,
    )
    rows = got["input_ids"]
    assert len(rows) > 1 and all(
        previous[-stride:] == row[:stride] for previous, row in itertools.pairwise(rows)
    )
    assert [i for row in rows[:1] + [row[stride:] for row in rows[1:]] for i in row] == ours.encode(
        articles[1], add_special_tokens=False
    )


def test_left_truncation(tokenizers, articles, monkeypatch):
    for tokenizer in tokenizers:
        monkeypatch.setattr(tokenizer, "truncation_side", "left")
    check(tokenizers, [articles[0], SHORT_TEXTS[1]], truncation=True, max_length=24, stride=7, **ALL_FIELDS)
    check(
        tokenizers,
        QUESTIONS[0],
        articles[0],
        truncation="only_second",
        max_length=48,
        stride=10,
        **ALL_FIELDS,
    )


def test_words_split_beforehand(tokenizers, articles):
    words = [article.split()[:60] for article in articles]
    check(tokenizers, words, is_split_into_words=True, truncation=True, max_length=24, stride=4, **ALL_FIELDS)
    check(
        tokenizers,
        [question.split() for question in QUESTIONS],
        words,
        is_split_into_words=True,
        truncation="only_second",
        max_length=40,
        stride=8,
        **ALL_FIELDS,
    )


def test_without_truncation_each_text_is_one_row(tokenizers, articles):
    got = check(tokenizers, [articles[2], SHORT_TEXTS[0]], return_overflowing_tokens=True, stride=3)
    assert got["overflow_to_sample_mapping"] == [0, 1]
    check(tokenizers, SHORT_TEXTS[0], return_overflowing_tokens=True)


def test_stride_without_overflow_keeps_the_first_window(tokenizers, articles):
    ours, _ = tokenizers
    got = check(tokenizers, articles, truncation=True, max_length=30, stride=12)
    assert got["input_ids"] == ours(articles, truncation=True, max_length=30)["input_ids"]
    check(tokenizers, articles[0], truncation=True, max_length=30, stride=12, return_offsets_mapping=True)


def test_empty_texts(tokenizers, articles):
    """Empty texts give integer tensors; an empty second text of one text means no pair (in a batch, a pair)."""
    torch = oracle("torch")
    kwargs = dict(truncation=True, max_length=24, stride=4, padding=True, **ALL_FIELDS)
    got = check(tokenizers, "", return_tensors="pt", **kwargs)
    assert got["input_ids"].dtype == torch.int64
    check(tokenizers, ["", ""], return_tensors="pt", **kwargs)
    check(tokenizers, articles[0], "", **kwargs)
    check(tokenizers, [articles[0]], [""], **kwargs)
    check(tokenizers, "", "", **kwargs)


# --------------------------------------------------------------------------------------------------------------
# Pairs (question, context), as question answering cuts a long context
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("truncation", ["only_second", "longest_first", True])
@pytest.mark.parametrize("max_length, stride", [(48, 12), (96, 0), (160, 40)])
def test_batch_of_pairs(tokenizers, articles, truncation, max_length, stride):
    got = check(
        tokenizers,
        list(QUESTIONS),
        articles,
        truncation=truncation,
        max_length=max_length,
        stride=stride,
        **ALL_FIELDS,
    )
    assert max(got["length"]) <= max_length
    for row in range(len(got["input_ids"])):
        assert {s for s in got.sequence_ids(row) if s is not None} == {0, 1}


@pytest.mark.parametrize("truncation", ["only_second", "longest_first"])
def test_one_pair_and_pairs_as_tuples(tokenizers, articles, truncation):
    check(tokenizers, QUESTIONS[0], articles[0], truncation=truncation, max_length=40, stride=9, **ALL_FIELDS)
    pairs = list(zip(QUESTIONS, [articles[0], SHORT_TEXTS[0], articles[2]], strict=True))
    check(tokenizers, pairs, truncation=truncation, max_length=64, stride=16, **ALL_FIELDS)


def test_only_first_cuts_a_long_first_text(tokenizers, articles):
    check(
        tokenizers,
        articles,
        list(QUESTIONS),
        truncation="only_first",
        max_length=50,
        stride=10,
        **ALL_FIELDS,
    )


def test_longest_first_cuts_both_texts(tokenizers, articles):
    """Both texts longer than half of max_length: every window of one meets every window of the other."""
    got = check(tokenizers, articles[0], articles[1], truncation=True, max_length=80, stride=5, **ALL_FIELDS)
    assert len(got["input_ids"]) > 10


def test_max_length_of_only_special_tokens(tokenizers, articles):
    """Nothing but the special tokens fits: tokenizers keeps them alone, the whole texts overflow."""
    ours, _ = tokenizers
    single, pair = ours.backend.num_special_tokens_to_add(False), ours.backend.num_special_tokens_to_add(True)
    check(tokenizers, articles[0], truncation=True, max_length=single, **ALL_FIELDS)
    check(tokenizers, QUESTIONS[0], articles[0], truncation="only_second", max_length=pair, **ALL_FIELDS)
    # One token to share: the shorter text keeps none, so its windows are empty or whole
    check(tokenizers, QUESTIONS[1], articles[1], truncation=True, max_length=pair + 1, **ALL_FIELDS)


# --------------------------------------------------------------------------------------------------------------
# Padding and tensors
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [True, "max_length"])
def test_padding_and_tensors(tokenizers, articles, padding):
    torch = oracle("torch")
    got = check(
        tokenizers,
        list(QUESTIONS),
        articles,
        truncation="only_second",
        max_length=64,
        stride=16,
        padding=padding,
        return_tensors="pt",
        **ALL_FIELDS,
    )
    assert isinstance(got["overflow_to_sample_mapping"], torch.Tensor)
    assert got["input_ids"].shape == (len(got["overflow_to_sample_mapping"]), 64)


def test_padding_to_a_multiple_on_the_left(tokenizers, articles):
    check(
        tokenizers,
        [articles[0], SHORT_TEXTS[0]],
        truncation=True,
        max_length=48,
        stride=8,
        padding=True,
        pad_to_multiple_of=16,
        padding_side="left",
        **ALL_FIELDS,
    )


def test_padding_to_the_longest_first_window(tokenizers, articles):
    """padding=True pads to the longest *first* window of the texts: overflowing windows longer than it stay so."""
    ours, _ = tokenizers
    single = ours.backend.num_special_tokens_to_add(False)
    check(
        tokenizers,
        [articles[0], SHORT_TEXTS[0]],
        truncation=True,
        max_length=single,
        padding=True,
        **ALL_FIELDS,
    )


# --------------------------------------------------------------------------------------------------------------
# Type ids of overflow windows: each post-processor as tokenizers implements it
# --------------------------------------------------------------------------------------------------------------


def test_t5_overflow_windows_keep_their_sequence_type_id(t5, articles):
    """T5's pair template types both texts 0, but tokenizers applies it to the first window only."""
    got = check(
        t5, QUESTIONS[0], articles[0], truncation="only_second", max_length=40, stride=4, **ALL_FIELDS
    )
    assert set(got["token_type_ids"][0]) == {0} and 1 in got["token_type_ids"][1]


def test_roberta_processor_types_every_window(gpt2_tokenizer_dir, articles, tmp_path):
    """RobertaProcessing (<s> A </s></s> B </s>, all type 0) sets the type ids of the overflow windows too."""
    transformers = oracle("transformers")
    spec = json.loads(GPT2Tokenizer.from_pretrained(gpt2_tokenizer_dir).backend.to_str())
    spec["post_processor"] = {
        "type": "RobertaProcessing",
        "sep": ["<|endoftext|>", 50256],
        "cls": ["<|endoftext|>", 50256],
        "trim_offsets": True,
        "add_prefix_space": False,
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    theirs = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    ours = PreTrainedTokenizer.from_pretrained(tmp_path)
    got = check(
        (ours, theirs),
        list(QUESTIONS),
        articles,
        truncation="only_second",
        max_length=48,
        stride=8,
        **ALL_FIELDS,
    )
    assert {t for row in got["token_type_ids"] for t in row} == {0}


# --------------------------------------------------------------------------------------------------------------
# Requests that cannot be met: refused where transformers refuses them
# --------------------------------------------------------------------------------------------------------------


def test_stride_larger_than_max_length_without_special_tokens(bert):
    ours, theirs = bert
    kwargs = dict(truncation=True, max_length=5, stride=4)  # 5 - [CLS] - [SEP] leaves 3 < 4
    with pytest.raises(ValueError, match="effective max length of 3"):
        theirs("short", **kwargs)
    with pytest.raises(ValueError, match=r"stride=4 is larger than max_length=5 minus the 2 special tokens"):
        ours("short", **kwargs)  # refused even though this text needs no cut, as transformers does
    with pytest.raises(ValueError, match="stride=4"):
        ours("short", return_overflowing_tokens=True, **kwargs)
    # Without truncation the stride is unused, so not checked
    assert ours("short", stride=4)["input_ids"] == theirs("short", stride=4)["input_ids"]


def test_stride_as_large_as_a_window(bert, articles):
    """stride == what fits of a text: refused only when that text must be cut (tokenizers panics there)."""
    ours, theirs = bert
    kwargs = dict(truncation=True, max_length=5, stride=3, return_overflowing_tokens=True)
    assert_same(ours("a b", **kwargs), theirs("a b", **kwargs))
    with pytest.raises(BaseException, match="stride"):
        theirs(articles[0], **kwargs)
    with pytest.raises(ValueError, match="stride=3 must be smaller than the 3 tokens of the first sequence"):
        ours(articles[0], **kwargs)
    pair = dict(truncation="only_second", max_length=20, stride=8, return_overflowing_tokens=True)
    with pytest.raises(BaseException, match="stride"):  # the question takes 11 of the 17 tokens: 6 left
        theirs(QUESTIONS[0], articles[0], **pair)
    with pytest.raises(ValueError, match="stride=8 must be smaller than the 6 tokens of the second sequence"):
        ours(QUESTIONS[0], articles[0], **pair)


def test_pair_strategy_that_cannot_fit(bert, articles):
    ours, theirs = bert
    kwargs = dict(truncation="only_first", max_length=32, stride=4, return_overflowing_tokens=True)
    with pytest.raises(Exception, match="too short"):
        theirs(QUESTIONS[0], articles[0], **kwargs)
    with pytest.raises(ValueError, match="truncation='only_first' cannot fit the pair in 29 tokens"):
        ours(QUESTIONS[0], articles[0], **kwargs)
    single = dict(truncation="only_second", max_length=8, return_overflowing_tokens=True)
    with pytest.raises(Exception, match="Second sequence not provided"):
        theirs(articles[0], **single)
    with pytest.raises(ValueError, match="truncation='only_second' needs a text pair"):
        ours(articles[0], **single)


def test_negative_stride(bert):
    ours, theirs = bert
    with pytest.raises(OverflowError):
        theirs("text", truncation=True, max_length=8, stride=-1)
    with pytest.raises(ValueError, match="stride must be 0 or more, got -1"):
        ours("text", truncation=True, max_length=8, stride=-1)


def test_max_length_below_the_special_tokens(bert, articles):
    """A deliberate difference: tokenizers' unsigned arithmetic wraps around and returns the text uncut; we say why
    nothing can fit instead."""
    ours, theirs = bert
    kwargs = dict(truncation=True, max_length=1, return_overflowing_tokens=True)
    assert theirs(articles[0], **kwargs)["input_ids"] == [theirs.encode(articles[0])]
    with pytest.raises(ValueError, match="max_length=1 leaves no room: 2 special tokens are added"):
        ours(articles[0], **kwargs)
