"""oneDNN's inner product for the float32 products of decoding steps, on CPUs where MKL is slow.

For the few rows of a decoding step, and the tens of a prompt, MKL's gemm behind ``F.linear`` streams the weights
several times slower than oneDNN's inner product reading the same memory on AMD CPUs (benchmarks/README.md). On
Intel CPUs MKL takes its fast paths and streams them faster than oneDNN does, so there ``F.linear`` stays
(``TINYFORMERS_ONEDNN=1`` or ``0`` overrides the choice). oneDNN rounds differently, though (1.3e-4 apart from
transformers on SmolLM2's logits, with the same greedy ids), and a forward is held to transformers' logits within
1e-4 while decoding is held to its ids. So the model layers call ``linear``, which is ``F.linear`` except inside a
model's ``next_token_logits`` (decorated with ``decoding_step``) and inside a compiled graph (the compiled
decoding step's products of several rows, ``onednn_linear``).

Up to ``kernels.FLOAT_MAX_ROWS`` rows (a step of one sequence or of a batch's few, a short prompt) the product runs
instead in the project's own C kernel where it is built (``kernels.float_linear``: it prefetches the matrix it
streams, and so beats oneDNN's reading of it, benchmarks/README.md). More rows of several sequences (a batched
prefill, a batch of more than 16) multiply with a blocked copy of each matrix that oneDNN packs once
(``PackedWeight``): faster than the plain weight for any number of rows, and bit for bit what it gives for two
rows or more. Eager forwards find the copy on the layer they run; a compiled graph hands ``onednn_linear`` only the
weight, which finds its layer by the weight's address (``pack_in_graphs``). It costs the matrices' memory once
more, from the first such forward on (one-sequence decoding never makes it); ``TINYFORMERS_PACK_WEIGHTS=0`` keeps
the memory instead.
"""

from __future__ import annotations

import contextvars
import functools
import os
import weakref

import torch
import torch.nn.functional as F

from . import kernels
from .kernels import cpu_info


def cpu_vendor() -> str | None:
    """``GenuineIntel``, ``AuthenticAMD``, ...: the CPU's ``vendor_id`` (None off Linux)."""
    return cpu_info("vendor_id")


def onednn_wanted(environ=os.environ, vendor=cpu_vendor) -> bool:
    """Whether MKL's one-row products are the slow choice here, so that decoding uses oneDNN's inner product and
    the compiled step's matvec loop: ``$TINYFORMERS_ONEDNN`` if set, else on every CPU but Intel's."""
    forced = environ.get("TINYFORMERS_ONEDNN", "").strip().lower()
    if forced in ("0", "1", "true", "false", "yes", "no"):
        return forced in ("1", "true", "yes")
    return vendor() != "GenuineIntel"


