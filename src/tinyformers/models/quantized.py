"""Weight-only int8 matrices for CPU decoding (``model.quantize_weights("int8")``).

A decoding step reads every weight once, so on CPU its time is weight bytes / memory bandwidth: int8 reads 4x fewer
bytes than float32. Each output row gets one scale (symmetric, max |w| -> 127). Up to ``kernels.MAX_ROWS``
float32 rows (decoding steps, short prompts), eager or compiled, multiply in our C kernel (``kernels.py``), which
widens the int8 values in registers and keeps the activations float32. More rows, or where the kernel cannot be
built, go to torch's CPU kernel ``aten._weight_int8pack_mm``, with activations cast to bfloat16 around the call
because its float32 path is a slow fallback; int4 was slower than int8 on this CPU (measurements of every option:
benchmarks/README.md). Without our kernel, a single row inside a compiled decoding step runs as ``layers.matvec``,
which widens the int8 rows in the loop it multiplies them in, on CPUs with AVX-512 (``INT8_LOOP``). Inductor loads
int8 weights a quarter vector at a time, one masked load with AVX-512; at::vec's AVX2 code copies them through a
stack buffer instead, which made the loop slower than float32 on an AMD Zen 3, so there the compiled step calls
torch's kernel (measurements: benchmarks/README.md).

Results are no longer bit-equal to float32: greedy output follows float32's for most tokens (measured agreement
in ``benchmarks/bench_llama_generate.py``, asserted in ``tests/test_llama_speed_options.py``).

Encoders multiply many rows at once (every token of a batch), where time is arithmetic, not weight bytes: there
``DynamicInt8Linear`` quantises the activations too, per call, and multiplies int8 by int8 with fbgemm's kernel
(``quantized::linear_dynamic``, the one ``torch.ao.quantization.quantize_dynamic`` uses, called directly).
Sentence embeddings keep a mean cosine above 0.99 to float32's (``benchmarks/bench_encode.py``,
``tests/test_encoders.py``).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from . import kernels
from .layers import Conv1D, matvec, runs_matvec

SCHEMES = ("int8",)


def int8_loop_wanted(environ=os.environ, capability=torch.backends.cpu.get_cpu_capability) -> bool:
    """Whether a compiled step multiplies one row by int8 weights in its ``layers.matvec`` loop, rather than with
    torch's int8 kernel: ``$TINYFORMERS_INT8_LOOP`` (``1`` or ``0``) if set, else where the CPU has AVX-512."""
    forced = environ.get("TINYFORMERS_INT8_LOOP", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return capability().startswith("AVX512")


INT8_LOOP = int8_loop_wanted()


class Int8Linear(nn.Module):
    """``nn.Linear`` with an int8 [out, in] weight and one bfloat16 scale per output row; for inference only."""

    def __init__(self, linear: nn.Linear | Conv1D):
        super().__init__()
        weight = out_in(linear).float().contiguous()  # the kernel wants [out, in] rows
        scales = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("qweight", (weight / scales[:, None]).round().clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(torch.bfloat16))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), False)
        # Inside a compiled decoding step one row runs as ``matvec`` on float32 activations (see layers.Linear).
        self.compiled_matvec = getattr(linear, "compiled_matvec", False)
        # decided here: a compiled graph can read this, not build and load a library
        self.kernel = "int8" if self.in_features % 32 == 0 and kernels.covers("int8") else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.runs(self.kernel, x):  # float32 activations
            fields = [self.scales, self.qweight]
            y = kernels.matmul(x.reshape(-1, self.in_features), fields, "int8", self.out_features)
        elif runs_matvec(self, x):
            return matvec(x, self.qweight, self.bias, self.scales)
        else:
            flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
            y = torch.ops.aten._weight_int8pack_mm(flat, self.qweight, self.scales).to(x.dtype)
        y = y.view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-row scales"


class DynamicInt8Linear(nn.Module):
    """``nn.Linear`` with int8 weights (one scale per output row) whose float32 input is quantised to 8 bits at
    each call (one scale per call); for inference on CPU.

    The full 8-bit input range, not the 7 bits ``quantize_dynamic`` uses on x86: 7 bits rule out any saturation
    of AVX2's pairwise 16-bit sums, but cost MiniLM's embeddings a mean cosine of 0.975 to float32 instead of
    0.993 (BBC sentences), and the accuracy measured here includes whatever saturation happens."""

    def __init__(self, linear: nn.Linear | Conv1D):
        super().__init__()
        weight = out_in(linear).float()
        scales = (weight.abs().amax(dim=1).clamp(min=1e-12) / 127).double()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = None if linear.bias is None else linear.bias.detach().float()
        with (
            warnings.catch_warnings()
        ):  # torch marks its quantised tensors as deprecated; the kernel is current
            warnings.simplefilter("ignore")
            zero = torch.zeros(len(scales), dtype=torch.long)
            qweight = torch.quantize_per_channel(weight, scales, zero, axis=0, dtype=torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(
                f"int8 encoder layers take float32 inputs, got {x.dtype}; load the model in float32"
            )
        return torch.ops.quantized.linear_dynamic(x, self.packed, False)  # False: the full 8 bits

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights and inputs"


def out_in(linear: nn.Linear | Conv1D) -> torch.Tensor:
    """The layer's matrix as [out, in] (a view: ``Conv1D`` keeps its parameter [in, out])."""
    return linear.weight.detach().t() if isinstance(linear, Conv1D) else linear.weight.detach()


def quantize_linears(model: nn.Module, scheme: str = "int8", kind: type[nn.Module] = Int8Linear) -> nn.Module:
    """Swap every ``nn.Linear`` and ``Conv1D`` in ``model`` (the LM head included, even when tied) for its
    quantised form ``kind`` (weight-only ``Int8Linear`` for decoding, ``DynamicInt8Linear`` for encoders)."""
    if scheme not in SCHEMES:
        raise ValueError(f"quantize='{scheme}' is not supported; supported: {', '.join(SCHEMES)}")
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, Conv1D))]
    for name, linear in linears:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, kind(linear))
    return model


@torch.inference_mode()
def greedy_agreement(
    model, reference, prompts: list[torch.Tensor], new_tokens: int = 32
) -> tuple[float, float]:
    """How closely ``model`` follows ``reference`` (e.g. its float32 original) over prompts of shape [1, n]:
    (share of greedy tokens before the first difference, share of positions where both pick the same next
    token given the reference's own continuation). The second does not punish one early flip for the rest.
    An encoder-decoder model's prompts are its inputs, and its outputs follow the decoder's start token."""
    seq2seq = getattr(model.config, "is_encoder_decoder", False)
    prefix = forced = total = 0
    for ids in prompts:
        kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        start = 1 if seq2seq else ids.shape[1]
        reference_ids = reference.generate(ids, **kwargs)
        want, got = reference_ids[0, start:], model.generate(ids, **kwargs)[0, start:]
        differs = (got != want).nonzero()
        prefix += int(differs[0]) if len(differs) else new_tokens
        if seq2seq:
            logits = model(ids, decoder_input_ids=reference_ids[:, :-1]).logits[0]
        else:
            logits = model(reference_ids).logits[0, start - 1 : -1]
        forced += int((logits.argmax(-1) == want).sum())
        total += new_tokens
    return prefix / total, forced / total
