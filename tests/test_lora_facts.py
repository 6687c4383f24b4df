"""The LoRA example on the real SmolLM2: after a short CPU run it answers questions about facts it could not have
known, and still knows the capital of France (the base weights are frozen)."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT, asset

sys.path.insert(0, str(ROOT / "examples"))
import lora_facts  # noqa: E402


@pytest.mark.slow
def test_smollm2_learns_new_facts_and_keeps_old_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(lora_facts, "GGUF", str(asset("smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    answers = lora_facts.main(output_dir=str(tmp_path / "bakery"))
    for question, expected in lora_facts.QUESTIONS.items():
        assert expected in answers[question], (question, answers[question])
    assert (tmp_path / "bakery" / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "bakery" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "bakery" / "model.safetensors").is_file(), "the adapter merged into a whole model"
