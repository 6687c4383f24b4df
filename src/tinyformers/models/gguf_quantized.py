"""Matrices and embeddings that keep a GGUF file's quantised blocks (``from_pretrained(x.gguf, quantize="gguf")``).

A decoding step reads every weight once, so its time follows the bytes it reads: Q4_1 keeps 5 bits a weight
where float32 takes 32 and int8 8. Each supported ggml type (``LAYOUTS``) splits its blocks into separate tensors
at load (4-bit nibbles, 6-bit scales, fp16 block scales...), unchanged or repacked without loss, and knows two
things about them:

* ``dequantize``: the float32 matrix, bit-identical to ``formats.gguf.dequantize``. Used for many rows (prefill,
  batches: ``F.linear`` on the dequantised matrix) and by eager code.
* ``matvec``: one row multiplied with the blocks, written as a multiply-and-sum over [out, in] rows that unpacks
  nibbles and applies block scales in the same expression. Inside the compiled decoding step (``runs_matvec``)
  inductor turns it into one loop that streams the blocks once (like ``layers.matvec``; the variants measured
  are in benchmarks/README.md). Activations stay float32, so results equal dequantise-then-``F.linear`` up to the
  order of the sums.

Q/K rows of llama files are permuted at load by moving whole rows of blocks (blocks run along the input
dimension), and fused projections concatenate rows of blocks. An embedding keeps its blocks too: the lookup
dequantises only the rows it gathers, and a tied LM head multiplies with the same blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..formats.gguf import GGML_TYPES, GGUFBlocks, k_scales_mins
from .layers import runs_matvec


def _f16(blocks: torch.Tensor, at: int) -> torch.Tensor:
    """The fp16 field at byte ``at`` of every block [rows, blocks, bytes], as float16 [rows, blocks]."""
    return blocks[..., at : at + 2].contiguous().view(torch.float16).squeeze(-1)


def _bytes(blocks: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Bytes ``start:end`` of every block, as one uint8 row per matrix row."""
    return blocks[..., start:end].reshape(blocks.shape[0], -1)


