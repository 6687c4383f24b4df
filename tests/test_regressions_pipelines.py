"""A GGUF pipeline reads its file once; the pipelines package keeps every name of the old module."""

from __future__ import annotations

import os
import shutil
import struct

import pytest

from tinyformers.errors import UnexpectedArgumentError
from tinyformers.formats import gguf as gguf_format
from tinyformers.pipelines import pipeline


@pytest.mark.slow  # loads SmolLM2 twice
def test_a_gguf_text_generation_pipeline_parses_the_file_once(smollm2_dir, tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"  # a fresh path: no parse of it is cached yet
    shutil.copy(smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf", path)
    parses = []
    parse = gguf_format.GGUFFile.__init__

    def counted_parse(self, source):
        parses.append(source)
        parse(self, source)

    monkeypatch.setattr(gguf_format.GGUFFile, "__init__", counted_parse)
    generator = pipeline("text-generation", model=str(path))
    assert len(parses) == 1, parses  # config, weights and tokenizer share one parse
    assert generator.model.config.model_type == "llama" and generator.tokenizer.chat_template
    # A typo in a generate() option is refused when the pipeline is built, and the file is not parsed again.
    with pytest.raises(UnexpectedArgumentError, match="unexpected argument.*max_new_tokenz"):
        pipeline("text-generation", model=str(path), max_new_tokenz=3)
    assert len(parses) == 1, parses


def test_a_gguf_file_is_parsed_again_once_it_changes(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))  # version 3, no tensor, no metadata
    first = gguf_format.read_gguf(path)
    assert gguf_format.read_gguf(path) is first and first.metadata == {} and first.tensors == {}
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten a second later
    assert gguf_format.read_gguf(path) is not first
