"""Pieces more than one model family uses: activations, the attention-mask helper, head losses."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .inner_product import ONEDNN_INNER_PRODUCT, linear


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    # GPT-2's formula, written out as transformers does (its rounding differs slightly from F.gelu tanh).
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_fast,
    "quick_gelu": quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


def activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}' in config; supported: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def attend(q, k, v, mask=None, is_causal=False, scale=None, dropout_p=0.0, weights: list | None = None):
    """Scaled dot-product attention (``F.scaled_dot_product_attention``'s arguments: a boolean or additive mask;
    fewer K/V heads than query heads is grouped-query attention). SDPA cannot return the attention probabilities, so when ``weights`` is a
    list (``output_attentions=True``) they are computed explicitly, as transformers does, and appended to it."""
    gqa = k.shape[-3] != q.shape[-3]
    if weights is None:
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, enable_gqa=gqa
        )
    if gqa:
        k, v = (t.repeat_interleave(q.shape[-3] // t.shape[-3], -3) for t in (k, v))
    scores = q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5 if scale is None else scale)
    if is_causal:  # queries are the last positions of the keys
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril(
            k.shape[-2] - q.shape[-2]
        )
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    elif mask is not None:  # an additive float mask (T5: position bias, -inf-like where masked)
        scores = scores + mask
    probs = F.dropout(scores.softmax(-1), dropout_p, dropout_p > 0)
    weights.append(probs)
    return probs @ v


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim] (a view)."""
    b, s, _ = x.shape
    return x.view(b, s, n_heads, -1).transpose(1, 2)


