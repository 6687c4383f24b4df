"""Seeded-random checkpoints that transformers builds and saves (the oracle side of the parity tests), the real
tokenizer files put beside them, and the small input batches several test files share."""

from __future__ import annotations

import json
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
    """Logits of an int8 model near float32 ones: per-row int8 weights (and, for longer inputs, bfloat16
    products) leave errors of about a percent of the largest logit on average."""
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


# byte offset and scale range of each fp16 field of a K-quant block (random bytes there could be inf or nan)
K_FP16_FIELDS = {12: ((0, 2e-3), (2, 2e-3)), 14: ((208, 5e-3),)}  # Q4_K, Q6_K


def gguf_blocks(values: np.ndarray, qtype, rng: np.random.Generator) -> np.ndarray:
    """``values`` [rows, cols] as raw blocks of ggml type ``qtype`` (uint8 [rows, bytes a row]), quantised by the
    ``gguf`` package; Q4_K and Q6_K, which it cannot quantise, as random blocks with finite scales."""
    gguf = oracle("gguf")
    if int(qtype) not in K_FP16_FIELDS:
        return gguf.quants.quantize(values, qtype)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = values.size // block
    raw = rng.integers(0, 256, (n, size), dtype=np.uint8)
    for at, scale in K_FP16_FIELDS[int(qtype)]:
        raw[:, at : at + 2] = rng.uniform(-scale, scale, n).astype(np.float16).view(np.uint8).reshape(n, 2)
    return raw.reshape(values.shape[0], -1)


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


# -- SmolLM2: one reading of the real GGUF file by transformers -------------------------------------------------

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# what test_smollm2.py tokenizes, renders and generates
SMOLLM2_TEXTS = [
    "Hello world! 17 23 1234 3.14159",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n",
    "def f(x):\n\treturn x**2  # 你好 👋🏽",
    "  leading spaces   and\n\nnewlines \n",
    "Ünïcödé café — naïve résumé, I'm they'll <repo_name>x<empty_output>",
]
SMOLLM2_CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "List three primary colors."},
    ],
    [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "What is 2 + 2?"},
    ],
]
SMOLLM2_NEW_TOKENS = 32
# what test_pipelines.py's chat pipeline answers
PIPELINE_CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Name a colour."}],
]
PIPELINE_OPTIONS = {"max_new_tokens": 12, "do_sample": False}
SMOLLM2_CONFIG_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                       "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "rms_norm_eps",
                       "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "head_dim")  # fmt: skip


def smollm2_reference(smollm2_dir: Path) -> dict:
    """What transformers makes of the real SmolLM2 file, for test_smollm2.py, test_gguf.py and test_pipelines.py:
    its config, weights (as digests), vocabulary, tokenizer ids and chat prompts, logits, greedy generations and
    chat pipeline answers. One reading serves the three: transformers takes ~30 s to read this file and run it,
    and three separate readings were the largest part of a run with an empty oracle cache."""
    path = smollm2_dir / SMOLLM2_GGUF
    inputs = {"gguf": file_key(path), "texts": SMOLLM2_TEXTS, "chats": SMOLLM2_CHATS,
              "new_tokens": SMOLLM2_NEW_TOKENS, "pipeline_chats": PIPELINE_CHATS,
              "pipeline_options": PIPELINE_OPTIONS, "config_keys": SMOLLM2_CONFIG_KEYS}  # fmt: skip
    return cached_oracle("smollm2-transformers", inputs, lambda: _transformers_on_smollm2(path))


def _transformers_on_smollm2(path: Path) -> dict:
    transformers = oracle("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() not in seen:  # the tied head is the embedding's tensor: the file holds it once
            seen.add(tensor.data_ptr())
            tensors[name] = tensor_digest(tensor)
    with torch.inference_mode():
        generations = []
        for chat in SMOLLM2_CHATS:
            ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")["input_ids"]
            generations.append(
                model.generate(ids, max_new_tokens=SMOLLM2_NEW_TOKENS, do_sample=False)[0].tolist()
            )
        probe = tok(SMOLLM2_TEXTS[1], return_tensors="pt")["input_ids"]
        logits = model(probe).logits
    chat = transformers.pipeline("text-generation", model=model, tokenizer=tok)
    answers = {
        "one": chat(PIPELINE_CHATS[0], **PIPELINE_OPTIONS),
        "batch": chat(PIPELINE_CHATS, **PIPELINE_OPTIONS),
    }
    return {
        "config": {key: getattr(model.config, key) for key in SMOLLM2_CONFIG_KEYS},
        "rope_theta": model.config.rope_parameters["rope_theta"],
        "tensors": tensors,
        # the vocabulary as transformers' tokenizer holds it (its model's pairs written as the file's merges)
        "tokens": tok.convert_ids_to_tokens(list(range(len(tok)))),
        "merges": [" ".join(pair) for pair in json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]],
        "chat_template": tok.chat_template,
        "ids": [tok(t)["input_ids"] for t in SMOLLM2_TEXTS],
        "decoded": [tok.decode(tok(t)["input_ids"]) for t in SMOLLM2_TEXTS],
        "prompts": [
            tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in SMOLLM2_CHATS
        ],
        "generations": generations,
        "probe": probe,
        "logits": logits,
        "pipeline": answers,
    }


