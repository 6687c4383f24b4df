"""LlamaTokenizer (sentencepiece-style BPE with byte fallback) and llama-type GGUF tokenizers vs transformers.

The vocabulary is sentencepiece's botchan BPE test model, optionally extended with the 256 ``<0xNN>`` byte
pieces; tokenizer.json files are written by transformers itself (its LlamaTokenizer converts the ``.model``).
"""

from __future__ import annotations

import json

import pytest

from conftest import oracle
from tinyformers.tokenization.llama import LlamaTokenizer, generate_merges
from tinyformers.tokenization.tokenizer import Tokenizer

TEXTS = [
    "Hello world",
    " leading space and trailing space ",
    "  two  spaces\tand a tab\nand a newline",
    "☃ snow, 𝄞 clef and café",
    "<s>Hi</s> there <unk> unknown",
    "The cat sat on the mat.<s> again",
    "",
    " ",
    "▁already escaped",
    "digits 12345 and punctuation!?",
]
BYTES = [f"<0x{b:02X}>" for b in range(256)]


@pytest.fixture(scope="module")
def transformers():
    return oracle("transformers")


@pytest.fixture(scope="module")
def corpus(spm_dir):
    return (spm_dir / "botchan.txt").read_text(encoding="utf-8").splitlines()[:150] + TEXTS


@pytest.fixture(scope="module")
def model_dir(spm_dir, tmp_path_factory):
    """A folder with only a legacy tokenizer.model (the botchan BPE model)."""
    folder = tmp_path_factory.mktemp("llama_model")
    (folder / "tokenizer.model").write_bytes((spm_dir / "botchan_en_bpe_1000.model").read_bytes())
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    return folder


