"""End to end as a newcomer runs it: our tokenizer + our model against transformers' tokenizer + model."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from tinyformers import AutoModel, AutoTokenizer
from tinyformers.pipelines import sentence_embeddings

SENTENCES = ["how are you.", "Café naïve — 你好世界 👋 https://example.com/a?b=1", "def f(x): return x**2"]


@torch.inference_mode()
def test_tokenizer_and_model_end_to_end_match_transformers(minilm_dir, hf_minilm_tokenizer, hf_minilm):
    tok, model = AutoTokenizer.from_pretrained(minilm_dir), AutoModel.from_pretrained(minilm_dir)
    ref_tok, ref_model = hf_minilm_tokenizer, hf_minilm
    ours_enc = tok(SENTENCES, padding=True, return_tensors="pt")
    ref_enc = ref_tok(SENTENCES, padding=True, return_tensors="pt")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(ours_enc[key], ref_enc[key]), key
    torch.testing.assert_close(
        model(**ours_enc).last_hidden_state, ref_model(**ref_enc).last_hidden_state, atol=1e-4, rtol=0
    )
    ours = sentence_embeddings(model, tok, SENTENCES)
    hidden = ref_model(**ref_enc).last_hidden_state
    mask = ref_enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_walkthrough_example_runs(minilm_dir):
    env = {**os.environ, "TINYFORMERS_HOME": str(minilm_dir.parent)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, os.path.join(root, "examples", "walkthrough.py")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "['[CLS]', 'how', 'are', 'you', '.', '[SEP]']" in out.stdout
    assert "last_hidden_state: a tensor of shape (1, 6, 384)" in out.stdout
    assert "pooler_output: a tensor of shape (1, 384)" in out.stdout