def write_answering_gguf(path: Path, tokenizer: dict, cue: int, answer: list[int], **shape) -> Path:
    """A two-layer llama GGUF, ``llama_config``'s shape unless ``shape`` says otherwise, with the tokenizer and chat
    template of ``tokenizer`` (a GGUF file's metadata), whose greedy reply to any prompt ending in token ``cue`` is
    ``answer`` and then the end of turn. Its vocabulary is ``tokenizer``'s up to the reply's last token, with the
    merges that build those tokens (a smaller file for transformers to read).

    Its head picks each token of that chain after the one before by a wide margin (the first two logits 37-62
    apart, out of ~60), so neither int8 weights nor a compiled step can change the reply; its random attention and
    MLP weights still move the hidden states by about a tenth, so every part of the model counts."""
    config = llama_config(**shape)
    hidden, heads, kv_heads = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
    eos = tokenizer["tokenizer.ggml.eos_token_id"]
    chain = [cue, *answer, eos]
    tokens = tokenizer["tokenizer.ggml.tokens"][: max(chain) + 1]
    kept = set(tokens)
    merges = [m for m in tokenizer["tokenizer.ggml.merges"] if m.replace(" ", "", 1) in kept]
    gguf = oracle("gguf")
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model(tokenizer["tokenizer.ggml.model"])
    writer.add_tokenizer_pre(tokenizer["tokenizer.ggml.pre"])
    writer.add_token_list(tokens)
    writer.add_token_types(tokenizer["tokenizer.ggml.token_type"][: len(tokens)])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer["tokenizer.ggml.bos_token_id"])
    writer.add_eos_token_id(eos)
    writer.add_unk_token_id(tokenizer["tokenizer.ggml.unknown_token_id"])
    writer.add_pad_token_id(tokenizer["tokenizer.ggml.padding_token_id"])
    writer.add_add_bos_token(tokenizer["tokenizer.ggml.add_bos_token"])
    writer.add_add_space_prefix(tokenizer["tokenizer.ggml.add_space_prefix"])
    writer.add_chat_template(tokenizer["tokenizer.chat_template"])
    # After the final norm the last position's hidden state is about sqrt(hidden) times its token's unit
    # embedding, so a head row equal to token t's embedding scores ~hidden (64) after t and ~N(0, 8) elsewhere.
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((len(tokens), hidden)).astype(np.float32)
    head = 0.1 * rng.standard_normal((len(tokens), hidden)).astype(np.float32)
    for token, following in zip(chain, chain[1:]):
        head[following] = embedding[token]
    writer.add_tensor("token_embd.weight", embedding)
    writer.add_tensor("output.weight", head)
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    shapes = llama_block_shapes(hidden, heads, kv_heads, config.intermediate_size)
    write_llama_blocks(
        writer,
        config.num_hidden_layers,
        shapes,
        lambda name, kind, shape: writer.add_tensor(
            name, (0.05 * rng.standard_normal(shape)).astype(np.float32)
        ),
    )
    return path


def llama_block_shapes(hidden: int, heads: int, kv_heads: int, ffn: int) -> dict[str, tuple[int, int]]:
    """The [out, in] shape of each matrix of a llama block in a GGUF file, by its tensor kind."""
    kv_width = kv_heads * (hidden // heads)
    return {"attn_q": (hidden, hidden), "attn_k": (kv_width, hidden), "attn_v": (kv_width, hidden),
            "attn_output": (hidden, hidden), "ffn_gate": (ffn, hidden), "ffn_up": (ffn, hidden),
            "ffn_down": (hidden, ffn)}  # fmt: skip


def write_llama_blocks(writer, layers: int, shapes: dict, add_matrix) -> None:
    """Every block's matrices (``add_matrix(name, kind, shape)`` writes one) and unit norms, then the whole file."""
    hidden = shapes["attn_q"][0]
    for layer in range(layers):
        for kind, shape in shapes.items():
            add_matrix(f"blk.{layer}.{kind}.weight", kind, shape)
        for norm in ("attn_norm", "ffn_norm"):
            writer.add_tensor(f"blk.{layer}.{norm}.weight", np.ones(hidden, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
