"""T5's configuration and network: an encoder and a decoder of pre-norm blocks, a learned relative position
bias, an RMS norm (T5LayerNorm is exactly ``layers.RMSNorm``: no mean, no bias, float32 variance) and a ReLU or
gated-GELU feed-forward. The model classes around them, with the checkpoint names, are in ``t5.py``.

Attention has no 1/sqrt(d) scaling (T5 folds it into the query initialisation). Each stack's position bias is
one table (the checkpoint keeps it in the first layer), computed once per forward, merged with the padding and
causal masks into one additive mask and shared by every layer. Self-attention Q/K/V are one projection,
cross-attention K/V another, the gated FFN's two inputs a third.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..configuration import PretrainedConfig
from .layers import (
    ACTIVATIONS,
    Linear,
    RMSNorm,
    activation,
    attend,
    dropout,
    merge_heads,
    split_fused_heads,
    split_heads,
)


class T5Config(PretrainedConfig):
    model_type = "t5"
    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 6
    num_decoder_layers: int | None = None
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    feed_forward_proj: str = "relu"
    is_encoder_decoder: bool = True
    use_cache: bool = True
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    decoder_start_token_id: int | None = 0
    classifier_dropout: float = 0.0
    # Whether the decoder output is multiplied by d_model**-0.5 before the LM head: T5 v1.0 (tied head) does,
    # v1.1/Flan do not. transformers 5 writes this key; older files only have tie_word_embeddings.
    scale_decoder_outputs: bool | None = None

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self.tie_word_embeddings is not False
        # Derived (and written back) as transformers does; "gated-gelu" means the tanh GELU.
        kind = self.feed_forward_proj.split("-")
        self.is_gated_act = kind[0] == "gated"
        self.dense_act_fn = "gelu_new" if self.feed_forward_proj == "gated-gelu" else kind[-1]

    def validate(self) -> None:
        kind = self.feed_forward_proj.split("-")
        if len(kind) > 2 or (len(kind) == 2 and kind[0] != "gated") or kind[-1] not in ACTIVATIONS:
            raise ValueError(
                f"feed_forward_proj '{self.feed_forward_proj}' is not supported; use 'ACT' or 'gated-ACT' with ACT "
                f"one of {', '.join(ACTIVATIONS)} (T5: 'relu', Flan-T5: 'gated-gelu')"
            )


def relative_position_bucket(relative: torch.Tensor, bidirectional: bool, buckets: int, max_distance: int):
    """Key-minus-query offsets -> bucket ids: exact for small offsets, log-spaced up to ``max_distance``.
    The encoder gives positive and negative offsets half the buckets each; the decoder sees only the past."""
    bucket = torch.zeros_like(relative)
    if bidirectional:
        buckets //= 2
        bucket += (relative > 0).long() * buckets
        relative = relative.abs()
    else:
        relative = -relative.clamp(max=0)
    exact = buckets // 2
    # Same float expression as transformers, so every offset lands in the same bucket.
    large = exact + (
        torch.log(relative.float() / exact) / math.log(max_distance / exact) * (buckets - exact)
    ).to(torch.long)
    return bucket + torch.where(relative < exact, relative, large.clamp(max=buckets - 1))


def additive_mask(bias: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """The position bias where ``keep`` (boolean) allows, the dtype's min elsewhere (as transformers: not -inf,
    so no softmax row is all -inf)."""
    return bias if keep is None else bias.masked_fill(~keep, torch.finfo(bias.dtype).min)


class Attention(nn.Module):
    """What self- and cross-attention share: SDPA without score scaling, then the output projection."""

    def __init__(self, c: T5Config):
        super().__init__()
        self.n_heads, self.dropout = c.num_heads, c.dropout_rate
        self.o = Linear(c.num_heads * c.d_kv, c.d_model, bias=False)

    def attend_and_project(self, q, k, v, mask, weights: list | None) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        return self.o(merge_heads(attend(q, k, v, mask, scale=1.0, dropout_p=p, weights=weights)))


class SelfAttention(Attention):
    def __init__(self, c: T5Config, index: int):
        super().__init__(c)
        self.index = index
        self.qkv = Linear(c.d_model, 3 * c.num_heads * c.d_kv, bias=False)

    def forward(self, x, mask, cache=None, weights=None):
        q, k, v = split_fused_heads(self.qkv(x), self.n_heads, 3)
        if cache is not None:
            k, v = cache.update(self.index, k, v)
        return self.attend_and_project(q, k, v, mask, weights)


class CrossAttention(Attention):
    def __init__(self, c: T5Config):
        super().__init__(c)
        self.q = Linear(c.d_model, c.num_heads * c.d_kv, bias=False)
        self.kv = Linear(c.d_model, 2 * c.num_heads * c.d_kv, bias=False)

    def project(self, encoder_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the encoder output: computed once per input, reused at every decoding step."""
        return split_fused_heads(self.kv(encoder_states), self.n_heads, 2)

    def forward(self, x, encoder_kv, mask, weights=None):
        return self.attend_and_project(split_heads(self.q(x), self.n_heads), *encoder_kv, mask, weights)


