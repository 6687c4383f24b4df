"""A small GGUF reader: metadata, tensor infos, dequantisation to torch, and the llama -> HF mapping.

Format (little-endian): ``b"GGUF"``, uint32 version (2 or 3), uint64 tensor count, uint64 key/value count; then
the typed key/value metadata; then one info per tensor (name, dims innermost-first, ggml type, offset); then,
aligned to ``general.alignment`` (32 by default), the tensor data. The file is memory-mapped: a tensor's bytes are
read from the page cache only when it is loaded, and the quantised blocks are unpacked with whole-tensor torch ops.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .safetensors import CorruptWeightsError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# Metadata value types: id -> struct format (scalars), or the two composite types.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

# ggml tensor types: id -> (name, elements per block, bytes per block). Every known type is listed so that any
# file's layout can be read; only those in _DEQUANTIZERS can be loaded.
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}  # fmt: skip


def _fail(path: Path, problem: str) -> CorruptWeightsError:
    return CorruptWeightsError(
        f"{path} is not a readable GGUF file ({problem}); re-download it or re-convert it with llama.cpp"
    )


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # torch order (outermost first): GGUF lists dims innermost-first
    ggml_type: int
    offset: int  # absolute byte offset in the file
    nbytes: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES.get(self.ggml_type, (f"unknown type {self.ggml_type}",))[0]


class _Cursor:
    """Reads typed values from the mapped header, turning a short read into a 'truncated' error."""

    def __init__(self, buf: mmap.mmap, path: Path):
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > len(self.buf):
            raise _fail(self.path, f"truncated header: needs byte {start + n} of {len(self.buf)}")
        self.pos += n
        return start

    def scalar(self, fmt: str):
        return struct.unpack_from("<" + fmt, self.buf, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("Q")
        start = self.take(n)
        try:
            return self.buf[start : start + n].decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(self.path, f"string at byte {start} is not UTF-8") from None

    def value(self, vtype: int):
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, count = self.scalar("I"), self.scalar("Q")
            if item_type in _SCALARS:  # numbers: one numpy read instead of `count` struct calls
                dtype = np.dtype("<" + _SCALARS[item_type])
                start = self.take(count * dtype.itemsize)
                return np.frombuffer(self.buf, dtype, count, start).tolist()
            return [self.value(item_type) for _ in range(count)]
        raise _fail(self.path, f"unknown metadata value type {vtype} at byte {self.pos}")


class GGUFFile:
    """A memory-mapped GGUF file: ``.metadata``, ``.tensors`` (name -> TensorInfo), ``.load_tensor(name)``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        size = self.path.stat().st_size
        if size < 24:
            raise _fail(self.path, f"only {size} bytes, too short for a header")
        with open(self.path, "rb") as f:
            # ACCESS_COPY: pages are shared with the page cache until written; writes never reach the file.
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        cur = _Cursor(self._map, self.path)
        magic = self._map[:4]
        if magic != MAGIC:
            raise _fail(self.path, f"starts with {magic!r}, not {MAGIC!r}")
        cur.pos = 4
        self.version = cur.scalar("I")
        if self.version not in SUPPORTED_VERSIONS:
            swapped = int.from_bytes(self.version.to_bytes(4, "little"), "big")
            problem = "is big-endian, not supported" if swapped in SUPPORTED_VERSIONS else "is not supported"
            raise _fail(self.path, f"GGUF version {self.version} {problem}, only {SUPPORTED_VERSIONS}")
        n_tensors, n_kv = cur.scalar("Q"), cur.scalar("Q")
        self.metadata: dict = {}
        for _ in range(n_kv):
            key = cur.string()
            self.metadata[key] = cur.value(cur.scalar("I"))
        raw_infos = [self._read_tensor_info(cur) for _ in range(n_tensors)]
        self.alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        self.data_start = cur.pos + (-cur.pos % self.alignment)
        self.tensors = {info.name: info for info in self._place(raw_infos, size)}

    @staticmethod
    def _read_tensor_info(cur: _Cursor) -> tuple[str, tuple[int, ...], int, int]:
        name = cur.string()
        dims = [cur.scalar("Q") for _ in range(cur.scalar("I"))]
        ggml_type, offset = cur.scalar("I"), cur.scalar("Q")
        return name, tuple(reversed(dims)), ggml_type, offset

    def _place(self, raw_infos, size: int) -> list[TensorInfo]:
        """Absolute offsets and byte sizes, checked against the end of the file."""
        infos = []
        for name, shape, ggml_type, offset in raw_infos:
            _, block, type_size = GGML_TYPES.get(ggml_type, (None, 1, 0))
            count = int(np.prod(shape, dtype=np.int64))
            if count % block:
                raise _fail(self.path, f"tensor '{name}' has {count} elements, not a multiple of {block}")
            info = TensorInfo(name, shape, ggml_type, self.data_start + offset, count // block * type_size)
            if info.offset + info.nbytes > size:
                raise _fail(
                    self.path,
                    f"truncated: tensor '{name}' ends at byte {info.offset + info.nbytes} of {size}",
                )
            infos.append(info)
        return infos

    def raw_bytes(self, name: str) -> torch.Tensor:
        """The tensor's bytes as a uint8 tensor over the map (no copy)."""
        info = self.tensors[name]
        if info.nbytes == 0:
            return torch.empty(0, dtype=torch.uint8)
        return torch.frombuffer(self._map, dtype=torch.uint8, count=info.nbytes, offset=info.offset)

    def release(self, name: str) -> None:
        """Give back the memory of the tensor's pages that were read (only whole pages inside it: a neighbour
        may be a float32 tensor still used through the map). Call once its values have been copied out."""
        info = self.tensors[name]
        start = -(-info.offset // mmap.PAGESIZE) * mmap.PAGESIZE
        end = (info.offset + info.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
        if end > start and hasattr(self._map, "madvise"):
            self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def load_tensor(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The tensor dequantised to float32 (then cast to ``dtype``), in torch's shape order."""
        info = self.tensors[name]
        if info.ggml_type not in _DEQUANTIZERS:
            supported = ", ".join(GGML_TYPES[t][0] for t in _DEQUANTIZERS)
            raise NotImplementedError(
                f"tensor '{name}' in {self.path} is {info.type_name}, which tinyformers cannot dequantize "
                f"(supported: {supported}); re-quantize the model to one of those with llama-quantize"
            )
        return dequantize(self.raw_bytes(name), info.ggml_type).reshape(info.shape).to(dtype)


@dataclass(frozen=True)
class GGUFBlocks:
    """A quantised matrix kept as the file stores it: ``data`` is uint8 [rows, bytes per row] (blocks run along
    a row, so permuting or concatenating rows of blocks permutes or concatenates rows of the matrix)."""

    ggml_type: int
    shape: tuple[int, ...]  # of the float matrix, torch order
    data: torch.Tensor  # may be a view of the memory-mapped file
    # gives back the file pages ``data`` reads, once what is kept has been copied out of it
    release: Callable[[], None] | None = field(default=None, compare=False)

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize(self.data.reshape(-1), self.ggml_type).reshape(self.shape).to(dtype)

    def placeholder(self) -> torch.Tensor:
        """A tensor of the float matrix's shape that holds no memory (``meta``), for code that checks shapes."""
        return torch.empty(self.shape, device="meta")


# --- dequantisation: one function per ggml type, blocks [n, bytes per block] -> values [n, elements] ---------


def dequantize(raw: torch.Tensor, ggml_type: int) -> torch.Tensor:
    """Flat float32 values of the uint8 bytes ``raw`` holding blocks of ``ggml_type``."""
    _, block, type_size = GGML_TYPES[ggml_type]
    blocks = raw.reshape(-1, type_size)
    return _DEQUANTIZERS[ggml_type](blocks).reshape(-1)


def _split(blocks: torch.Tensor, *widths: int) -> list[torch.Tensor]:
    """Cut each block into fields of the given byte widths; the last field takes the rest."""
    return list(torch.split(blocks, [*widths, blocks.shape[1] - sum(widths)], dim=1))


def _f16(field: torch.Tensor) -> torch.Tensor:
    """A 2-byte fp16 scale per block, as float32 [n, 1]."""
    return field.contiguous().view(torch.float16).float()


def _unpack(packed: torch.Tensor, bits: int, width: int) -> torch.Tensor:
    """Unpack ``bits``-bit fields the ggml way: for each run of ``width`` bytes, all lowest fields first.

    A Q4 run of 16 bytes gives elements 0-15 from the low nibbles, then 16-31 from the high ones.
    """
    runs = packed.reshape(packed.shape[0], -1, width)
    # one small op per shift: torch's broadcast shift over uint8 is several times slower
    fields = [(runs >> shift) & ((1 << bits) - 1) for shift in range(0, 8, bits)]
    return torch.stack(fields, dim=2).reshape(packed.shape[0], -1)


def k_scales_mins(scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Q4_K/Q5_K: eight 6-bit scales and eight 6-bit mins packed in 12 bytes, as uint8 [n, 8]."""
    d, m, m_d = scales.reshape(-1, 3, 4).unbind(1)
    sc = torch.cat([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], dim=1)
    mins = torch.cat([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], dim=1)
    return sc, mins


# The float ops below follow gguf-py's reference order (scale * q, then + min) so results are bit-identical.
def _deq_f32(b):
    return b.contiguous().view(torch.float32)


def _deq_f16(b):
    return b.contiguous().view(torch.float16).float()


def _deq_bf16(b):
    return b.contiguous().view(torch.bfloat16).float()


def _deq_q8_0(b):
    d, q = _split(b, 2)
    return q.contiguous().view(torch.int8).float() * _f16(d)


def _deq_q4_0(b):
    d, qs = _split(b, 2)
    return _f16(d) * (_unpack(qs, 4, 16).to(torch.int8) - 8).float()


def _deq_q4_1(b):
    d, m, qs = _split(b, 2, 2)
    return _f16(d) * _unpack(qs, 4, 16).float() + _f16(m)


def _q5_values(qh: torch.Tensor, qs: torch.Tensor) -> torch.Tensor:
    """Q5_0/Q5_1: 4 low bits from nibbles, the 5th from a 32-bit mask (bit i belongs to element i)."""
    return _unpack(qs, 4, 16) | (_unpack(qh, 1, 1) << 4)


def _deq_q5_0(b):
    d, qh, qs = _split(b, 2, 4)
    return _f16(d) * (_q5_values(qh, qs).to(torch.int8) - 16).float()


def _deq_q5_1(b):
    d, m, qh, qs = _split(b, 2, 2, 4)
    return _f16(d) * _q5_values(qh, qs).float() + _f16(m)


def _deq_q2_k(b):
    scales, qs, d, dmin = _split(b, 16, 64, 2)
    dl = (_f16(d) * (scales & 0x0F).float()).unsqueeze(-1)
    ml = (_f16(dmin) * (scales >> 4).float()).unsqueeze(-1)
    return dl * _unpack(qs, 2, 32).reshape(-1, 16, 16).float() - ml


def _deq_q3_k(b):
    hmask, qs, scales, d = _split(b, 32, 64, 12)
    low, high = _split(scales, 8)
    sc = (_unpack(low, 4, 8) | (_unpack(high, 2, 4) << 4)).to(torch.int8) - 32
    dl = (_f16(d) * sc.float()).unsqueeze(-1)
    # the high bit *subtracts* 4 when it is clear (ggml stores q + 4 with the bit set)
    minus4 = (_unpack(hmask, 1, 32) ^ 1) << 2
    q = _unpack(qs, 2, 32).to(torch.int8) - minus4.to(torch.int8)
    return dl * q.reshape(-1, 16, 16).float()


def _deq_q4_k(b):
    d, dmin, scales, qs = _split(b, 2, 2, 12)
    sc, mins = (t.float().unsqueeze(-1) for t in k_scales_mins(scales))
    q = _unpack(qs, 4, 32).reshape(-1, 8, 32).float()
    return (_f16(d).unsqueeze(-1) * sc) * q - _f16(dmin).unsqueeze(-1) * mins


def _deq_q5_k(b):
    d, dmin, scales, qh, qs = _split(b, 2, 2, 12, 32)
    sc, mins = (t.float().unsqueeze(-1) for t in k_scales_mins(scales))
    q = (_unpack(qs, 4, 32) | (_unpack(qh, 1, 32) << 4)).reshape(-1, 8, 32).float()
    return (_f16(d).unsqueeze(-1) * sc) * q - _f16(dmin).unsqueeze(-1) * mins


def _deq_q6_k(b):
    ql, qh, scales, d = _split(b, 128, 64, 16)
    dl = (_f16(d) * scales.contiguous().view(torch.int8).float()).unsqueeze(-1)
    q = (_unpack(ql, 4, 64) | (_unpack(qh, 2, 32) << 4)).to(torch.int8) - 32
    return dl * q.reshape(-1, 16, 16).float()


_DEQUANTIZERS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    0: _deq_f32, 1: _deq_f16, 30: _deq_bf16, 8: _deq_q8_0, 2: _deq_q4_0, 3: _deq_q4_1, 6: _deq_q5_0,
    7: _deq_q5_1, 10: _deq_q2_k, 11: _deq_q3_k, 12: _deq_q4_k, 13: _deq_q5_k, 14: _deq_q6_k,
}  # fmt: skip


# --- llama.cpp llama -> transformers LlamaForCausalLM -------------------------------------------------------

SUPPORTED_ARCHITECTURES = ("llama",)
_GLOBAL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}  # fmt: skip
_LAYER_NAME = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")


def hf_tensor_name(gguf_name: str) -> str | None:
    """The transformers name of a llama GGUF tensor, or None for tensors HF does not keep (e.g. rope_freqs)."""
    if m := _LAYER_NAME.fullmatch(gguf_name):
        layer, part, kind = m.groups()
        return f"model.layers.{layer}.{_LAYER_NAMES[part]}.{kind}" if part in _LAYER_NAMES else None
    part, _, kind = gguf_name.rpartition(".")
    return f"{_GLOBAL_NAMES[part]}.{kind}" if part in _GLOBAL_NAMES else None


def unpermute_qk(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's q/k row permutation.

    llama.cpp's converter interleaves the two halves of each head's rows so its RoPE can rotate adjacent pairs;
    HF's rotate-half RoPE wants the halves back in place. Same reshape as transformers' _reverse_permute_weights.
    """
    out = w.shape[0]
    return w.reshape(n_head, out // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_config(metadata: dict, tensor_names) -> dict:
    """LlamaConfig keys from ``llama.*`` and ``tokenizer.ggml.*`` metadata."""
    key = lambda name, default=None: metadata.get(f"llama.{name}", default)  # noqa: E731
    tokens = metadata.get("tokenizer.ggml.tokens", [])
    config = {
        "model_type": "llama",
        "vocab_size": key("vocab_size", len(tokens)),
        "hidden_size": key("embedding_length"),
        "intermediate_size": key("feed_forward_length"),
        "num_hidden_layers": key("block_count"),
        "num_attention_heads": key("attention.head_count"),
        "num_key_value_heads": key("attention.head_count_kv", key("attention.head_count")),
        "max_position_embeddings": key("context_length"),
        # kept as the float32 the file stores (9.999999747378752e-06, not 1e-05), as transformers does
        "rms_norm_eps": key("attention.layer_norm_rms_epsilon"),
        "rope_theta": key("rope.freq_base", 10000.0),
        # llama.cpp writes output.weight only when the head is not the embedding matrix
        "tie_word_embeddings": "output.weight" not in tensor_names,
    }
    head_dim = key("rope.dimension_count")
    if head_dim is not None and head_dim != config["hidden_size"] // config["num_attention_heads"]:
        config["head_dim"] = head_dim
    if key("rope.scaling.type") not in (None, "none"):
        config["rope_scaling"] = {"rope_type": key("rope.scaling.type"), "factor": key("rope.scaling.factor")}
        if (original := key("rope.scaling.original_context_length")) is not None:
            config["rope_scaling"]["original_max_position_embeddings"] = original
    for gguf_id, hf_id in (("bos", "bos"), ("eos", "eos"), ("padding", "pad"), ("unknown", "unk")):
        if (value := metadata.get(f"tokenizer.ggml.{gguf_id}_token_id")) is not None:
            config[f"{hf_id}_token_id"] = value
    return config


def tokenizer_fields(metadata: dict) -> dict:
    """``tokenizer.ggml.*`` without the prefix (model, pre, tokens, merges, ids, ...), plus ``chat_template``."""
    fields = {
        k.removeprefix("tokenizer.ggml."): v for k, v in metadata.items() if k.startswith("tokenizer.ggml.")
    }
    if "tokenizer.chat_template" in metadata:
        fields["chat_template"] = metadata["tokenizer.chat_template"]
    return fields


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """``GGUFFile(path)``, parsed once for as long as the file is unchanged (same size and modification time).

    Loading a GGUF model reads the one file in turn for its config, its weights and its tokenizer, and the header
    (the whole vocabulary) is most of the time that takes; the last file read is kept, memory-mapped.
    """
    stat = os.stat(path)
    return _read_gguf(Path(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _read_gguf(path: Path, size: int, mtime_ns: int) -> GGUFFile:
    return GGUFFile(path)


def gguf_config(gguf: GGUFFile | str | os.PathLike) -> dict:
    """The transformers-style config dict of a GGUF file, from its metadata alone (no tensor is read)."""
    gguf = gguf if isinstance(gguf, GGUFFile) else read_gguf(gguf)
    architecture = gguf.metadata.get("general.architecture")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"{gguf.path} holds a '{architecture}' model; tinyformers reads GGUF architectures "
            f"{', '.join(SUPPORTED_ARCHITECTURES)} only: use a checkpoint of one of those"
        )
    return llama_config(gguf.metadata, gguf.tensors)


def load_gguf_checkpoint(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    progress: bool | Callable[[int, int, str], None] = True,
    keep_blocks: bool = False,
) -> tuple[dict, dict[str, torch.Tensor | GGUFBlocks], dict]:
    """``(config_dict, state_dict, tokenizer_dict)`` of a llama GGUF file, with HF names and dequantised weights.

    ``progress``: True shows a tqdm bar (only when stderr is a terminal), False nothing, or a callable
    ``(done, total, gguf_name)`` called after each tensor. ``keep_blocks``: quantised matrices come as
    ``GGUFBlocks`` (views of the file, q/k rows unpermuted) instead of being dequantised.
    """
    gguf = read_gguf(path)
    config = gguf_config(gguf)
    heads = {"attn_q": config["num_attention_heads"], "attn_k": config["num_key_value_heads"]}
    names = [(name, hf) for name in gguf.tensors if (hf := hf_tensor_name(name)) is not None]
    state_dict = {}
    for done, (name, hf) in enumerate(_progress(names, progress), start=1):
        info = gguf.tensors[name]
        _, block, _ = GGML_TYPES.get(info.ggml_type, (None, 1, 0))
        keep = keep_blocks and block > 1 and len(info.shape) == 2 and info.ggml_type in _DEQUANTIZERS
        tensor = gguf.raw_bytes(name).reshape(info.shape[0], -1) if keep else gguf.load_tensor(name, dtype)
        part = name.split(".")[2] if name.startswith("blk.") else None
        tensor = unpermute_qk(tensor, heads[part]) if part in heads else tensor
        if keep:
            state_dict[hf] = GGUFBlocks(
                info.ggml_type, info.shape, tensor, functools.partial(gguf.release, name)
            )
        else:
            state_dict[hf] = tensor
            if block > 1:  # dequantised into new memory: the mapped pages would only double it
                gguf.release(name)
        if callable(progress):
            progress(done, len(names), name)
    return config, state_dict, tokenizer_fields(gguf.metadata)


def _progress(items: list, progress) -> list:
    if progress is not True:
        return items
    from tqdm.auto import tqdm

    # disable=None: tqdm stays silent when stderr is not a terminal (logs, CI, pipes)
    return tqdm(items, desc="Dequantizing GGUF tensors", unit="tensor", disable=None)
