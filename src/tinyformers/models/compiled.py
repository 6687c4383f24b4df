"""A ``torch.compile``d one-token decoding step (``model.compile_decoding()``) for any ``CausalLM`` and, through
its own step function, T5's decoder (``t5_generation.py``); ``SpeedOptions``, the mixin that offers it and int8.

Eager decoding of a deep, narrow model spends much of each step launching small ops (~25 a layer; their cost
is in benchmarks/README.md); one compiled graph fuses them away (SmolLM2-135M: see ``benchmarks/bench_llama_generate.py``). For
the graph to be traced once and reused, every step must look the same to it:

* attention reads the positions written so far, a count the graph keeps symbolic (marked dynamic from the
  first call, so one graph serves every length) rather than one it was traced with; a boolean mask hides
  padding (a server's rows start at different positions);
* the step's keys and values are written at ``slot``, a tensor, with ``index_copy_`` (not a Python int slice);
* caches are allocated in buckets of ``max_length_step`` positions, so a new prompt length rarely means a new
  shape (a new batch size or bucket compiles once more; torch caches up to 8 variants).

Prefill (many tokens, a new length every call) stays eager; it writes the same cache buffers.

Inside the graph every one-row matrix product is a multiply-and-sum loop that inductor generates
(``layers.matvec``): it streams weights faster than MKL's mat-vec on AMD CPUs (benchmarks/README.md), and
streaming weights is most of a step's time. On Intel's, where MKL is faster (``inner_product.PREFER_MKL``),
float32 matrices keep MKL's product in the graph. Int8 and GGUF blocks run our C kernel (``kernels``) where it
builds; otherwise GGUF blocks run the loop, which widens them, and int8 rows do where the loop loads them fast
(``quantized.INT8_LOOP``).
"""

from __future__ import annotations

import itertools
import os
import types

import torch

from ..generation import StaticKVCache
from .gguf_layouts import kept_type_names
from .gguf_quantized import GGUFMatrix, keep_blocks, tie_blocks
from .inner_product import PREFER_MKL, forget_packed_weights, pack_in_graphs
from .layers import decode_layout, is_float32_matrix
from .quantized import INT8_LOOP, SCHEMES, Int8Linear, quantize_linears

ENV_FLAG = "TINYFORMERS_COMPILE"


# torch.compile options for the decoding graph.
GRAPH_OPTIONS = {
    # Store each normalised activation once before the matrices read it. Otherwise inductor inlines RMSNorm into
    # the matvec loop and recomputes it for every output row: int8 steps become compute-bound.
    "realize_acc_reads_threshold": 0,
    # Checking the ~300 parameter guards costs a noticeable part of a step (benchmarks/README.md). A compiled
    # model's modules do not change (changing its dtype, device or quantisation builds a new step:
    # ``SpeedOptions._apply``, ``quantize_weights``), and each step has its own code object (``own_copy``), so another model's graphs are never looked up for this one.
    # Replacing a submodule by hand after the first step is not noticed: call compile_decoding() again then.
    "guard_filter_fn": torch.compiler.skip_guard_on_all_nn_modules_unsafe,
}


