"""Tokenizer bugs found in review, each checked against the real library where there is one.

1. ``generate(stop_strings=..., tokenizer=...)`` with a sentencepiece tokenizer (its decoder has no
   tokenizer.json form); decoders say which bytes a token stands for.
2. A legacy Llama tokenizer.json with a normalized added token.
3. Tokenizer modules import without torch.
4. A missing dependency is reported as such, not as an unsupported stage.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest
import torch

import tinyformers.tokenization
from conftest import oracle

transformers = oracle("transformers")
tokenizers = oracle("tokenizers")


# ---- 1. stop strings with sentencepiece tokenizers -----------------------------------------------------------
VOCAB = 1104  # the botchan models' 1000 pieces (+ T5's 100 sentinels)


@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory):
    """A small random Llama checkpoint, as transformers' model and as ours."""
    from tinyformers.models.llama import LlamaForCausalLM

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=0.5,  # peaked logits: greedy text varies instead of repeating one token
    )
    ref = transformers.LlamaForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("spm_gen")
    ref.save_pretrained(folder)
    return ref, LlamaForCausalLM.from_pretrained(folder)


@pytest.fixture(scope="module")
def spm_model_dir(spm_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("spm_bpe")
    (folder / "tokenizer.model").write_bytes((spm_dir / "botchan_en_bpe_1000.model").read_bytes())
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    return folder


def _tokenizer_pairs(kind, spm_dir, spm_model_dir, t5_tokenizer_dir):
    from tinyformers.tokenization.sentencepiece import SentencePieceTokenizer, T5Tokenizer

    if kind == "sentencepiece":
        ours = SentencePieceTokenizer.from_model_file(spm_model_dir / "tokenizer.model")
        return ours, transformers.AutoTokenizer.from_pretrained(str(spm_model_dir))
    return T5Tokenizer.from_pretrained(t5_tokenizer_dir), transformers.T5Tokenizer.from_pretrained(
        str(t5_tokenizer_dir)
    )


@pytest.mark.parametrize("kind", ["sentencepiece", "t5"])
def test_stop_strings_with_sentencepiece_tokenizers_match_transformers(
    kind, llama_pair, spm_dir, spm_model_dir, t5_tokenizer_dir
):
    ref, model = llama_pair
    ours_tok, their_tok = _tokenizer_pairs(kind, spm_dir, spm_model_dir, t5_tokenizer_dir)
    ids = ours_tok("The old man went to the town", return_tensors="pt")["input_ids"][:, :6]
    kwargs = dict(max_new_tokens=20, eos_token_id=None, pad_token_id=0, do_sample=False)
    plain = model.generate(ids, **kwargs)
    new = plain[0, ids.shape[1] :].tolist()
    assert min(new) > 2, "the generated ids must avoid the control pieces, whose text the libraries differ on"
    text = their_tok.decode(new)
    assert len(text) > 12, text
    middle = len(text) // 2
    stops = [[text[middle : middle + 3]], [text[middle - 4 : middle + 2], "zzzzqx"], ["zzzzqx"]]
    stopped_early = False
    for stop in stops:
        ours = model.generate(ids, tokenizer=ours_tok, stop_strings=stop, **kwargs)
        with torch.inference_mode():
            theirs = ref.generate(ids, tokenizer=their_tok, stop_strings=stop, **kwargs)
        assert ours.tolist() == theirs.tolist(), stop
        stopped_early |= ours.shape[1] < plain.shape[1]
    assert stopped_early
    assert ours.tolist() == plain.tolist()  # a string never produced changes nothing


def test_decoders_say_which_bytes_a_token_stands_for(spm_model_dir):
    """A byte-level decoder reads every token as bytes; a byte-fallback one only ``<0xNN>`` pieces (else None)."""
    from tinyformers.tokenization import Tokenizer
    from tinyformers.tokenization.sentencepiece import SentencePieceTokenizer

    rust_byte_level = tokenizers.decoders.ByteLevel()
    ours_byte_level = Tokenizer.from_str(
        json.dumps({"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "ByteLevel"}})
    ).decoder
    # Byte characters, an added token in them, and one that is not: its own UTF-8 bytes (as Rust decodes it)
    for token in ["Ġhello", "Ċ", "Ã©", "<|im_start|>", "wörld 😀"]:
        assert ours_byte_level.token_bytes(token).decode() == rust_byte_level.decode([token]), token

    llama_decoder = json.loads(
        transformers.AutoTokenizer.from_pretrained(str(spm_model_dir)).backend_tokenizer.to_str()
    )["decoder"]
    rust_llama = tokenizers.decoders.Sequence([tokenizers.decoders.ByteFallback()])
    ours_llama = Tokenizer.from_str(
        json.dumps({"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": llama_decoder})
    ).decoder
    for decoder in (
        ours_llama,
        SentencePieceTokenizer.from_model_file(spm_model_dir / "tokenizer.model").backend.decoder,
    ):
        assert decoder.token_bytes("<0x41>") == rust_llama.decode(["<0x41>"]).encode()
        assert decoder.token_bytes("<0xE2>") == b"\xe2"
        assert decoder.token_bytes("▁the") is None
        assert decoder.token_bytes("<0xZZ>") is None


# ---- 2. legacy Llama tokenizer.json with a normalized added token ---------------------------------------------
def test_legacy_llama_json_matches_normalized_added_tokens_like_transformers(spm_model_dir, tmp_path):
    from tinyformers.tokenization.llama import LlamaTokenizer

    transformers.AutoTokenizer.from_pretrained(str(spm_model_dir)).save_pretrained(str(tmp_path))
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["normalizer"] = {  # Llama 2's own file: Prepend + Replace instead of a Metaspace pre-tokenizer
        "type": "Sequence",
        "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ],
    }
    spec["pre_tokenizer"] = None
    spec["added_tokens"].append(
        {
            "id": 1000,
            "content": "hello world",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": True,
            "special": False,
        }
    )
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False))
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = LlamaTokenizer.from_pretrained(tmp_path)
    assert type(theirs).__name__ == "LlamaTokenizer"
    for text in ["hello world", "say hello world twice: hello world.", "hello  world", "Hello world"]:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text
        assert ours.tokenize(text) == theirs.tokenize(text), text
    assert ours.convert_ids_to_tokens(1000) == theirs.convert_ids_to_tokens(1000)


def test_rebuilt_backends_keep_added_tokens_matchable(minilm_dir, gpt2_tokenizer_dir, tmp_path):
    """BERT and GPT-2 rebuild their pipeline from tokenizer.json the same way (one shared step)."""
    from tinyformers.tokenization import BertTokenizer, GPT2Tokenizer

    for cls, folder in ((BertTokenizer, minilm_dir), (GPT2Tokenizer, gpt2_tokenizer_dir)):
        theirs = transformers.AutoTokenizer.from_pretrained(str(folder))
        if not (folder / "tokenizer.json").is_file():
            theirs.save_pretrained(str(tmp_path / cls.__name__))
            folder = tmp_path / cls.__name__
        spec = json.loads((folder / "tokenizer.json").read_text())
        size = theirs.backend_tokenizer.get_vocab_size(with_added_tokens=True)
        spec["added_tokens"].append(
            {
                "id": size,
                "content": "Hello World",
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": True,
                "special": False,
            }
        )
        target = tmp_path / f"{cls.__name__}-added"
        target.mkdir()
        for item in folder.iterdir():
            if item.is_file() and item.name != "tokenizer.json":
                (target / item.name).write_bytes(item.read_bytes())
        (target / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False))
        theirs = transformers.AutoTokenizer.from_pretrained(str(target))
        ours = cls.from_pretrained(target)
        for text in ["Hello World", "say Hello World and hello world"]:
            assert ours(text)["input_ids"] == theirs(text)["input_ids"], (cls.__name__, text)
        assert ours.convert_ids_to_tokens(size) == theirs.convert_ids_to_tokens(size)