@pytest.fixture(scope="module")
def json_dir(model_dir, transformers, tmp_path_factory):
    """transformers' tokenizer.json of that model, plus the 256 byte pieces and a ``<s> $A`` post-processor."""
    folder = tmp_path_factory.mktemp("llama_json")
    transformers.AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(folder))
    spec = json.loads((folder / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    for byte in BYTES:
        vocab[byte] = len(vocab)
    spec["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<s>", "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
    }
    (folder / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    return folder


def assert_same(ours, theirs, texts, pairs=True):
    keys = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    for text in texts:
        expected, got = theirs(text, **keys), ours(text, **keys)
        assert got["input_ids"] == expected["input_ids"], text
        assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in expected["offset_mapping"]], (
            text
        )
        assert got["special_tokens_mask"] == expected["special_tokens_mask"], text
        for skip in (False, True):
            ids = expected["input_ids"]
            assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(
                ids, skip_special_tokens=skip
            ), text
    if pairs:
        batch = (["a b", "c", "longer text here"], ["d e f", "g", "h"])
        assert ours(*batch)["input_ids"] == theirs(*batch)["input_ids"]


def test_generate_merges_equals_transformers(transformers, model_dir):
    from transformers.tokenization_utils_base import generate_merges as theirs

    from tinyformers.formats.sentencepiece_model import load_model_file

    pieces = load_model_file(model_dir / "tokenizer.model").pieces
    vocab = {p.piece: i for i, p in enumerate(pieces)}
    scores = {p.piece: p.score for p in pieces}
    assert generate_merges(vocab) == theirs(vocab)
    assert generate_merges(vocab, scores) == theirs(vocab, scores)


def test_from_tokenizer_model_matches_transformers(transformers, model_dir, corpus):
    theirs = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    ours = LlamaTokenizer.from_pretrained(model_dir)
    assert type(theirs).__name__ == "LlamaTokenizer" and ours.padding_side == theirs.padding_side == "left"
    assert (ours.bos_token_id, ours.eos_token_id, ours.unk_token_id) == (1, 2, 0)
    assert len(ours) == len(theirs)
    assert_same(ours, theirs, corpus)


@pytest.mark.parametrize(
    "options",
    [{}, {"add_bos_token": True, "add_eos_token": True}, {"legacy": True}, {"add_prefix_space": False}],
    ids=["file", "bos+eos", "legacy", "no-prefix-space"],
)
def test_from_tokenizer_json_matches_transformers(transformers, json_dir, corpus, tmp_path, options):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_text((json_dir / name).read_text())
    # transformers 5 ignores add_bos_token/add_eos_token of tokenizer_config.json when there is a
    # tokenizer.json (its post-processor decides), but not as from_pretrained arguments: pass them so.
    flags = {k: v for k, v in options.items() if k.startswith("add_") and k.endswith("_token")}
    config = {"tokenizer_class": "LlamaTokenizer", **{k: v for k, v in options.items() if k not in flags}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path), **flags)
    ours = LlamaTokenizer.from_pretrained(tmp_path, **flags)
    assert len(ours) == len(theirs) == 1256
    assert_same(ours, theirs, corpus[-40:] if options else corpus)
    assert ours.tokenize("☃") == theirs.tokenize("☃")  # byte fallback: <0xE2> <0x98> <0x83>


def test_saved_llama_tokenizer_reloads_in_transformers(transformers, json_dir, corpus, tmp_path):
    ours = LlamaTokenizer.from_pretrained(json_dir)
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "LlamaTokenizer"
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in corpus[-20:]:
        assert theirs(text)["input_ids"] == ours(text)["input_ids"], text


def test_legacy_llama_tokenizer_json_matches_rust(json_dir, corpus):
    """Llama 2's own tokenizer.json: Prepend + Replace normalizers instead of Metaspace (a "▁" after every
    special token too), read as a plain tokenizer.json."""
    tokenizers = oracle("tokenizers")
    spec = json.loads((json_dir / "tokenizer.json").read_text())
    spec["normalizer"] = {
        "type": "Sequence",
        "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ],
    }
    spec["pre_tokenizer"] = None
    rust = tokenizers.Tokenizer.from_str(json.dumps(spec))
    ours = Tokenizer.from_str(json.dumps(spec))
    for text in corpus:
        expected, got = rust.encode(text), ours.encode(text)
        assert (got.ids, got.tokens, got.offsets) == (expected.ids, expected.tokens, expected.offsets), text
        assert ours.decode(got.ids, False) == rust.decode(expected.ids, skip_special_tokens=False)


# --------------------------------------------------------------------------------------------------------------
# GGUF files with tokenizer.ggml.model == "llama"
# --------------------------------------------------------------------------------------------------------------


def write_llama_gguf(path, spm_dir, with_merges: bool):
    gguf = oracle("gguf")
    from tinyformers.formats.sentencepiece_model import load_model_file

    pieces = load_model_file(spm_dir / "botchan_en_bpe_1000.model").pieces
    tokens = [p.piece for p in pieces] + BYTES + ["<tool>", "<|ctrl|>"]
    scores = [p.score for p in pieces] + [0.0] * 258
    types = [p.type for p in pieces] + [6] * 256 + [4, 3]  # 6 byte, 4 user-defined, 3 control
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    if with_merges:
        vocab = {token: index for index, token in enumerate(tokens)}
        writer.add_token_merges([f"{a} {b}" for a, b in generate_merges(vocab)])  # not the score order
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("with_merges", [False, True], ids=["derived-merges", "file-merges"])
def test_llama_gguf_tokenizer_matches_transformers(transformers, spm_dir, corpus, tmp_path, with_merges):
    from tinyformers.tokenization.gguf import tokenizer_from_gguf

    write_llama_gguf(tmp_path / "tiny.gguf", spm_dir, with_merges)
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="tiny.gguf")
    ours = tokenizer_from_gguf(tmp_path / "tiny.gguf")
    assert len(ours) == len(theirs) == 1258
    assert ours.special_tokens_map == theirs.special_tokens_map
    texts = corpus + ["<tool> x<|ctrl|>y and <tool>", "snow ☃<|ctrl|>"]
    assert_same(ours, theirs, texts)
    assert ours("x")["input_ids"][0] == 1  # bos by default for this tokenizer type
