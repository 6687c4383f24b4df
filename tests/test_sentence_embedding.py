"""The sentence-embedding pipeline against sentence-transformers itself: the real all-MiniLM-L6-v2 folder (mean
pooling, Normalize, ``max_seq_length`` 256) and folders built from its files that ask for other poolings, no
normalisation, lower-casing or nothing at all; long (> 256 tokens) and short texts."""

from __future__ import annotations

import importlib.metadata
import json
import shutil

import pytest
import torch

from conftest import cached_oracle, file_key, oracle
from fixtures import MINILM_TOKENIZER_FILES
from tinyformers.pipelines import pipeline

ATOL = 1e-5
SHORT = ["A man is eating food.", "The new movie is awesome", "Café naïve — 你好世界 👋", "x"]


@pytest.fixture(scope="module")
def texts(bbc_dir) -> list[str]:
    """Two whole BBC articles (several hundred tokens each: past 256, and one past 512) among short sentences."""
    articles = [(bbc_dir / "business" / name).read_text(encoding="utf-8") for name in ("001.txt", "002.txt")]
    return [SHORT[0], articles[0], SHORT[1], articles[0] + "\n" + articles[1], *SHORT[2:]]


def reference(folder, texts: list[str], settings) -> torch.Tensor:
    """sentence-transformers' ``encode`` of ``texts`` with the folder (cached by its settings and the weights)."""
    sentence_transformers = oracle("sentence_transformers")

    def compute():
        model = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
        return model.encode(texts, convert_to_tensor=True, batch_size=3).cpu()

    inputs = {
        "settings": settings,
        "texts": texts,
        "weights": file_key(folder / "model.safetensors"),
        "sentence_transformers": importlib.metadata.version("sentence-transformers"),
    }
    return cached_oracle("sentence-transformers-encode", inputs, compute)


def test_texts_are_long_enough(minilm_dir, texts):
    from tinyformers import AutoTokenizer

    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(minilm_dir)(texts)["input_ids"]]
    assert max(lengths) > 512 and sum(n > 256 for n in lengths) == 2 and min(lengths) < 10


def test_minilm_equals_sentence_transformers_on_long_and_short_texts(minilm_dir, texts):
    # The folder says max_seq_length 256: before it was read, long texts ran to 512 tokens and gave other vectors.
    embed = pipeline("sentence-embedding", model=str(minilm_dir))
    want = reference(minilm_dir, texts, "minilm")
    for batch_size in (1, 4):
        got = embed(texts, batch_size=batch_size, return_tensors=True)
        torch.testing.assert_close(torch.stack(got), want, atol=ATOL, rtol=0)
    assert embed.setup.max_seq_length == 256 and embed.setup.normalize


def write_folder(
    folder, minilm_dir, pooling: dict | None, normalize: bool, sentence_bert: dict | None = None
):
    """A sentence-transformers folder with MiniLM's weights and tokenizer and the given modules."""
    folder.mkdir()
    (folder / "model.safetensors").symlink_to(minilm_dir / "model.safetensors")
    for name in ("config.json", *MINILM_TOKENIZER_FILES):
        shutil.copy(minilm_dir / name, folder / name)
    if pooling is None:  # a plain encoder folder: no modules.json at all
        return folder
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    modules.append(
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    )
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 384, **pooling})
    )
    sentence_bert = (
        {"max_seq_length": 256, "do_lower_case": False} if sentence_bert is None else sentence_bert
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps(sentence_bert))
    return folder


FOLDERS = {
    # the older form of 1_Pooling/config.json: one flag per mode
    "cls": ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, False, None),
    # the newer form: pooling_mode by name
    "max": ({"pooling_mode": "max"}, False, None),
    # several modes are concatenated in sentence-transformers' order, whatever order the file lists them in
    "concatenated": (
        {
            "pooling_mode_lasttoken": True,
            "pooling_mode_weightedmean_tokens": True,
            "pooling_mode_mean_sqrt_len_tokens": True,
        },
        True,
        {"max_seq_length": 128},
    ),
    # no modules.json: sentence-transformers makes mean pooling without normalisation, 512 tokens
    "plain": (None, False, None),
}


@pytest.mark.parametrize("name", FOLDERS)
def test_folder_settings_equal_sentence_transformers(name, minilm_dir, texts, tmp_path):
    pooling, normalize, sentence_bert = FOLDERS[name]
    folder = write_folder(tmp_path / name, minilm_dir, pooling, normalize, sentence_bert)
    got = pipeline("sentence-embedding", model=str(folder))(texts, batch_size=3, return_tensors=True)
    want = reference(folder, texts, FOLDERS[name])
    torch.testing.assert_close(torch.stack(got), want, atol=ATOL, rtol=0)
    if not normalize:
        assert not torch.allclose(
            want.norm(dim=1), torch.ones(len(texts))
        )  # the test would see a normalisation


def test_do_lower_case_lowers_the_texts_for_a_cased_tokenizer(minilm_dir, tmp_path):
    folder = write_folder(
        tmp_path / "lower", minilm_dir, {"pooling_mode": "mean"}, True, {"do_lower_case": True}
    )
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    texts = ["Hello World, THIS is Cased.", "hello world, this is cased."]
    got = torch.stack(pipeline("sentence-embedding", model=str(folder))(texts, return_tensors=True))
    torch.testing.assert_close(got, reference(folder, texts, "lower"), atol=ATOL, rtol=0)
    torch.testing.assert_close(got[0], got[1], atol=ATOL, rtol=0)


def test_call_parameters_override_the_folder(minilm_dir, texts):
    embed = pipeline("sentence-embedding", model=str(minilm_dir))
    raw = embed(texts[1], normalize=False, pooling="cls", max_length=64, return_tensors=True)
    features = pipeline("feature-extraction", model=embed.model, tokenizer=embed.tokenizer)
    tokens = features(texts[1], tokenize_kwargs={"max_length": 64}, return_tensors=True)[0]
    assert tokens.shape[0] == 64
    torch.testing.assert_close(raw, tokens[0], atol=ATOL, rtol=0)


def test_modules_it_cannot_run_are_a_clear_error(minilm_dir, tmp_path):
    folder = write_folder(tmp_path / "dense", minilm_dir, {"pooling_mode": "mean"}, False)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(
        ValueError, match=r"modules\.json has a Dense module \(2_Dense\).*use sentence-transformers"
    ):
        pipeline("sentence-embedding", model=str(folder))


def test_an_unknown_pooling_mode_is_a_clear_error(minilm_dir, tmp_path):
    folder = write_folder(tmp_path / "odd", minilm_dir, {"pooling_mode": "median"}, False)
    with pytest.raises(
        ValueError, match=r"1_Pooling/config\.json: pooling=\['median'\] is not a pooling mode"
    ):
        pipeline("sentence-embedding", model=str(folder))
    embed = pipeline("sentence-embedding", model=str(minilm_dir))
    with pytest.raises(ValueError, match="is not a pooling mode; use one of cls, max, mean"):
        embed("text", pooling="first")
