"""PreTrainedTokenizer / BatchEncoding behaviour: the transformers API, file handling and clear errors."""

from __future__ import annotations

import json
import logging

import pytest

import conftest
from tinyformers.tokenization.base import BatchEncoding, PreTrainedTokenizer
from tinyformers.tokenization.bert import BertTokenizer
from tinyformers.tokenization.stages import TokenizerFileError


@pytest.fixture(scope="module")
def oracle(hf_minilm_tokenizer):
    return hf_minilm_tokenizer


@pytest.fixture
def ours(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


def test_generic_class_loads_tokenizer_json(minilm_dir, oracle):
    generic = PreTrainedTokenizer.from_pretrained(minilm_dir)
    text = "The generic tokenizer reads tokenizer.json as it is."
    assert generic(text)["input_ids"] == oracle(text)["input_ids"]
    assert generic.model_max_length == 512


def test_batch_encoding_access_and_tensors(ours):
    torch = conftest.oracle("torch")
    batch = ours(["a short one", "and a slightly longer one"], padding=True, return_tensors="pt")
    assert isinstance(batch, BatchEncoding)
    assert batch.input_ids is batch["input_ids"]
    assert batch.input_ids.dtype == torch.int64 and batch.input_ids.shape[0] == 2
    assert batch.to("cpu") is batch
    assert batch.word_ids(1)[:3] == [None, 0, 1]
    assert batch[0].tokens[0] == "[CLS]"
    with pytest.raises(AttributeError, match="no key or attribute 'nope'"):
        _ = batch.nope
    as_numpy = ours(["x y", "z"], padding=True).convert_to_tensors("np")
    assert as_numpy["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_return_flags_match_transformers(ours, oracle):
    kwargs = dict(return_token_type_ids=False, return_attention_mask=False, return_length=True)
    assert dict(ours("some text", **kwargs)) == dict(oracle("some text", **kwargs))
    assert ours.encode("plain ids", add_special_tokens=False) == oracle.encode(
        "plain ids", add_special_tokens=False
    )
    assert (
        ours("plain", "pair", add_special_tokens=False)["token_type_ids"]
        == oracle("plain", "pair", add_special_tokens=False)["token_type_ids"]
    )


def test_too_long_input_warns_once_instead_of_failing(ours, oracle, caplog):
    text = "word " * 600
    with caplog.at_level(logging.WARNING, logger="tinyformers"):
        ids = ours(text)["input_ids"]
        ours(text)
    assert ids == oracle(text)["input_ids"] and len(ids) == 602
    warnings = [
        r
        for r in caplog.records
        if r.name.startswith("tinyformers") and "longer than the specified" in r.getMessage()
    ]
    assert len(warnings) == 1 and "602 > 512" in warnings[0].getMessage()


def test_padding_without_pad_token_is_a_clear_error(minilm_dir):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir, pad_token=None)
    assert tokenizer.pad_token is None and tokenizer.pad_token_id is None
    with pytest.raises(ValueError, match="padding needs a pad token.*tokenizer.pad_token = "):
        tokenizer(["a", "b c"], padding=True)
    tokenizer.pad_token = "[MASK]"
    assert tokenizer(["a", "b c"], padding=True)["input_ids"][0][-1] == tokenizer.mask_token_id


def test_ragged_tensors_are_a_clear_error(ours):
    with pytest.raises(ValueError, match="needs equal lengths.*padding=True"):
        ours(["one", "two three four"], return_tensors="pt")


def test_bad_arguments_are_clear_errors(ours):
    with pytest.raises(ValueError, match="padding='sideways' is not valid"):
        ours("x", padding="sideways")
    with pytest.raises(ValueError, match="truncation='middle' is not valid"):
        ours("x", truncation="middle")
    with pytest.raises(ValueError, match="text must be a str"):
        ours(42)
    with pytest.raises(ValueError, match="text has 2 items but text_pair has 1"):
        ours(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="only_second' needs a text pair"):
        ours("a b c d e f", truncation="only_second", max_length=4)
    with pytest.raises(ValueError, match="unknown special token key 'foo_token'"):
        ours.add_special_tokens({"foo_token": "<foo>"})


def test_invalid_tokenizer_json_is_a_clear_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "WordPiece", ')
    with pytest.raises(TokenizerFileError, match=r"tokenizer.json is not valid JSON .*line 1"):
        PreTrainedTokenizer.from_pretrained(tmp_path)


def test_unknown_model_type_lists_supported_ones(tmp_path, minilm_dir):
    spec = json.loads((minilm_dir / "tokenizer.json").read_text())
    spec["model"]["type"] = "SuperModel"
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(
        TokenizerFileError, match="unsupported model type 'SuperModel'; supported types: .*WordPiece"
    ):
        PreTrainedTokenizer.from_pretrained(tmp_path)


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json in"):
        PreTrainedTokenizer.from_pretrained(tmp_path)
    with pytest.raises(OSError, match="neither a local directory nor a hub id"):
        BertTokenizer.from_pretrained(str(tmp_path / "does-not-exist"))
    (tmp_path / "tokenizer_config.json").write_text("[1, 2")
    with pytest.raises(TokenizerFileError, match="tokenizer_config.json is not valid JSON"):
        BertTokenizer.from_pretrained(tmp_path)


def test_kwargs_override_config_and_survive_save(tmp_path, minilm_dir):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir, model_max_length=16, padding_side="left")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert len(tokenizer("word " * 40, truncation=True)["input_ids"]) == 16
    assert tokenizer(["a", "b c"], padding=True)["input_ids"][0][0] == tokenizer.pad_token_id
    tokenizer.save_pretrained(tmp_path)
    again = BertTokenizer.from_pretrained(tmp_path)
    assert (again.model_max_length, again.padding_side) == (16, "left")
    assert again.chat_template == tokenizer.chat_template
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer"
    assert "name_or_path" not in config


def test_save_overwrites_atomically(tmp_path, ours):
    (tmp_path / "tokenizer.json").write_text("stale")
    files = ours.save_pretrained(tmp_path)
    assert sorted(p.rsplit("/", 1)[-1] for p in files) == sorted(p.name for p in tmp_path.iterdir())
    assert json.loads((tmp_path / "tokenizer.json").read_text())["model"]["type"] == "WordPiece"
    with pytest.raises(NotADirectoryError, match="pass a directory"):
        ours.save_pretrained(tmp_path / "tokenizer.json")


def test_add_tokens_counts_only_new_ones(ours, oracle, minilm_dir):
    transformers = conftest.oracle("transformers")
    fresh_oracle = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    for tokenizer in (ours, fresh_oracle):
        assert tokenizer.add_tokens(["hello", "zzyzxword"]) == 2  # "hello" keeps its vocabulary id but counts
        assert tokenizer.add_tokens(["zzyzxword"]) == 0
        assert tokenizer.add_special_tokens({"bos_token": "<bos>"}) == 1
    assert (ours.bos_token, ours.bos_token_id) == (fresh_oracle.bos_token, fresh_oracle.bos_token_id)
    assert ours("<bos> zzyzxword")["input_ids"] == fresh_oracle("<bos> zzyzxword")["input_ids"]


def test_pad_method_matches_transformers(ours, oracle):
    features = [ours("first example"), ours("a second, longer example here")]
    expected = oracle.pad([dict(f) for f in features], padding=True)
    assert dict(ours.pad(features, padding=True)) == dict(expected)


def test_package_import_stays_light():
    import subprocess
    import sys

    code = "import sys, tinyformers.tokenization as t; print('torch' in sys.modules, 'regex' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
