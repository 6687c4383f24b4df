"""How each kept ggml type's blocks are held and multiplied (``gguf_quantized.py`` builds the modules).

Each layout: ``fields(blocks)`` at load, blocks uint8 [rows, blocks a row, bytes a block], gives the tensors a
module keeps (the file's bytes, split by field); ``dequantize(*fields)`` the float32 values, bit-identical to
``formats.gguf.dequantize``; ``matvec(x, *fields)`` one float32 row's product, the expression the compiled
decoding step runs. In ``matvec`` every product runs over one flat [rows, n] index space, and a per-block term
that does not depend on the values (a minimum, Q4_0's -8) is taken out as one small product with the block sums
of x: inductor then fuses the whole product into one loop (the variants measured: benchmarks/README.md).
"""

from __future__ import annotations

import torch

from ..formats.gguf import GGML_TYPES, k_scales_mins


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


def _q4_dot(x: torch.Tensor, d: torch.Tensor, qs: torch.Tensor) -> torch.Tensor:
    """Q4_0/Q4_1: the row's sum of d * q * x over its blocks (the 4-bit values q, before any offset)."""
    low, high = _nibbles(qs)
    x_low, x_high = _halves(x, 16)
    return (_each(d.float(), 16) * (low * x_low + high * x_high)).sum(-1)


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
        return _q4_dot(x, d, qs) - 8 * (d.float() * x.view(-1, 32).sum(-1)).sum(-1)


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
        return _q4_dot(x, d, qs) + (m.float() * x.view(-1, 32).sum(-1)).sum(-1)


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