def split_fused_heads(x: torch.Tensor, n_heads: int, parts: int) -> tuple[torch.Tensor, ...]:
    """A fused projection [batch, seq, parts * heads * head_dim] -> ``parts`` views [batch, heads, seq, head_dim],
    in three ops whatever ``parts`` is (a chunk, then a view and a transpose per part, are 2 + 2 * parts)."""
    b, s, _ = x.shape
    return x.view(b, s, parts, n_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[batch, heads, seq, head_dim] -> [batch, seq, heads * head_dim]. For one position the transpose would move
    only a size-1 dim: the reshape alone gives the same tensor, one op fewer at each decoding step."""
    b, _, s, _ = x.shape
    return x.reshape(b, 1, -1) if s == 1 else x.transpose(1, 2).reshape(b, s, -1)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout`` only when it does something: in eval it is the identity but still a call and an op."""
    return F.dropout(x, p, True) if training and p > 0 else x


def recorders(config, output_hidden_states, output_attentions) -> tuple[list | None, list | None]:
    """Lists that collect every layer's hidden states and attention probabilities, None where neither the
    argument nor the config asks for them."""
    hidden = [] if (output_hidden_states or config.output_hidden_states) else None
    attentions = [] if (output_attentions or config.output_attentions) else None
    return hidden, attentions


def recorded(items: list | None) -> tuple | None:
    return tuple(items) if items else None


def input_length(input_ids, inputs_embeds) -> int:
    """The sequence length of a forward's input, which comes as exactly one of ids or embeddings."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    return (input_ids if input_ids is not None else inputs_embeds).shape[1]


def padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """[batch, seq] of 1/0 -> a boolean [batch, 1, 1, seq] mask for SDPA, or None when nothing is padded.

    Returning None when every position is real lets SDPA pick its fastest kernel.
    """
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


class Packing:
    """The real (unpadded) tokens of a batch, packed into one [tokens, width] matrix and back.

    Every layer of an encoder except attention treats tokens independently, so a caller that reads no output at
    a padding position (a classifier's training step) can let those layers skip the padding: a batch of short
    and long texts is often 40 % padding, and the matrix products scale with the rows they get. Attention still
    sees the padded [batch, seq] layout. Positions that ``unpack`` fills in for the padding are zeros.
    """

    def __init__(self, attention_mask: torch.Tensor):
        self.batch, self.seq = attention_mask.shape
        self.index = attention_mask.flatten().nonzero().squeeze(1)

    @classmethod
    def of(cls, attention_mask: torch.Tensor | None) -> Packing | None:
        """A packing when some positions are padding, else None (nothing to skip)."""
        if attention_mask is None or bool(attention_mask.all()):
            return None
        return cls(attention_mask)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, x.shape[-1]).index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        full = x.new_zeros(self.batch * self.seq, x.shape[-1]).index_copy(0, self.index, x)
        return full.view(self.batch, self.seq, -1)


def sequence_classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, problem_type: str | None
) -> torch.Tensor:
    """The loss transformers picks for a classification head from ``problem_type`` or the labels' dtype."""
    num_labels = logits.shape[-1]
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    if problem_type == "regression":
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
        return F.mse_loss(logits, labels.to(logits.dtype))
    if problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    if problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    raise ValueError(
        f"problem_type '{problem_type}' is unknown; use 'regression', 'single_label_classification' "
        "or 'multi_label_classification'"
    )


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position; label -100 marks positions to ignore (padding, sub-words)."""
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)


def decode_layout(model: nn.Module) -> None:
    """Store each float32 matrix the way a decoding step multiplies it fastest, whatever shape its parameter has.

    With oneDNN (``inner_product.linear``) that is [out, in] rows, ``nn.Linear``'s own layout (``Conv1D``'s
    [in, out] parameter becomes a transposed view of rows); so do other dtypes and layers whose one-row products
    run as the compiled ``matvec`` (``compiled_matvec``), which streams rows. Where decoding multiplies with MKL
    (Intel's CPUs, or a torch without oneDNN), its mat-vec streams contiguous [in, out] memory faster
    (benchmarks/README.md): there float32 matrices are stored [in, out]. Weights shared with an embedding stay as
    they are (the lookup wants rows); the LM head reads those through ``CausalLM.output_logits``.
    """
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, (nn.Linear, Conv1D)) or id(module.weight) in embeddings:
                continue
            w, transposed = module.weight, isinstance(module, Conv1D)
            rows = w.t() if transposed else w  # [out, in]
            want_in_out = (
                ONEDNN_INNER_PRODUCT is None
                and w.dtype == torch.float32
                and not getattr(module, "compiled_matvec", False)
            )
            if want_in_out != (rows.stride() == (1, rows.shape[0])):
                rows = rows.detach().t().contiguous().t() if want_in_out else rows.detach().contiguous()
                w.data = rows.t() if transposed else rows


def is_float32_matrix(module: nn.Module) -> bool:
    """A float32 linear layer (``nn.Linear`` and its subclasses, or ``Conv1D``), as opposed to a quantised one."""
    return isinstance(module, (nn.Linear, Conv1D)) and module.weight.dtype == torch.float32


def matvec(x: torch.Tensor, weight: torch.Tensor, bias=None, scales=None) -> torch.Tensor:
    """``x @ weight.T`` for one row, written as multiply-and-sum over contiguous [out, in] rows.

    Only meant inside ``torch.compile``: inductor turns it into one vectorised loop that streams the weight once,
    faster than MKL's mat-vec on AMD CPUs (benchmarks/README.md), and a decoding step's time is the time to
    stream its weights. int8 weights are widened to ``x``'s dtype inside the same loop (``scales`` then restores
    their per-row magnitude), a quarter of the bytes. Eagerly it would materialise the
    product: eager calls keep ``linear``.
    """
    y = (x.unsqueeze(-2) * weight).sum(-1)
    if scales is not None:
        y = y * scales
    return y if bias is None else y + bias


def runs_matvec(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``module`` should multiply ``x`` with ``matvec``: one row, inside a graph compiled for it."""
    return module.compiled_matvec and torch.compiler.is_compiling() and x.numel() == module.in_features


class Linear(nn.Linear):
    """``nn.Linear`` whose single-row products run as ``matvec`` inside a compiled decoding step.

    ``compile_decoding()`` sets ``compiled_matvec`` (and ``decode_layout`` then keeps the weight [out, in]);
    outside a graph, and for more than one row, it is ``inner_product.linear`` (``F.linear``, or oneDNN's inner
    product in a decoding step).
    """

    compiled_matvec = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if runs_matvec(self, x):
            return matvec(x, self.weight, self.bias)
        return linear(x, self.weight, self.bias, self)


class Conv1D(nn.Module):
    """A linear layer whose weight parameter is [in, out] (GPT-2's layout and name), ``x @ W + b`` as one
    product (``inner_product.linear``). Like ``Linear``, its one-row products run as ``matvec`` inside a compiled
    decoding step, where ``decode_layout`` stores the same [in, out] parameter as contiguous [out, in] rows."""

    compiled_matvec = False

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))
        self.in_features, self.out_features = n_in, n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if runs_matvec(self, x):
            return matvec(x, self.weight.t(), self.bias)
        return linear(x, self.weight.t(), self.bias, self)


class RMSNorm(nn.Module):
    """x / rms(x) * weight, in float32. Written from primitives: ``F.rms_norm`` is several times slower on CPU."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:  # in float32 the two casts would still be two op calls per norm
            return self.weight * self._normalise(x.float()).to(x.dtype)
        return self.weight * self._normalise(x)

    def _normalise(self, h: torch.Tensor) -> torch.Tensor:
        return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
