"""sentencepiece: the .model reader, exact parity with the sentencepiece library (Unigram, BPE, Japanese), and T5's
tokenizer vs transformers (from spiece.model and from a transformers-saved tokenizer.json)."""

from __future__ import annotations

import json
import os

import pytest

from conftest import oracle
from tinyformers.formats.safetensors import CorruptWeightsError
from tinyformers.formats.sentencepiece_model import load_model_file
from tinyformers.tokenization.sentencepiece import SentencePieceTokenizer, T5Tokenizer
from tinyformers.tokenization.tokenizer import Tokenizer

MODELS = ["botchan_en_unigram_1000.model", "botchan_en_bpe_1000.model", "kyoto_ja_unigram_8000.model"]

TEXTS = [
    "Hello world.",
    "  extra   whitespace\tand\ttabs  \n new\r\nlines  ",
    "ＡＢＣ full-width ｌｅｔｔｅｒｓ ① ② ⑩ ﬁne ½ Ⅻ ㍻ ﾊﾟ ｶﾞ",
    "cafe\u0301 café ｅ\u0301 and a\u0300\u0323 combining marks",
    "unknown characters: ☃ 𝄞 ✓ 🤗 Ω ß",
    "日本語のテキストです。東京は晴れ、京都は雨。",
    "吾輩は猫である。名前はまだ無い。",
    "<s> </s> <unk> <pad> literal specials",
    "\u2581already \u2581\u2581 meta spaces",
    "numbers 3.14159 and 1,000,000 and ١٢٣",
    "",
    "   ",
    "a",
]


@pytest.fixture(scope="module")
def spm():
    return oracle("sentencepiece")


@pytest.fixture(scope="module")
def corpus(spm_dir):
    return (spm_dir / "botchan.txt").read_text(encoding="utf-8").splitlines()


# --------------------------------------------------------------------------------------------------------------
# The .model reader
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_model_reader_matches_protobuf(spm, spm_dir, name):
    pb = oracle("sentencepiece.sentencepiece_model_pb2")
    expected = pb.ModelProto()
    expected.ParseFromString((spm_dir / name).read_bytes())
    got = load_model_file(spm_dir / name)
    assert [(p.piece, p.score, p.type) for p in got.pieces] == [
        (p.piece, pytest.approx(p.score, abs=0), p.type) for p in expected.pieces
    ]
    for key, value in vars(got.trainer_spec).items():
        assert value == getattr(expected.trainer_spec, key), key
    for key, value in vars(got.normalizer_spec).items():
        assert value == getattr(expected.normalizer_spec, key), key


def test_model_reader_rejects_bad_files(spm_dir, tmp_path):
    data = (spm_dir / MODELS[0]).read_bytes()
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptWeightsError, match="truncated.model.*not a valid sentencepiece model"):
        load_model_file(truncated)
    noise = tmp_path / "noise.model"
    noise.write_bytes(os.urandom(4096))
    with pytest.raises(CorruptWeightsError, match="noise.model"):
        load_model_file(noise)
    text = tmp_path / "text.model"
    text.write_text("this is not a model\n" * 10)
    with pytest.raises(CorruptWeightsError, match="text.model"):
        SentencePieceTokenizer.from_model_file(text)
    with pytest.raises(FileNotFoundError, match="missing.model"):
        load_model_file(tmp_path / "missing.model")


# --------------------------------------------------------------------------------------------------------------
# Exact parity with the sentencepiece library
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_encode_decode_equal_sentencepiece_on_botchan(spm, spm_dir, corpus, name):
    theirs = spm.SentencePieceProcessor(model_file=str(spm_dir / name))
    ours = SentencePieceTokenizer.from_model_file(spm_dir / name)
    texts = corpus + TEXTS
    expected = theirs.encode(texts)
    got = [ours.encode(text) for text in texts]
    mismatches = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
    assert not mismatches, mismatches[:3]
    decoded = [ours.decode(ids) for ids in got]
    assert decoded == theirs.decode(expected)


@pytest.mark.parametrize("name", MODELS)
def test_decode_of_special_and_unknown_ids(spm, spm_dir, name):
    theirs = spm.SentencePieceProcessor(model_file=str(spm_dir / name))
    ours = SentencePieceTokenizer.from_model_file(spm_dir / name)
    ids = [theirs.bos_id(), *theirs.encode("a ☃☃ b"), theirs.unk_id(), theirs.eos_id(), 5, 6]
    assert ours.decode(ids) == theirs.decode(ids)
    assert ours.unk_token_id == theirs.unk_id() and ours.eos_token_id == theirs.eos_id()


