"""GPT-2: learned token + position embeddings, pre-LayerNorm decoder blocks with causal SDPA attention, heads.

Matrices keep GPT-2's own [in, out] parameters (``Conv1D``) and the checkpoint's fused attention projection
(``c_attn`` = Q, K, V). In a forward ``x @ W + b`` is one ``addmm``, the same arithmetic transformers does, so
results agree bit for bit; a decoding step's products run as oneDNN's inner product, several times faster for a
few rows (``inner_product.py``), which is why float32 parameters sit in memory as [out, in] rows
(``layers.decode_layout``; saving is unchanged). ``compile_decoding()`` and ``quantize_weights("int8")`` work as
for Llama (``models/compiled.py``, ``models/quantized.py``).

Generation goes through ``tinyformers.generation``: this file only provides the model side of its protocol
(``allocate_cache`` and ``next_token_logits``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..configuration import PretrainedConfig
from ..generation import StaticKVCache
from ..modeling import PreTrainedModel, Rename, WeightMap
from ..outputs import SequenceClassifierOutput
from .decoder import CausalLM, DecoderBackbone
from .inner_product import linear
from .layers import Conv1D, Linear, activation, attend, dropout, sequence_classification_loss


class GPT2Config(PretrainedConfig):
    model_type = "gpt2"
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    summary_type: str = "cls_index"
    summary_use_proj: bool = True
    summary_activation: str | None = None
    summary_proj_to_labels: bool = True
    summary_first_dropout: float = 0.1
    scale_attn_weights: bool = True
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    add_cross_attention: bool = False
    tie_word_embeddings: bool = True

    def validate(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}); fix one of them in the config"
            )
        if self.add_cross_attention:
            raise ValueError(
                "add_cross_attention=True (GPT-2 as a seq2seq decoder) is not supported; set it to false"
            )
        activation(self.activation_function)

    # The generic names transformers maps onto GPT-2's own (its attribute_map); shared code reads these.
    hidden_size = property(lambda self: self.n_embd, lambda self, v: setattr(self, "n_embd", v))
    max_position_embeddings = property(
        lambda self: self.n_positions, lambda self, v: setattr(self, "n_positions", v)
    )
    num_attention_heads = property(lambda self: self.n_head, lambda self, v: setattr(self, "n_head", v))
    num_hidden_layers = property(lambda self: self.n_layer, lambda self, v: setattr(self, "n_layer", v))


def affine(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """``x @ W + b`` for a [tokens, in] matrix, one op (``inner_product.linear``); a layer that LoRA wrapped or
    quantised, or one that runs compiled, computes itself (the exact type test keeps the plain eager path a single
    op)."""
    if type(layer) is Conv1D and not layer.compiled_matvec:
        return linear(x, layer.weight.t(), layer.bias, layer)
    return layer(x)


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """``norm(x)`` without the module call and ``F.layer_norm``'s checks (4 norms a block step)."""
    return torch.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