def _onednn_inner_product():
    """torch's oneDNN inner product as an op, or None where torch was built without oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


# Where MKL takes its fast paths (Intel's CPUs), ``F.linear`` streams one row's weights faster than both oneDNN's
# inner product and the compiled step's ``layers.matvec`` loop; elsewhere both of those beat it.
PREFER_MKL = not onednn_wanted()
# The op decoding steps use, or None (Intel's CPUs, or a torch without oneDNN).
ONEDNN_INNER_PRODUCT = None if PREFER_MKL else _onednn_inner_product()
# Below this many weights a call's fixed cost (~15 us, against F.linear's ~2) outweighs what oneDNN saves.
ONEDNN_MIN_WEIGHTS = 1 << 18
# The number of sequences in the decoding step running now (``decoding_step``), 0 outside one.
_step_sequences = contextvars.ContextVar("step_sequences", default=0)
# oneDNN's blocked layout for products of this many rows (the fastest for a batched step's few: benchmarks/README.md).
PACKED_FOR_ROWS = 8


def packing_wanted(environ=os.environ) -> bool:
    """Whether batched decoding keeps packed copies of its float32 matrices: unless ``TINYFORMERS_PACK_WEIGHTS=0``."""
    return environ.get("TINYFORMERS_PACK_WEIGHTS", "").strip().lower() not in ("0", "false", "no", "off")


PACK_WEIGHTS = packing_wanted()


class PackedWeight:
    """A layer's weight as oneDNN packs it for products of a few rows: made on first use, made again when the
    weight changed since (another tensor, or written in place). Derived data, so a copied or pickled layer starts
    without one (oneDNN's packed tensors cannot be copied either)."""

    __slots__ = ("key", "packed")

    def __init__(self):
        self.key = self.packed = None

    def __deepcopy__(self, memo):
        return PackedWeight()

    def __reduce__(self):
        return PackedWeight, ()

    def of(self, weight: torch.Tensor) -> torch.Tensor:
        version = 0 if weight.is_inference() else weight._version  # inference tensors have no version counter
        key = (weight.data_ptr(), version, weight.shape, weight.stride())
        if key != self.key:
            self.packed = None  # the old copy goes before the new one is made
            self.packed, self.key = torch.ops.mkldnn._reorder_linear_weight(weight, PACKED_FOR_ROWS), key
        return self.packed


def packed_weight(layer: torch.nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` packed for several rows, kept on ``layer`` (the module that owns it)."""
    holder = layer.__dict__.get("_packed_weight")
    if holder is None:
        holder = layer.__dict__["_packed_weight"] = PackedWeight()
    return holder.of(weight)


def forget_packed_weights(model: torch.nn.Module) -> None:
    """Drop the packed copies of ``model``'s layers (after its weights moved to another dtype or device)."""
    for module in model.modules():
        module.__dict__.pop("_packed_weight", None)


# The layers whose weights a compiled graph's products may multiply packed (``pack_in_graphs``), by the address of
# the weight: the graph hands ``onednn_linear`` the weight, not its layer.
_GRAPH_LAYERS: dict[int, weakref.ref] = {}


def pack_in_graphs(model: torch.nn.Module) -> None:
    """Let compiled steps of several sequences multiply ``model``'s float32 matrices packed, as eager batched steps
    do (the copies are kept on the layers, ``packed_weight``)."""
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() == 2 and weight.dtype is torch.float32:
            address = weight.data_ptr()

            def forget(ref, address=address):
                if _GRAPH_LAYERS.get(address) is ref:
                    del _GRAPH_LAYERS[address]

            _GRAPH_LAYERS[address] = weakref.ref(module, forget)


def graph_packed_weight(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` packed, if a live layer registered by ``pack_in_graphs`` still holds it; else ``weight``."""
    ref = _GRAPH_LAYERS.get(weight.data_ptr())
    layer = ref() if ref is not None else None
    own = getattr(layer, "weight", None)
    if own is None or own.data_ptr() != weight.data_ptr():
        return weight
    return packed_weight(layer, weight)


def decoding_step(next_token_logits):
    """Decorator for a model's ``next_token_logits(self, input_ids, ...)``: inside it, float32 products run as
    oneDNN's (``linear``), on packed weights when ``input_ids`` holds several sequences."""

    @functools.wraps(next_token_logits)
    def run(model, input_ids, *args, **kwargs):
        token = _step_sequences.set(input_ids.shape[0])
        try:
            return next_token_logits(model, input_ids, *args, **kwargs)
        finally:
            _step_sequences.reset(token)

    return run


@torch.library.custom_op("tinyformers::onednn_linear", mutates_args=())
def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The inner product as an op of its own, which a compiled graph calls as it is (inductor's lowering of the
    oneDNN op only takes weights it packed itself): the C kernel's for a few rows, else oneDNN's, on the weight
    packed where its layer allows it (``pack_in_graphs``)."""
    if kernels.float_runs(x, weight):
        return kernels.float_linear(x, weight, bias)
    if PACK_WEIGHTS and x.numel() > x.shape[-1]:
        weight = graph_packed_weight(weight)
    return ONEDNN_INNER_PRODUCT(x, weight, bias, "none", [], "")


@onednn_linear.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def needs_grad(*tensors: torch.Tensor | None) -> bool:
    return any(t is not None and t.requires_grad for t in tensors)


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    layer: torch.nn.Module | None = None,
) -> torch.Tensor:
    """``F.linear(x, weight, bias)``; inside a decoding step (``decoding_step``) or a compiled graph, as oneDNN's
    inner product where that is faster: float32 on CPU, no gradient to record, at least ``ONEDNN_MIN_WEIGHTS``
    weights; up to ``kernels.FLOAT_MAX_ROWS`` rows in the C kernel instead. In an eager forward of several
    sequences and more rows, ``layer`` (the module owning ``weight``) keeps the weight packed for them
    (``PackedWeight``).

    oneDNN streams [out, in] rows fastest, ``nn.Linear``'s own layout (``layers.decode_layout`` keeps them).
    """
    if (
        ONEDNN_INNER_PRODUCT is None
        or x.dtype is not torch.float32
        or weight.dtype is not torch.float32
        or weight.numel() < ONEDNN_MIN_WEIGHTS
        or x.device.type != "cpu"
        or (torch.is_grad_enabled() and needs_grad(x, weight, bias))
    ):
        return F.linear(x, weight, bias)
    if torch.compiler.is_compiling():  # the compiled decoding step's products of several rows
        return onednn_linear(x, weight, bias)
    sequences = _step_sequences.get()
    if sequences:
        if kernels.float_runs(x, weight):  # a step's few rows
            return kernels.float_linear(x, weight, bias)
        if sequences > 1 and PACK_WEIGHTS and layer is not None:
            weight = packed_weight(layer, weight)
        return ONEDNN_INNER_PRODUCT(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)