# ---- 3. tokenizers import without torch -----------------------------------------------------------------------
def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_every_tokenizer_module_imports_without_torch():
    names = sorted(
        f"tinyformers.tokenization.{m.name}" for m in pkgutil.iter_modules(tinyformers.tokenization.__path__)
    )
    assert "tinyformers.tokenization.sentencepiece" in names and "tinyformers.tokenization.llama" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert 'torch' not in sys.modules, name + ' imported torch'\n"
        "import tinyformers.formats.sentencepiece_model\n"
        "assert 'torch' not in sys.modules, 'formats.sentencepiece_model imported torch'\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr


# ---- 4. a missing dependency is reported as what it is --------------------------------------------------------
def test_missing_dependency_is_not_an_unsupported_stage(t5_tokenizer_dir, tmp_path):
    """numpy (needed to read a precompiled charsmap) made unimportable: the error names numpy."""
    transformers.T5Tokenizer.from_pretrained(str(t5_tokenizer_dir)).save_pretrained(str(tmp_path))
    assert '"Precompiled"' in (tmp_path / "tokenizer.json").read_text()
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None  # as if numpy were not installed\n"
        "from tinyformers.tokenization import Tokenizer\n"
        f"Tokenizer.from_file({str(tmp_path / 'tokenizer.json')!r})\n"
    )
    result = _run(code)
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr and "numpy" in result.stderr, result.stderr[-2000:]
    assert "unsupported" not in result.stderr


def test_stages_load_without_torch(t5_tokenizer_dir, tmp_path):
    """With torch unimportable, a T5 tokenizer.json (Precompiled, Metaspace) loads and encodes as transformers
    does; a failed import of a stage's module used to be reported as an unsupported stage type."""
    theirs = transformers.T5Tokenizer.from_pretrained(str(t5_tokenizer_dir))
    theirs.save_pretrained(str(tmp_path))
    text = "Hello world, said the ｆｕｌｌ-width ﬁ ligature."
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if torch were not installed\n"
        "from tinyformers.tokenization import Tokenizer\n"
        f"print(Tokenizer.from_file({str(tmp_path / 'tokenizer.json')!r}).encode({text!r}).ids)\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == theirs(text)["input_ids"]