def own_copy(fn):
    """``fn`` with a code object of its own: torch.compile keeps its graphs (and its limit of 8 per function) per
    code object, so each model's step gets its own set instead of sharing one with every other compiled model.
    The copy has a name of its own too: torch remembers which input dimensions changed between calls by a
    function's file, line and name, and another model's shapes (a T5 with other head counts) would otherwise
    turn this one's dimensions symbolic."""
    name = f"{fn.__name__}_{next(_copies)}"
    code = fn.__code__.replace(co_name=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


_copies = itertools.count()


def compile_from_env() -> bool:
    """The default of ``from_pretrained(compile=...)``: on when ``TINYFORMERS_COMPILE=1`` (CLI, servers)."""
    return os.environ.get(ENV_FLAG, "").strip().lower() in ("1", "true", "yes", "on")


class SlotCache:
    """What a layer sees of the cache inside the graph: writes land at ``slot``; attention reads the first
    ``written`` positions."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], slot: torch.Tensor, written):
        self.keys, self.values, self.slot, self.written = keys, values, slot, written

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys[layer].index_copy_(2, self.slot, k)
        self.values[layer].index_copy_(2, self.slot, v)
        return self.keys[layer][:, :, : self.written], self.values[layer][:, :, : self.written]

    def advance(self, n: int) -> None:
        """The real cache's length moves outside the graph (``CompiledDecodeStep.__call__``)."""


def written_positions(key_mask: torch.Tensor, cache: StaticKVCache) -> torch.Tensor:
    """The columns of ``key_mask`` for the positions written once this step's keys are in, their count marked
    as a dimension the graph keeps symbolic (so a new count is no new graph)."""
    key_mask = key_mask[:, : cache.length + 1]
    torch._dynamo.maybe_mark_dynamic(key_mask, 1)
    return key_mask


def decode_step(model, input_ids, position_ids, keys, values, key_mask, slot, head_in_out):
    """One token per row through the whole model; the function ``torch.compile`` traces. ``key_mask`` covers
    the positions written so far, this step's included (``slot + 1``: a dimension the graph keeps symbolic),
    and hides padding; attention reads only those positions."""
    cache = SlotCache(keys, values, slot, key_mask.shape[1])
    x = model.backbone.run(input_ids, position_ids, key_mask[:, None, None, :], False, cache)[:, -1]
    return model.lm_head(x) if head_in_out is None else x @ head_in_out


class CompiledDecodeStep:
    """``model.next_token_logits`` for one-token steps, through the compiled ``decode_step``.

    Another model family gives its own ``function`` (traced in its place) and ``inputs`` (its arguments)."""

    function = staticmethod(decode_step)

    def __init__(self, model, max_length_step: int = 256):
        self.model = model
        self.max_length_step = max_length_step
        # dynamic=None: the first graph is static; a second batch size or bucket (finished rows leave the batch)
        # recompiles once with that dimension symbolic, and never again.
        self.step = torch.compile(own_copy(self.function), fullgraph=True, options=GRAPH_OPTIONS)
        self._all_real: dict[tuple, torch.Tensor] = {}  # key mask of unpadded batches, one per cache shape

    def bucket(self, max_length: int) -> int:
        """The cache length to allocate for ``max_length`` positions."""
        return -(-max_length // self.max_length_step) * self.max_length_step

    def allocate_cache(self, batch_size: int, max_length: int) -> StaticKVCache:
        layers, kv_heads, head_dim = self.model.backbone.cache_layout()
        bucket = self.bucket(max_length)
        model = self.model
        return StaticKVCache(layers, batch_size, kv_heads, bucket, head_dim, model.dtype, model.device)

    def __call__(self, input_ids, position_ids, cache: StaticKVCache) -> torch.Tensor:
        if cache.length >= cache.max_length:
            raise ValueError(
                f"the KV cache holds {cache.max_length} positions and all are used; allocate a longer cache"
            )
        key_mask = cache.key_mask if cache.key_mask is not None else self._no_padding(cache)
        slot = torch.full((1,), cache.length, dtype=torch.long, device=input_ids.device)
        # The decoding loop passes columns of wider tensors, whose strides change with the prompt length: copies
        # with the same strides every time spare a recompilation.
        input_ids = input_ids.clone(memory_format=torch.contiguous_format)
        position_ids = position_ids.clone(memory_format=torch.contiguous_format)
        logits = self.step(self.model, *self.inputs(input_ids, position_ids, cache, key_mask, slot))
        cache.advance(1)
        return logits

    def inputs(self, input_ids, position_ids, cache: StaticKVCache, key_mask, slot) -> tuple:
        """``function``'s arguments after the model."""
        # one row through the head's compiled matvec: it streams the [vocab, width] rows faster than any copy;
        # otherwise (several rows, or MKL's product on Intel's CPUs) the head's [in, out] copy where it has one
        one_row_matvec = input_ids.shape[0] == 1 and getattr(self.model.lm_head, "compiled_matvec", False)
        head_in_out = None if one_row_matvec else self.model.head_in_out()
        key_mask = written_positions(key_mask, cache)
        return input_ids, position_ids, cache.keys, cache.values, key_mask, slot, head_in_out

    def _no_padding(self, cache: StaticKVCache) -> torch.Tensor:
        shape = (cache.batch_size, cache.max_length)
        if shape not in self._all_real:
            self._all_real[shape] = torch.ones(shape, dtype=torch.bool, device=cache.keys[0].device)
        return self._all_real[shape]


def runs_as_loop(module) -> bool:
    """Whether a compiled step multiplies one row by ``module``'s matrix in the ``layers.matvec`` loop: not a
    float32 matrix where MKL streams faster (``inner_product.PREFER_MKL``), nor int8 weights where the loop loads
    them slowly (``quantized.INT8_LOOP``)."""
    if PREFER_MKL and is_float32_matrix(module):
        return False
    return INT8_LOOP or not isinstance(module, Int8Linear)


class SpeedOptions:
    """Mixin for a model that generates (``CausalLM``, T5's LM): ``from_pretrained``'s ``compile=`` and
    ``quantize=``. A family sets ``compiled_step_type`` (its ``CompiledDecodeStep``) and may override
    ``decoding_layout``; its ``next_token_logits`` and ``allocate_cache`` use ``_compiled_step`` when set."""

    compiled_step_type = CompiledDecodeStep
    # Set by compile_decoding(): a compiled one-token step; None runs the eager path.
    _compiled_step = None
    quantization: str | None = None

    def speed_options(self, compile: bool | None, quantize: str | None):
        """``from_pretrained``'s ``quantize=`` and ``compile=`` (default: on when ``TINYFORMERS_COMPILE=1``)."""
        if quantize:
            self.quantize_weights(quantize)
        if compile or (compile is None and compile_from_env()):
            self.compile_decoding()
        return self

    def compile_decoding(self, max_length_step: int = 256):
        """Run every one-token decoding step as one ``torch.compile``d graph (prefill stays eager).

        Compiling takes tens of seconds (benchmarks/README.md), at the first ``generate`` of each batch size and
        cache-length bucket (caches are ``max_length_step`` positions apart; torch keeps compiled code on disk for
        the next process).
        Greedy ids agree with eager; logits differ in the last bits, as products are summed in another order.
        Returns the model."""
        for module in self.modules():
            if hasattr(module, "compiled_matvec"):
                module.compiled_matvec = runs_as_loop(module)
        self.decoding_layout()
        pack_in_graphs(self)
        self._compiled_step = self.compiled_step_type(self, max_length_step)
        return self

    def decoding_layout(self) -> None:
        """Store each matrix the way its products run fastest (``layers.decode_layout``)."""
        decode_layout(self)

    def quantize_weights(self, scheme: str = "int8"):
        """Replace the float matrices of the layers and the LM head with weight-only quantised ones (see
        ``models/quantized.py``); the embedding lookup and norms stay float. For inference; returns the model.

        ``"gguf"`` is chosen at load instead (``from_pretrained(x.gguf, quantize="gguf")`` keeps the file's
        blocks): here it only checks that the model holds some."""
        if scheme == "gguf":
            if not any(isinstance(m, GGUFMatrix) for m in self.modules()):
                raise ValueError(
                    f"quantize='gguf' found no {kept_type_names()} matrix to keep in this model; load a GGUF "
                    "file quantised to one of those, or use quantize=None to load it dequantised"
                )
        elif scheme in SCHEMES and self.quantization == "gguf":
            raise ValueError(
                f"quantize='{scheme}' cannot re-quantise GGUF blocks; load the file without quantize="
            )
        else:
            quantize_linears(self, scheme)
        self.quantization = scheme  # save_pretrained refuses: no checkpoint format here holds these matrices
        return self._recompile()

    def keep_gguf_blocks(self, state, blocks, hf_state) -> None:
        """``quantize="gguf"`` at load: matrices (and a tied head) on the file's blocks, ``gguf_quantized.py``."""
        keep_blocks(self, state, blocks, lambda key: self._hf_keys(key, hf_state))
        if getattr(self.config, "tie_word_embeddings", True):
            tie_blocks(self, self.tied_weights)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)  # every dtype or device change (.to, .float, ...) comes through here
        forget_packed_weights(self)
        return self._recompile()

    def _recompile(self):
        """A compiled step traced the model as it was; after its modules change, trace afresh."""
        if self._compiled_step is not None:
            self.compile_decoding(self._compiled_step.max_length_step)
        return self