def _nibbles(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Low and high 4-bit halves of each byte, as float32."""
    return (packed & 15).float(), (packed >> 4).float()


def _q4_values(qs: torch.Tensor, blocks: torch.Size) -> torch.Tensor:
    """The 4-bit values of Q4_0/Q4_1 rows [..., blocks * 16 bytes] as float32 [..., blocks, 2, 16], written into
    one new tensor (eager dequantisation runs at every step for each matrix: each pass over it counts)."""
    packed = qs.view(*blocks, 16)
    values = torch.empty(*blocks, 2, 16, device=qs.device)
    values[..., 0, :] = packed & 15
    values[..., 1, :] = packed >> 4
    return values


def _each(scales: torch.Tensor, n: int) -> torch.Tensor:
    """[rows, k] -> [rows, k * n], each value repeated n times: a broadcast view, so that inside the compiled
    step the scale is read by index in the same loop as the values (no repeated copy is made)."""
    return scales[..., None].expand(*scales.shape, n).flatten(-2)


def _halves(x: torch.Tensor, run: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs the low and the high nibbles of each run of ``run`` bytes multiply ([in / 2] each)."""
    low, high = x.view(-1, 2, run).unbind(-2)
    return low.flatten(), high.flatten()


# Each layout: ``fields(blocks)`` at load, blocks uint8 [rows, blocks a row, bytes a block]; ``dequantize`` and
# ``matvec`` take the fields in that order. In ``matvec`` every product runs over one flat [rows, n] index
# space, and a per-block term that does not depend on the values (a minimum, Q4_0's -8) is taken out as one small
# product with the block sums of x: inductor then fuses the whole product into one loop (benchmarks/README.md).
class Q8_0:
    """32 int8 values and one fp16 scale a block."""

    @staticmethod
    def fields(b: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"d": _f16(b, 0), "q": _bytes(b, 2, 34).view(torch.int8)}

    @staticmethod
    def dequantize(d, q):
        return q.view(*d.shape, 32).float().mul_(d.float()[..., None])

    @staticmethod
    def matvec(x, d, q):
        return (_each(d.float(), 32) * (q * x)).sum(-1)


class Q4_0:
    """32 4-bit values (value - 8) and one fp16 scale a block; byte k holds values k (low) and 16 + k (high)."""

    @staticmethod
    def fields(b):
        return {"d": _f16(b, 0), "qs": _bytes(b, 2, 18)}

    @staticmethod
    def dequantize(d, qs):
        return _q4_values(qs, d.shape).sub_(8).mul_(d.float()[..., None, None])

    @staticmethod
    def matvec(x, d, qs):
        low, high = _nibbles(qs)
        x_low, x_high = _halves(x, 16)
        dot = (_each(d.float(), 16) * (low * x_low + high * x_high)).sum(-1)
        return dot - 8 * (d.float() * x.view(-1, 32).sum(-1)).sum(-1)


class Q4_1:
    """Q4_0's nibbles with an fp16 scale and an fp16 minimum a block: value = d * q + m."""

    @staticmethod
    def fields(b):
        return {"d": _f16(b, 0), "m": _f16(b, 2), "qs": _bytes(b, 4, 20)}

    @staticmethod
    def dequantize(d, m, qs):
        return _q4_values(qs, d.shape).mul_(d.float()[..., None, None]).add_(m.float()[..., None, None])

    @staticmethod
    def matvec(x, d, m, qs):
        low, high = _nibbles(qs)
        x_low, x_high = _halves(x, 16)
        dot = (_each(d.float(), 16) * (low * x_low + high * x_high)).sum(-1)
        return dot + (m.float() * x.view(-1, 32).sum(-1)).sum(-1)


class Q4_K:
    """Super-blocks of 256: eight sub-blocks of 32 with 6-bit scales and minimums, times fp16 ``d`` and ``dmin``;
    each run of 32 bytes holds one sub-block in its low nibbles and the next in its high ones."""

    @staticmethod
    def fields(b):  # [rows, super-blocks, 144]
        sc, mins = k_scales_mins(b[..., 4:16].reshape(-1, 12))
        rows = b.shape[0]
        return {
            "d": _f16(b, 0), "dmin": _f16(b, 2), "sc": sc.view(rows, -1), "mins": mins.view(rows, -1),
            "qs": _bytes(b, 16, 144),
        }  # fmt: skip

    @staticmethod
    def _scales(d, dmin, sc, mins):
        """Per sub-block scale and minimum, float32 [rows, super-blocks, 8]."""
        sc, mins = sc.view(*d.shape, 8), mins.view(*d.shape, 8)
        return d.float()[..., None] * sc.float(), dmin.float()[..., None] * mins.float()

    @staticmethod
    def dequantize(d, dmin, sc, mins, qs):
        scale, minimum = (t.view(*d.shape, 4, 2, 1) for t in Q4_K._scales(d, dmin, sc, mins))
        low, high = _nibbles(qs.view(*d.shape, 4, 32))
        return scale * torch.stack([low, high], -2) - minimum

    @staticmethod
    def matvec(x, d, dmin, sc, mins, qs):
        scale, minimum = (t.flatten(-2) for t in Q4_K._scales(d, dmin, sc, mins))  # [rows, sub-blocks]
        low, high = _nibbles(qs)
        x_low, x_high = _halves(x, 32)
        dot = _each(scale[:, 0::2], 32) * low * x_low + _each(scale[:, 1::2], 32) * high * x_high
        return dot.sum(-1) - (minimum * x.view(-1, 32).sum(-1)).sum(-1)


class Q6_K:
    """Super-blocks of 256 six-bit values (value - 32) in two halves of 128: value 32a + t of a half takes its low
    4 bits from byte 32 (a % 2) + t of its 64 ``ql`` bytes (the high nibble when a >= 2) and its top 2 bits from
    bits 2a of byte t of its 32 ``qh`` bytes; an int8 scale per 16 values, one fp16 ``d``."""

    @staticmethod
    def fields(b):  # [rows, super-blocks, 210]
        return {
            "ql": _bytes(b, 0, 128), "qh": _bytes(b, 128, 192),
            "sc": _bytes(b, 192, 208).view(torch.int8), "d": _f16(b, 208),
        }  # fmt: skip

    @staticmethod
    def _values(ql, qh, a: int) -> torch.Tensor:
        """Values 32a..32a+31 of each half, float32 [rows, super-blocks * 2 * 32]."""
        low = (ql.view(ql.shape[0], -1, 2, 32)[:, :, a % 2] >> (4 * (a // 2))) & 15
        return ((low | (((qh.view(low.shape) >> (2 * a)) & 3) << 4)).to(torch.int8) - 32).float().flatten(1)

    @staticmethod
    def dequantize(ql, qh, sc, d):
        rows = d.shape[0]
        q = torch.stack([Q6_K._values(ql, qh, a).view(rows, -1, 2, 32) for a in range(4)], -2)
        scale = d.float()[..., None] * sc.view(*d.shape, 16).float()  # [rows, super-blocks, 16]
        return (scale.view(*d.shape, 2, 4, 2, 1) * q.view(*d.shape, 2, 4, 2, 16)).flatten(-4)

    @staticmethod
    def matvec(x, ql, qh, sc, d):
        rows = d.shape[0]
        scale = _each(d.float(), 16) * sc.float()  # [rows, super-blocks * 16], per 16 values
        scale = scale.view(rows, -1, 2, 4, 2)  # super-block, half, a, t // 16
        xs = x.view(-1, 2, 4, 32)
        total = 0
        for a in range(4):
            scale_a = _each(scale[:, :, :, a].flatten(1), 16)
            total = total + scale_a * Q6_K._values(ql, qh, a) * xs[:, :, a].flatten()
        return total.sum(-1)


LAYOUTS = {2: Q4_0, 3: Q4_1, 8: Q8_0, 12: Q4_K, 14: Q6_K}  # ggml type id -> layout
KEPT_TYPES = tuple(LAYOUTS)


def kept_type_names() -> str:
    return ", ".join(GGML_TYPES[t][0] for t in KEPT_TYPES)


class GGUFMatrix(nn.Module):
    """An [out, in] matrix held as one ggml type's block fields (buffers, the file's own dtypes)."""

    def __init__(
        self, blocks: GGUFBlocks | None = None, fields: dict | None = None, shape=None, ggml_type=None
    ):
        super().__init__()
        if blocks is not None:
            ggml_type, shape = blocks.ggml_type, blocks.shape
            _, block, size = GGML_TYPES[ggml_type]
            fields = LAYOUTS[ggml_type].fields(blocks.data.reshape(shape[0], shape[1] // block, size))
            # own memory, never a view of the file (whose pages are given back after loading)
            source = blocks.data.untyped_storage().data_ptr()
            fields = {
                n: t.clone() if t.untyped_storage().data_ptr() == source else t for n, t in fields.items()
            }
        self.ggml_type, self.shape = ggml_type, tuple(shape)
        self.layout = LAYOUTS[ggml_type]
        for name, tensor in fields.items():
            self.register_buffer(name, tensor)
        self.field_names = tuple(fields)

    def fields(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.field_names]

    def dequantized(self) -> torch.Tensor:
        """The float32 [out, in] matrix."""
        return self.layout.dequantize(*self.fields()).reshape(self.shape)

    def _apply(self, fn, recurse=True):
        # model.to(dtype) casts floating buffers: the fp16 block scales would change value (bfloat16) or size
        # (float32). The fields keep the file's dtypes and only move between devices.
        device = fn(torch.empty(0)).device
        for name in self.field_names:
            self._buffers[name] = self._buffers[name].to(device)
        return self

    def extra_repr(self) -> str:
        return f"{list(self.shape)}, {GGML_TYPES[self.ggml_type][0]} blocks"


class GGUFLinear(GGUFMatrix):
    """``nn.Linear`` on a quantised matrix (the bias, if any, stays float): one row inside the compiled decoding
    step multiplies with the blocks (``matvec``); otherwise the matrix is dequantised and ``F.linear`` runs."""

    compiled_matvec = False

    def __init__(self, *args, bias: torch.Tensor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.out_features, self.in_features = self.shape
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """The product with one float32 row [in] as the compiled step runs it (eagerly it materialises)."""
        return self.layout.matvec(x, *self.fields())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if runs_matvec(self, x):
            y = self.matvec(x.reshape(-1).float()).to(x.dtype).view(*x.shape[:-1], self.out_features)
            return y if self.bias is None else y + self.bias
        return F.linear(x, self.dequantized().to(x.dtype), self.bias)

    def _apply(self, fn, recurse=True):
        if self.bias is not None:
            self.bias.data = fn(self.bias.data)
        return super()._apply(fn, recurse)


class GGUFEmbedding(GGUFMatrix):
    """``nn.Embedding`` on a quantised [vocab, width] matrix: a lookup dequantises only the rows it gathers."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = [field[ids.reshape(-1)] for field in self.fields()]
        return self.layout.dequantize(*rows).reshape(*ids.shape, self.shape[1])

    def as_linear(self) -> GGUFLinear:
        """A head that multiplies with these same blocks (a tied LM head)."""
        return GGUFLinear(fields=dict(zip(self.field_names, self.fields())), shape=self.shape,
                          ggml_type=self.ggml_type)  # fmt: skip


def keep_blocks(model: nn.Module, state: dict, blocks: dict[str, GGUFBlocks], source_names) -> None:
    """Replace each ``nn.Linear`` / ``nn.Embedding`` of ``model`` whose weight the checkpoint holds as blocks
    (``state[key]`` is then a meta placeholder) by a ``GGUFLinear`` / ``GGUFEmbedding`` on those blocks, and drop
    their keys from ``state``. ``source_names(key)`` gives the checkpoint names behind our key: a fused
    projection concatenates their rows of blocks when all share one type; otherwise, or for a tensor that is not
    such a weight, the blocks are dequantised into ``state`` (loaded as float32)."""
    for key in [k for k, v in state.items() if v.is_meta]:
        parts = [blocks[name] for name in source_names(key)]
        module_name, _, attr = key.rpartition(".")
        module = model.get_submodule(module_name)
        kinds = {part.ggml_type for part in parts}
        kept = len(kinds) == 1 and kinds <= set(LAYOUTS)
        if attr != "weight" or not kept or not isinstance(module, (nn.Linear, nn.Embedding)):
            state[key] = torch.cat([part.dequantized() for part in parts])
            _release(parts)
            continue
        data = torch.cat([part.data for part in parts]) if len(parts) > 1 else parts[0].data
        merged = GGUFBlocks(parts[0].ggml_type, tuple(state.pop(key).shape), data)
        if isinstance(module, nn.Embedding):
            replacement = GGUFEmbedding(merged)
        else:
            bias_key = f"{module_name}.bias"
            replacement = GGUFLinear(merged, bias=state.pop(bias_key) if bias_key in state else None)
        parent, _, name = module_name.rpartition(".")
        setattr(model.get_submodule(parent), name, replacement)
        _release(parts)


def _release(parts: list[GGUFBlocks]) -> None:
    """The module holds copies of the fields now: the file's pages need not stay in memory."""
    for part in parts:
        if part.release is not None:
            part.release()


def tie_blocks(model: nn.Module, tied_weights: dict[str, str]) -> None:
    """A tied head whose embedding kept its blocks multiplies with the same blocks."""
    for target, source in tied_weights.items():
        source_module = source.rpartition(".")[0]
        try:
            embedding = model.get_submodule(source_module)
        except AttributeError:
            continue
        if isinstance(embedding, GGUFEmbedding):
            parent, _, name = target.rpartition(".")[0].rpartition(".")
            setattr(model.get_submodule(parent), name, embedding.as_linear())