# --------------------------------------------------------------------------------------------------------------
# T5: transformers' T5Tokenizer on a T5-layout spiece.model (pad 0, eos 1, unk 2)
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def t5_oracle(t5_tokenizer_dir):
    transformers = oracle("transformers")
    return transformers.T5Tokenizer.from_pretrained(str(t5_tokenizer_dir))


@pytest.fixture(scope="module")
def t5_saved_dir(t5_oracle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("t5_saved")
    t5_oracle.save_pretrained(str(folder))
    assert not (folder / "spiece.model").exists()  # transformers 5 writes tokenizer.json only
    return folder


T5_TEXTS = TEXTS + [
    "Translate English to German: The house is wonderful.",
    "The <extra_id_0> walks in <extra_id_1> park<extra_id_99>.",
    "<pad></s><unk> glued specials",
]


@pytest.mark.parametrize("source", ["spiece.model", "tokenizer.json"])
def test_t5_matches_transformers(t5_oracle, t5_tokenizer_dir, t5_saved_dir, corpus, source):
    ours = T5Tokenizer.from_pretrained(t5_tokenizer_dir if source == "spiece.model" else t5_saved_dir)
    assert len(ours.backend.get_vocab()) == len(t5_oracle) == 1100
    keys = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    for text in corpus[:400] + T5_TEXTS:
        expected, got = t5_oracle(text, **keys), ours(text, **keys)
        assert got["input_ids"] == expected["input_ids"], text
        assert got["special_tokens_mask"] == expected["special_tokens_mask"], text
        assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in expected["offset_mapping"]], (
            text
        )
        for skip in (False, True):
            ids = expected["input_ids"]
            assert ours.decode(ids, skip_special_tokens=skip) == t5_oracle.decode(
                ids, skip_special_tokens=skip
            )
    assert ours.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_99>"]) == [1099, 1000]
    assert (ours.pad_token_id, ours.eos_token_id, ours.unk_token_id) == (0, 1, 2)
    batch = (["a b", "c"], ["d e f", "g"])
    assert dict(ours(*batch, padding=True)) == dict(t5_oracle(*batch, padding=True))


def test_t5_saved_by_us_loads_in_transformers(t5_oracle, t5_tokenizer_dir, tmp_path, corpus):
    transformers = oracle("transformers")
    T5Tokenizer.from_pretrained(t5_tokenizer_dir).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "T5Tokenizer"
    reloaded = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in corpus[:50] + T5_TEXTS:
        assert reloaded(text)["input_ids"] == t5_oracle(text)["input_ids"], text


def test_t5_tokenizer_json_matches_rust_tokenizers(t5_saved_dir, corpus):
    tokenizers = oracle("tokenizers")
    rust = tokenizers.Tokenizer.from_file(str(t5_saved_dir / "tokenizer.json"))
    ours = Tokenizer.from_file(t5_saved_dir / "tokenizer.json")
    for text in corpus[:200] + T5_TEXTS:
        expected, got = rust.encode(text), ours.encode(text)
        assert (got.ids, got.tokens, got.offsets) == (expected.ids, expected.tokens, expected.offsets), text
    assert ours.normalizer.normalize_str("ｅ\u0301 ①") == rust.normalizer.normalize_str("ｅ\u0301 ①")
    assert json.loads(ours.to_str())["normalizer"] == json.loads(rust.to_str())["normalizer"]


def test_t5_folder_without_vocabulary(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor spiece.model"):
        T5Tokenizer.from_pretrained(tmp_path)


# --------------------------------------------------------------------------------------------------------------
# Llama-style decoders (tokenizer.json stages without a model file to compare against)
# --------------------------------------------------------------------------------------------------------------


def test_llama_decoder_chain_matches_tokenizers():
    from tinyformers.tokenization.decoders import DECODERS  # (the module that registers the decoders)
    from tinyformers.tokenization.stages import build

    decoders = oracle("tokenizers.decoders")
    spec = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ],
    }
    ours = build(DECODERS, spec)
    rust = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    for tokens in (
        ["\u2581Hello", "\u2581world", "<0xE2>", "<0x98>", "<0x83>", "!"],
        ["\u2581bad", "<0xFF>", "<0xE2>", "x"],
        ["<0x41>"],
        [],
    ):
        assert ours.decode(tokens) == rust.decode(tokens)
