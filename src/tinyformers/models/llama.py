"""Llama (and the many models shaped like it: SmolLM2, Mistral-style GQA): RMSNorm, rotary position embeddings,
grouped-query attention with SDPA, a SwiGLU MLP, and a tied or untied output head.

Q, K and V are one fused projection and so are the MLP's gate and up projections (``RENAMES`` splits and joins
them against the checkpoint's names). Rotary cos/sin come from a table computed once for every position.

Decoding speed (SmolLM2-135M, 2-core CPU; numbers in ``benchmarks/bench_llama_generate.py``): matrices multiply
as oneDNN's inner product (``inner_product.py``), rotary runs once over Q and K together, and a one-token step
folds the GQA query group into the length dimension. ``compile_decoding()`` and ``quantize_weights("int8")`` go
further (``models/compiled.py``, ``models/quantized.py``): inside the compiled step the matrices
(``layers.Linear``) run as loops inductor generates and fuses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..configuration import PretrainedConfig
from ..generation import StaticKVCache
from ..modeling import PreTrainedModel, Rename, WeightMap
from .decoder import CausalLM, DecoderBackbone
from .layers import Linear, RMSNorm, activation, attend, decode_layout

ROPE_TYPES = ("default", "linear", "llama3")


class LlamaConfig(PretrainedConfig):
    model_type = "llama"
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pretraining_tp: int = 1
    tie_word_embeddings: bool = False
    # transformers 5 keeps theta and scaling together; older files have rope_theta + rope_scaling (read below).
    rope_parameters: dict | None = None
    attention_bias: bool = False
    attention_dropout: float = 0.0
    mlp_bias: bool = False

    def __init__(self, **kwargs):
        theta = kwargs.pop("rope_theta", None)
        scaling = kwargs.pop("rope_scaling", None)
        super().__init__(**kwargs)
        rope = dict(self.rope_parameters or {})
        if scaling:
            rope.update(scaling)
            if "type" in rope:  # the oldest spelling of rope_type
                rope.setdefault("rope_type", rope.pop("type"))
        if theta is not None:
            rope["rope_theta"] = theta
        rope.setdefault("rope_theta", 10000.0)
        rope.setdefault("rope_type", "default")
        self.rope_parameters = rope
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        self.validate()

    def validate(self) -> None:
        if self.num_key_value_heads and self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_key_value_heads "
                f"({self.num_key_value_heads}); fix the config"
            )
        rope_type = (self.rope_parameters or {}).get("rope_type", "default")
        if rope_type not in ROPE_TYPES:
            raise ValueError(f"rope_type '{rope_type}' is not supported; supported: {', '.join(ROPE_TYPES)}")
        activation(self.hidden_act)

    @property
    def rope_theta(self) -> float:
        return self.rope_parameters["rope_theta"]


def rope_inverse_frequencies(c: LlamaConfig) -> torch.Tensor:
    """Per-pair rotation speeds, with 'linear' or 'llama3' scaling for contexts longer than pretraining's."""
    rope = c.rope_parameters
    dim = c.head_dim
    inv_freq = 1.0 / (rope["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if rope["rope_type"] == "linear":
        return inv_freq / rope["factor"]
    if rope["rope_type"] == "llama3":
        # Long wavelengths slow down by `factor`, short ones stay, the band between is interpolated.
        factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
        old_context = rope["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_context / low, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old_context / high) & (wavelen <= old_context / low)
        return torch.where(medium, smoothed, scaled)
    return inv_freq


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, ``x * cos + cat(-x2, x1) * sin`` (x1, x2 the halves of the last dim), in 4 ops instead
    of 6: ``roll`` swaps the halves and the minus sign lives in ``sin_signed``; ``-a * b == a * -b`` exactly, so
    the result matches transformers' ``rotate_half`` form bit for bit."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * sin_signed


class Rotary(nn.Module):
    """cos/sin tables for every position, looked up per step instead of recomputed."""

    def __init__(self, c: LlamaConfig):
        super().__init__()
        self.config = c
        self.register_buffer("cos", torch.empty(c.max_position_embeddings, c.head_dim), persistent=False)
        # sin with the sign of the rotated first half folded in (see apply_rotary)
        self.register_buffer("sin", torch.empty(c.max_position_embeddings, c.head_dim), persistent=False)
        if not self.cos.is_meta:
            self.init_buffers()

    def init_buffers(self) -> None:
        inv_freq = rope_inverse_frequencies(self.config)
        positions = torch.arange(self.config.max_position_embeddings, dtype=torch.float32)
        freqs = torch.outer(positions, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        half = emb.shape[-1] // 2
        self.cos, self.sin = emb.cos(), torch.cat((-emb[:, :half].sin(), emb[:, half:].sin()), -1)

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[batch, seq] positions -> cos and signed sin (see ``apply_rotary``), [batch, seq, 1, head_dim]: the
        layout of the heads before they are transposed, broadcast over heads."""
        return self.cos[position_ids][:, :, None], self.sin[position_ids][:, :, None]


class LlamaBlock(nn.Module):
    def __init__(self, c: LlamaConfig, index: int):
        super().__init__()
        self.index = index
        self.n_heads, self.n_kv, self.head_dim = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.attn_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.qkv = Linear(
            c.hidden_size, (self.n_heads + 2 * self.n_kv) * self.head_dim, bias=c.attention_bias
        )
        self.attn_out = Linear(self.n_heads * self.head_dim, c.hidden_size, bias=c.attention_bias)
        self.mlp_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.gate_up = Linear(c.hidden_size, 2 * c.intermediate_size, bias=c.mlp_bias)
        self.down = Linear(c.intermediate_size, c.hidden_size, bias=c.mlp_bias)
        self.act = activation(c.hidden_act)
        self.attn_dropout = c.attention_dropout

    def attention(self, x, cos, sin, mask, is_causal: bool, cache: StaticKVCache | None, attentions):
        b, s, _ = x.shape
        qkv = self.qkv(x).view(b, s, self.n_heads + 2 * self.n_kv, self.head_dim)
        # Q and K heads are adjacent in the fused output: one rotary pass covers both (saves 4 ops a layer).
        qk = apply_rotary(qkv[:, :, : self.n_heads + self.n_kv], cos, sin).transpose(1, 2)
        q, k = qk.split([self.n_heads, self.n_kv], 1)
        v = qkv[:, :, self.n_heads + self.n_kv :].transpose(1, 2)
        if cache is not None:
            k, v = cache.update(self.index, k, v)
        p = self.attn_dropout if self.training else 0.0
        if s == 1 and self.n_heads != self.n_kv and attentions is None:
            # One new token: fold each KV head's query group into the length dimension, so SDPA runs on n_kv
            # heads without copying K/V n_heads / n_kv times (a [b, 1, 1, keys] mask broadcasts over the group).
            group = self.n_heads // self.n_kv
            q = q.reshape(b, self.n_kv, group, self.head_dim)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            return self.attn_out(out.reshape(b, 1, -1))  # [b, n_kv, group, d] is already [b, 1, heads * d]
        out = attend(q, k, v, mask, is_causal, dropout_p=p, weights=attentions)
        return self.attn_out(out.transpose(1, 2).reshape(b, s, -1))

    def forward(
        self, x, cos, sin, mask=None, is_causal=True, cache: StaticKVCache | None = None, attentions=None
    ):
        x = x + self.attention(self.attn_norm(x), cos, sin, mask, is_causal, cache, attentions)
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(self.act(gate) * up)


def _qkv_rows(c: LlamaConfig) -> list[int]:
    return [
        c.num_attention_heads * c.head_dim,
        c.num_key_value_heads * c.head_dim,
        c.num_key_value_heads * c.head_dim,
    ]


RENAMES = [
    Rename("layers.{n}.attn_norm.weight", "layers.{n}.input_layernorm.weight"),
    Rename(
        "layers.{n}.qkv.{p}",
        tuple(f"layers.{{n}}.self_attn.{name}_proj.{{p}}" for name in "qkv"),
        split=_qkv_rows,
    ),
    Rename("layers.{n}.attn_out.{p}", "layers.{n}.self_attn.o_proj.{p}"),
    Rename("layers.{n}.mlp_norm.weight", "layers.{n}.post_attention_layernorm.weight"),
    Rename("layers.{n}.gate_up.{p}", ("layers.{n}.mlp.gate_proj.{p}", "layers.{n}.mlp.up_proj.{p}")),
    Rename("layers.{n}.down.{p}", "layers.{n}.mlp.down_proj.{p}"),
]


class LlamaPreTrainedModel(PreTrainedModel):
    config_class = LlamaConfig
    base_model_prefix = "model"
    weight_map = WeightMap(RENAMES)
    ignore_on_load = (r"rotary_emb\.inv_freq$",)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    def _apply(self, fn, recurse=True):
        # Every dtype or device change (.to, .float, .bfloat16, loading) goes through here: re-pick the layout.
        super()._apply(fn, recurse)
        decode_layout(self)
        return self


class LlamaModel(DecoderBackbone, LlamaPreTrainedModel):
    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.layers = nn.ModuleList(LlamaBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary = Rotary(config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def embed(self, input_ids, position_ids, inputs_embeds=None):
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        return x, self.rotary(position_ids)

    def cache_layout(self) -> tuple[int, int, int]:
        c = self.config
        return c.num_hidden_layers, c.num_key_value_heads, c.head_dim


class LlamaForCausalLM(CausalLM, LlamaPreTrainedModel):
    tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
