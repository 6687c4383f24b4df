"""Seeded-random checkpoints that transformers builds and saves (the oracle side of the parity tests), the real
tokenizer files put beside them, and the small input batches several test files share."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from conftest import cached_oracle, file_key, oracle, tensor_digest

MINILM_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def random_checkpoint(folder: Path, model_class: str, config, seed: int = 0):
    """transformers' ``model_class`` (a name such as "BertForMaskedLM") built from ``config`` with the torch seed
    ``seed``, in eval mode, saved to ``folder``; returns the model."""
    transformers = oracle("transformers")
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config).eval()
    model.save_pretrained(folder)
    return model


def left_padded(vocab: int, pads: list[int], length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids in [1, vocab) of ``len(pads)`` rows, row i left-padded with ``pads[i]`` zeros, and its mask."""
    ids = torch.randint(1, vocab, (len(pads), length), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    for row, pad in enumerate(pads):
        mask[row, :pad] = 0
    return ids.masked_fill(mask == 0, 0), mask


def assert_int8_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Logits of an int8 model near float32 ones: per-row int8 weights and bfloat16 products leave errors of
    about a percent of the largest logit on average."""
    error, scale = (got - want).abs(), want.abs().max()
    assert error.mean() < 0.01 * scale and error.max() < 0.06 * scale


# -- Llama -----------------------------------------------------------------------------------------------------

LLAMA_VOCAB = 150


def llama_config(**overrides):
    """A two-layer grouped-query Llama (4 heads, 2 key/value heads) as transformers configures it."""
    shape = dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=96,
        vocab_size=LLAMA_VOCAB,
        max_position_embeddings=256,
        rope_theta=100000.0,
        initializer_range=0.2,  # large enough that greedy decoding does not collapse onto one token
        pad_token_id=0,
    )
    return oracle("transformers").LlamaConfig(**{**shape, **overrides})


def llama_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three rows of 13 Llama ids, the second and third left-padded (by 4 and 9)."""
    return left_padded(LLAMA_VOCAB, [0, 4, 9], length=13, seed=3)


# -- BERT and GPT-2 with the real tokenizers -------------------------------------------------------------------


def bert_with_minilm_tokenizer(folder: Path, minilm_dir: Path, head: str, **config) -> str:
    """A small random BERT ``head`` (e.g. "BertForTokenClassification") saved by transformers, with the real
    MiniLM tokenizer files beside it; ``config`` adds to or overrides the small shape."""
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    random_checkpoint(folder, head, oracle("transformers").BertConfig(**{**shape, **config}))
    for name in MINILM_TOKENIZER_FILES:
        shutil.copy(minilm_dir / name, folder)
    return str(folder)


def gpt2_with_gpt2_tokenizer(folder: Path, gpt2_tokenizer_dir: Path, head: str, **config) -> str:
    """A small random GPT-2 ``head`` saved by transformers, with the real GPT-2 tokenizer files beside it."""
    shape = dict(n_layer=2, n_embd=32, n_head=2)
    random_checkpoint(folder, head, oracle("transformers").GPT2Config(**{**shape, **config}))
    for path in gpt2_tokenizer_dir.iterdir():
        shutil.copy(path, folder)
    return str(folder)


# -- T5 / Flan-T5 ----------------------------------------------------------------------------------------------

T5_VOCAB = 1100  # the T5-layout botchan tokenizer: 1000 pieces + 100 sentinels

T5_SHAPE = dict(
    vocab_size=T5_VOCAB, d_model=64, d_kv=16, d_ff=96, num_layers=2, num_heads=4, decoder_start_token_id=0
)
T5_VARIANTS = {
    # T5 v1.0: ReLU FFN, head tied to the embedding, decoder output rescaled by d_model**-0.5
    "t5": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    # Flan-T5 / T5 v1.1: gated-GELU FFN, a head of its own, no rescaling
    "flan": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_layers=3),
}


def reference_t5(variant: str):
    """transformers' ``T5ForConditionalGeneration`` with random weights (seed 0), in eval mode."""
    transformers = oracle("transformers")
    transformers.logging.set_verbosity_error()
    # initializer_factor=10: with the default 1.0 a tiny T5 only ever emits <pad>
    config = transformers.T5Config(**{**T5_SHAPE, **T5_VARIANTS[variant]}, initializer_factor=10.0)
    torch.manual_seed(0)
    ref = transformers.T5ForConditionalGeneration(config).eval()
    if variant == "flan":  # transformers 5 ties the head even when told not to: give it one, as Flan-T5 has
        ref.lm_head.weight = torch.nn.Parameter(torch.randn(T5_VOCAB, config.d_model))
    return ref


def write_t5_spiece(source: Path, folder: Path) -> Path:
    """``folder/spiece.model``: the sentencepiece model ``source`` with T5's special pieces (pad 0, eos 1, unk 2,
    no bos) in place of its first three, so T5 tokenizers read it as they read a real T5's."""
    pb = oracle("sentencepiece.sentencepiece_model_pb2")
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


def gguf_reading(path: Path) -> dict:
    """What the ``gguf`` package's reader makes of a GGUF file: its metadata (the ``GGUF.*`` header fields left
    out), where the tensor data starts, and each tensor's type, shape, element count and dequantised values (as a
    digest). The reader takes seconds on a real file, so this is cached on disk per library versions."""

    def read() -> dict:
        gguf = oracle("gguf")
        reader = gguf.GGUFReader(path)
        tensors = [
            {
                "name": tensor.name,
                "type": int(tensor.tensor_type),
                "type_name": tensor.tensor_type.name,
                "shape": [int(n) for n in reversed(tensor.shape.tolist())],
                "n_elements": int(tensor.n_elements),
                "digest": tensor_digest(
                    torch.from_numpy(np.array(gguf.quants.dequantize(tensor.data, tensor.tensor_type)))
                ),
            }
            for tensor in reader.tensors
        ]
        metadata = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
        return {"metadata": metadata, "data_offset": int(reader.data_offset), "tensors": tensors}

    return cached_oracle("gguf-reading", file_key(path), read)
