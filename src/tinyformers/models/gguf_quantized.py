"""Matrices and embeddings that keep a GGUF file's quantised blocks (``from_pretrained(x.gguf, quantize="gguf")``).

A decoding step reads every weight once, so its time follows the bytes it reads: Q4_1 keeps 5 bits a weight
where float32 takes 32 and int8 8. Each supported ggml type (``gguf_layouts.py``) splits its blocks into separate tensors
at load (4-bit nibbles, 6-bit scales, fp16 block scales...), unchanged or repacked without loss, and knows two
things about them:

* ``dequantize``: the float32 matrix, bit-identical to ``formats.gguf.dequantize``. Used for many rows (a
  longer prompt: ``inner_product.linear`` on the dequantised matrix).
* ``matvec``: one row multiplied with the blocks, written as a multiply-and-sum over [out, in] rows that unpacks
  nibbles and applies block scales in the same expression. Inside the compiled decoding step (``runs_matvec``)
  inductor turns it into one loop that streams the blocks once (like ``layers.matvec``; the variants measured
  are in benchmarks/README.md).

Every kept type takes a third way first: a C kernel (``kernels``) multiplies up to 32 rows with the blocks, eager
or compiled, several times faster than both (it unpacks in registers what inductor's loop loads through a
stack copy on AVX2). Activations stay float32 on every path, so results equal dequantise-then-``F.linear`` up to
the order of the sums.

Q/K rows of llama files are permuted at load by moving whole rows of blocks (blocks run along the input
dimension), and fused projections concatenate rows of blocks. An embedding keeps its blocks too: the lookup
dequantises only the rows it gathers, and a tied LM head multiplies with the same blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from ..formats.gguf import GGML_TYPES, GGUFBlocks
from . import kernels
from .gguf_layouts import LAYOUTS
from .inner_product import linear, needs_grad
from .layers import runs_matvec


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
            # own memory, never a view of the file (whose pages are given back after loading); contiguous rows,
            # which the C kernel reads
            source = blocks.data.untyped_storage().data_ptr()
            fields = {
                n: t.clone(memory_format=torch.contiguous_format)
                if t.untyped_storage().data_ptr() == source
                else t.contiguous()
                for n, t in fields.items()
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
    """``nn.Linear`` on a quantised matrix (the bias, if any, stays float). A few rows multiply with the blocks
    in the C kernel where it covers the type (``kernels``); otherwise one row inside the compiled decoding step
    runs as ``matvec``, and anything else dequantises the matrix and multiplies (``inner_product.linear``)."""

    compiled_matvec = False

    def __init__(self, *args, bias: torch.Tensor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.out_features, self.in_features = self.shape
        # decided at load: a compiled graph can read this, not build and load a library
        kind = kernels.GGML_KINDS.get(self.ggml_type)
        self.kernel = kind if kernels.covers(kind) else None
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """The product with one float32 row [in] as the compiled step runs it (eagerly it materialises)."""
        return self.layout.matvec(x, *self.fields())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.runs(self.kernel, x) and not needs_grad(x):
            y = kernels.matmul(x.reshape(-1, self.in_features), self.fields(), self.kernel, self.out_features)
        elif runs_matvec(self, x):
            y = self.matvec(x.reshape(-1).float()).to(x.dtype)
        else:
            return linear(x, self.dequantized().to(x.dtype), self.bias)
        y = y.view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

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
