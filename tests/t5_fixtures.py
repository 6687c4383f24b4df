"""Random T5 / Flan-T5 checkpoints built by transformers, and a T5-layout sentencepiece tokenizer: shared by
test_t5.py and test_pipelines.py (the ``t5_tokenizer_dir`` fixture in conftest.py uses ``write_t5_spiece``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

VOCAB = 1100  # the T5-layout botchan tokenizer: 1000 pieces + 100 sentinels

SHAPE = dict(
    vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=96, num_layers=2, num_heads=4, decoder_start_token_id=0
)
VARIANTS = {
    # T5 v1.0: ReLU FFN, head tied to the embedding, decoder output rescaled by d_model**-0.5
    "t5": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    # Flan-T5 / T5 v1.1: gated-GELU FFN, a head of its own, no rescaling
    "flan": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_layers=3),
}


def reference_t5(variant: str):
    """transformers' ``T5ForConditionalGeneration`` with random weights (seed 0), in eval mode."""
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    # initializer_factor=10: with the default 1.0 a tiny T5 only ever emits <pad>
    config = transformers.T5Config(**{**SHAPE, **VARIANTS[variant]}, initializer_factor=10.0)
    torch.manual_seed(0)
    ref = transformers.T5ForConditionalGeneration(config).eval()
    if variant == "flan":  # transformers 5 ties the head even when told not to: give it one, as Flan-T5 has
        ref.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, config.d_model))
    return ref


def write_t5_spiece(source: Path, folder: Path) -> Path:
    """``folder/spiece.model``: the sentencepiece model ``source`` with T5's special pieces (pad 0, eos 1, unk 2,
    no bos) in place of its first three, so T5 tokenizers read it as they read a real T5's."""
    pb = pytest.importorskip("sentencepiece.sentencepiece_model_pb2")
    model = pb.ModelProto()
    model.ParseFromString(Path(source).read_bytes())
    kind = pb.ModelProto.SentencePiece
    for i, (piece, type_) in enumerate(
        (("<pad>", kind.CONTROL), ("</s>", kind.CONTROL), ("<unk>", kind.UNKNOWN))
    ):
        model.pieces[i].piece, model.pieces[i].type, model.pieces[i].score = piece, type_, 0.0
    spec = model.trainer_spec
    spec.pad_id, spec.eos_id, spec.unk_id, spec.bos_id = 0, 1, 2, -1
    spec.pad_piece, spec.eos_piece, spec.unk_piece = "<pad>", "</s>", "<unk>"
    path = Path(folder) / "spiece.model"
    path.write_bytes(model.SerializeToString())
    return path