class GPT2Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)) (pre-norm).

    Inside a block the hidden states are one [tokens, width] matrix, so each projection is a bare product
    called directly: no reshapes around it and no ``nn.Module`` call (per-step op counts and times:
    benchmarks/README.md).
    """

    def __init__(self, c: GPT2Config, index: int):
        super().__init__()
        self.index = index
        self.n_heads = c.n_head
        self.attn_norm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.qkv = Conv1D(c.n_embd, 3 * c.n_embd)
        self.attn_out = Conv1D(c.n_embd, c.n_embd)
        self.mlp_norm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.mlp_in = Conv1D(c.n_embd, c.n_inner or 4 * c.n_embd)
        self.mlp_out = Conv1D(c.n_inner or 4 * c.n_embd, c.n_embd)
        self.act = activation(c.activation_function)
        self.scale = (1 / math.sqrt(c.n_embd // c.n_head)) if c.scale_attn_weights else 1.0
        if c.scale_attn_by_inverse_layer_idx:
            self.scale /= index + 1
        self.dropout, self.attn_dropout = c.resid_pdrop, c.attn_pdrop

    def attention(self, x, b: int, s: int, mask, is_causal: bool, cache: StaticKVCache | None, attentions):
        h = x.shape[1]
        q, k, v = affine(x, self.qkv).view(b, s, 3, self.n_heads, h // self.n_heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(self.index, k, v)
        p = self.attn_dropout if self.training else 0.0
        out = attend(q, k, v, mask, is_causal, self.scale, p, attentions)
        return affine(out.transpose(1, 2).reshape(b * s, h), self.attn_out)

    def forward(
        self, x, mask=None, is_causal: bool = True, cache: StaticKVCache | None = None, attentions=None
    ):
        b, s, h = x.shape
        x = x.reshape(b * s, h)
        attn_out = self.attention(layer_norm(x, self.attn_norm), b, s, mask, is_causal, cache, attentions)
        x = x + dropout(attn_out, self.dropout, self.training)
        y = affine(self.act(affine(layer_norm(x, self.mlp_norm), self.mlp_in)), self.mlp_out)
        return (x + dropout(y, self.dropout, self.training)).view(b, s, h)


RENAMES = [
    Rename("layers.{n}.attn_norm.{p}", "h.{n}.ln_1.{p}"),
    Rename("layers.{n}.qkv.{p}", "h.{n}.attn.c_attn.{p}"),
    Rename("layers.{n}.attn_out.{p}", "h.{n}.attn.c_proj.{p}"),
    Rename("layers.{n}.mlp_norm.{p}", "h.{n}.ln_2.{p}"),
    Rename("layers.{n}.mlp_in.{p}", "h.{n}.mlp.c_fc.{p}"),
    Rename("layers.{n}.mlp_out.{p}", "h.{n}.mlp.c_proj.{p}"),
    Rename("norm.{p}", "ln_f.{p}"),
]


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    weight_map = WeightMap(RENAMES)
    # The causal-mask buffers old checkpoints saved (attn.bias is the mask, not c_attn.bias).
    ignore_on_load = (r"(^|\.)attn\.bias$", r"(^|\.)attn\.masked_bias$")

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, Conv1D):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.zeros_(module.bias)
        elif isinstance(module, GPT2Block):
            # GPT-2's scheme: residual projections start 1/sqrt(2 * n_layer) smaller (two per block).
            for proj in (module.attn_out, module.mlp_out):
                nn.init.normal_(proj.weight, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))


class GPT2Model(DecoderBackbone, GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.layers = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def embed(self, input_ids, position_ids, inputs_embeds=None):
        # F.embedding rather than the modules: two module calls less per step
        x = F.embedding(input_ids, self.wte.weight) if inputs_embeds is None else inputs_embeds
        x = x + F.embedding(position_ids, self.wpe.weight)
        return dropout(x, self.config.embd_pdrop, self.training), ()

    def cache_layout(self) -> tuple[int, int, int]:
        c = self.config
        return c.n_layer, c.n_head, c.n_embd // c.n_head


class GPT2LMHeadModel(CausalLM, GPT2PreTrainedModel):
    """GPT-2 with its language-model head: the output matrix is the token-embedding matrix (tied); generation
    reads it through ``CausalLM.output_logits`` (an [in, out] copy, faster on CPU)."""

    tied_weights = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)


class GPT2ForSequenceClassification(GPT2PreTrainedModel):
    """Logits from the hidden state of each row's last non-pad token (GPT-2 reads left to right)."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)

    def forward(self, input_ids=None, attention_mask=None, labels=None, return_dict=None, **kwargs):
        out = self.transformer(input_ids, attention_mask, return_dict=True, **kwargs)
        logits = self.score(out.last_hidden_state)
        batch, seq_len = logits.shape[:2]
        pad = self.config.pad_token_id
        if pad is None and batch != 1:
            raise ValueError(
                "GPT2ForSequenceClassification needs config.pad_token_id to find each row's last token in a batch; "
                "set it (e.g. model.config.pad_token_id = tokenizer.eos_token_id) or pass one text at a time"
            )
        if pad is None or input_ids is None:
            last = torch.full((batch,), seq_len - 1, device=logits.device)
        else:  # the rightmost non-pad token, for left and right padding alike (as transformers)
            positions = torch.arange(seq_len, device=logits.device)
            last = (positions * (input_ids != pad)).argmax(-1)
        pooled = logits[torch.arange(batch, device=logits.device), last]
        loss = (
            sequence_classification_loss(pooled, labels, self.config.problem_type)
            if labels is not None
            else None
        )
        result = SequenceClassifierOutput(loss, pooled, out.hidden_states, out.attentions)
        return result if return_dict is not False else result.to_tuple()