class DenseActDense(nn.Module):
    def __init__(self, c: T5Config):
        super().__init__()
        self.wi = Linear(c.d_model, c.d_ff, bias=False)
        self.wo = Linear(c.d_ff, c.d_model, bias=False)
        self.act, self.dropout = activation(c.dense_act_fn), c.dropout_rate

    def forward(self, x):
        return self.wo(dropout(self.act(self.wi(x)), self.dropout, self.training))


class GatedActDense(nn.Module):
    """act(x W0) * (x W1), with W0 and W1 as one projection."""

    def __init__(self, c: T5Config):
        super().__init__()
        self.gate_up = Linear(c.d_model, 2 * c.d_ff, bias=False)
        self.wo = Linear(c.d_ff, c.d_model, bias=False)
        self.act, self.dropout = activation(c.dense_act_fn), c.dropout_rate

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.wo(dropout(self.act(gate) * up, self.dropout, self.training))


class T5Block(nn.Module):
    def __init__(self, c: T5Config, index: int, is_decoder: bool):
        super().__init__()
        self.attn_norm = RMSNorm(c.d_model, c.layer_norm_epsilon)
        self.attn = SelfAttention(c, index)
        if is_decoder:
            self.cross_norm = RMSNorm(c.d_model, c.layer_norm_epsilon)
            self.cross = CrossAttention(c)
        self.ffn_norm = RMSNorm(c.d_model, c.layer_norm_epsilon)
        self.ffn = GatedActDense(c) if c.is_gated_act else DenseActDense(c)
        self.dropout = c.dropout_rate

    def residual(self, x, y):
        return x + dropout(y, self.dropout, self.training)

    def forward(self, x, mask, cache, encoder_kv, encoder_mask, attentions, cross_attentions):
        x = self.residual(x, self.attn(self.attn_norm(x), mask, cache, attentions))
        if encoder_kv is not None:
            x = self.residual(x, self.cross(self.cross_norm(x), encoder_kv, encoder_mask, cross_attentions))
        return self.residual(x, self.ffn(self.ffn_norm(x)))


class T5Stack(nn.Module):
    """The encoder (bidirectional) or the decoder (causal, with cross-attention): blocks between the embedding
    and a final norm, sharing one relative position bias table."""

    def __init__(self, c: T5Config, is_decoder: bool):
        super().__init__()
        self.config, self.is_decoder = c, is_decoder
        self.relative_attention_bias = nn.Embedding(c.relative_attention_num_buckets, c.num_heads)
        n_layers = c.num_decoder_layers if is_decoder else c.num_layers
        self.blocks = nn.ModuleList(T5Block(c, i, is_decoder) for i in range(n_layers))
        self.final_layer_norm = RMSNorm(c.d_model, c.layer_norm_epsilon)
        self.dropout = c.dropout_rate

    def position_bias(self, length: int) -> torch.Tensor:
        """[1, heads, length, length]: the bias of every (query, key) pair of positions ``0..length-1``."""
        positions = torch.arange(length, device=self.relative_attention_bias.weight.device)
        c = self.config
        bucket = relative_position_bucket(
            positions[None, :] - positions[:, None],
            not self.is_decoder,
            c.relative_attention_num_buckets,
            c.relative_attention_max_distance,
        )
        return self.relative_attention_bias(bucket).permute(2, 0, 1)[None]

    def self_attention_mask(self, length: int, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Bias + masks for a whole sequence: padding (``attention_mask``, 1/0 per key) and, in the decoder,
        causality."""
        bias = self.position_bias(length)
        keep = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        if self.is_decoder:
            causal = torch.ones(length, length, dtype=torch.bool, device=bias.device).tril()
            keep = causal if keep is None else keep & causal
        return additive_mask(bias, keep)

    def run(
        self, x, mask, cache=None, encoder_kv=None, encoder_mask=None, hidden=None, attn=None, cross=None
    ):
        """The blocks; ``encoder_kv`` is one (keys, values) pair per block. Lists given as ``hidden``, ``attn``
        and ``cross`` collect every block's input and the output, and every block's attention probabilities."""
        x = dropout(x, self.dropout, self.training)
        for i, block in enumerate(self.blocks):
            if hidden is not None:
                hidden.append(x)
            x = block(x, mask, cache, encoder_kv[i] if encoder_kv else None, encoder_mask, attn, cross)
        if cache is not None:
            cache.advance(x.shape[1])
        x = dropout(self.final_layer_norm(x), self.dropout, self.training)
        if hidden is not None:
            hidden.append(x)
        return x
