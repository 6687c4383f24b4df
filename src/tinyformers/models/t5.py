"""T5 and Flan-T5: an encoder and a decoder of pre-norm blocks, a learned relative position bias, an RMS norm, a
ReLU or gated-GELU feed-forward, and an LM head tied to the embedding (T5 v1.0) or not (v1.1 / Flan).

Attention has no 1/sqrt(d) scaling (T5 folds it into the query initialisation). Each stack's position bias is
one table (the checkpoint keeps it in the first layer), computed once per forward, merged with the padding and
causal masks into one additive mask and shared by every layer. Self-attention Q/K/V are one projection,
cross-attention K/V another, the gated FFN's two inputs a third (``RENAMES`` maps them to the checkpoint).

Generation (``tinyformers.generation.seq2seq``): the encoder runs once; the decoder's keys and values go in a
static cache, its cross-attention keys and values are projected once, and the bias + causal mask of every step
is one table sliced per step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..configuration import PretrainedConfig
from ..generation import GenerationMixin
from ..generation.seq2seq import EncoderDecoderCache
from ..modeling import PreTrainedModel, Rename, WeightMap
from ..outputs import BaseModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from .layers import (  # T5LayerNorm is exactly RMSNorm: no mean, no bias, float32 variance
    ACTIVATIONS,
    RMSNorm,
    activation,
    attend,
    decode_layout,
    dropout,
    input_length,
    merge_heads,
    padding_mask,
    recorded,
    recorders,
    split_fused_heads,
    split_heads,
    token_loss,
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
        self.o = nn.Linear(c.num_heads * c.d_kv, c.d_model, bias=False)

    def attend_and_project(self, q, k, v, mask, weights: list | None) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        return self.o(merge_heads(attend(q, k, v, mask, scale=1.0, dropout_p=p, weights=weights)))


class SelfAttention(Attention):
    def __init__(self, c: T5Config, index: int):
        super().__init__(c)
        self.index = index
        self.qkv = nn.Linear(c.d_model, 3 * c.num_heads * c.d_kv, bias=False)

    def forward(self, x, mask, cache=None, weights=None):
        q, k, v = split_fused_heads(self.qkv(x), self.n_heads, 3)
        if cache is not None:
            k, v = cache.update(self.index, k, v)
        return self.attend_and_project(q, k, v, mask, weights)


class CrossAttention(Attention):
    def __init__(self, c: T5Config):
        super().__init__(c)
        self.q = nn.Linear(c.d_model, c.num_heads * c.d_kv, bias=False)
        self.kv = nn.Linear(c.d_model, 2 * c.num_heads * c.d_kv, bias=False)

    def project(self, encoder_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the encoder output: computed once per input, reused at every decoding step."""
        return split_fused_heads(self.kv(encoder_states), self.n_heads, 2)

    def forward(self, x, encoder_kv, mask, weights=None):
        return self.attend_and_project(split_heads(self.q(x), self.n_heads), *encoder_kv, mask, weights)


class DenseActDense(nn.Module):
    def __init__(self, c: T5Config):
        super().__init__()
        self.wi = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wo = nn.Linear(c.d_ff, c.d_model, bias=False)
        self.act, self.dropout = activation(c.dense_act_fn), c.dropout_rate

    def forward(self, x):
        return self.wo(dropout(self.act(self.wi(x)), self.dropout, self.training))


class GatedActDense(nn.Module):
    """act(x W0) * (x W1), with W0 and W1 as one projection."""

    def __init__(self, c: T5Config):
        super().__init__()
        self.gate_up = nn.Linear(c.d_model, 2 * c.d_ff, bias=False)
        self.wo = nn.Linear(c.d_ff, c.d_model, bias=False)
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


def _stack_rules(stack: str, ffn_layer: int) -> list[Rename]:
    """Self-attention and feed-forward names of one stack (the decoder's FFN is layer 2, after cross-attention)."""
    ours, hf = f"{stack}.blocks.{{n}}", f"{stack}.block.{{n}}.layer"
    ffn = f"{hf}.{ffn_layer}.DenseReluDense"
    return [
        Rename(f"{ours}.attn_norm.weight", f"{hf}.0.layer_norm.weight"),
        Rename(f"{ours}.attn.qkv.weight", tuple(f"{hf}.0.SelfAttention.{x}.weight" for x in "qkv")),
        Rename(f"{ours}.attn.o.weight", f"{hf}.0.SelfAttention.o.weight"),
        Rename(
            f"{stack}.relative_attention_bias.weight",
            f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        ),
        Rename(f"{ours}.ffn_norm.weight", f"{hf}.{ffn_layer}.layer_norm.weight"),
        Rename(f"{ours}.ffn.wi.weight", f"{ffn}.wi.weight"),
        Rename(f"{ours}.ffn.gate_up.weight", (f"{ffn}.wi_0.weight", f"{ffn}.wi_1.weight")),
        Rename(f"{ours}.ffn.wo.weight", f"{ffn}.wo.weight"),
    ]


CROSS = "decoder.block.{n}.layer.1.EncDecAttention"
RENAMES = [
    *_stack_rules("encoder", 1),
    *_stack_rules("decoder", 2),
    Rename("decoder.blocks.{n}.cross_norm.weight", "decoder.block.{n}.layer.1.layer_norm.weight"),
    Rename("decoder.blocks.{n}.cross.q.weight", f"{CROSS}.q.weight"),
    Rename("decoder.blocks.{n}.cross.kv.weight", (f"{CROSS}.k.weight", f"{CROSS}.v.weight")),
    Rename("decoder.blocks.{n}.cross.o.weight", f"{CROSS}.o.weight"),
]


class T5PreTrainedModel(PreTrainedModel):
    config_class = T5Config
    base_model_prefix = "transformer"
    weight_map = WeightMap(RENAMES)
    # Copies of `shared` some checkpoints store, and a cross-attention bias table no layer ever reads.
    ignore_on_load = (
        r"^(encoder|decoder)\.embed_tokens\.weight$",
        r"EncDecAttention\.relative_attention_bias\.weight$",
    )

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' T5 initialisation: every std is ``initializer_factor`` times a fan-in rule."""
        c = self.config

        def normal(weight: torch.Tensor, std: float) -> None:
            nn.init.normal_(weight, mean=0.0, std=c.initializer_factor * std)

        if isinstance(module, RMSNorm):
            nn.init.constant_(module.weight, c.initializer_factor)
        elif isinstance(module, T5Stack):
            normal(module.relative_attention_bias.weight, c.d_model**-0.5)
        elif isinstance(module, (DenseActDense, GatedActDense)):
            wi = module.wi if isinstance(module, DenseActDense) else module.gate_up
            normal(wi.weight, c.d_model**-0.5)
            normal(module.wo.weight, c.d_ff**-0.5)
        elif isinstance(module, Attention):
            inner = c.num_heads * c.d_kv
            if isinstance(module, SelfAttention):
                q, kv = module.qkv.weight.split([inner, 2 * inner])
            else:
                q, kv = module.q.weight, module.kv.weight
            with torch.no_grad():  # q is scaled down by sqrt(d_kv): T5's stand-in for scaling the scores
                normal(q, (c.d_model * c.d_kv) ** -0.5)
                normal(kv, c.d_model**-0.5)
            normal(module.o.weight, inner**-0.5)
        elif isinstance(module, T5PreTrainedModel):
            normal(module.shared.weight, 1.0)
        if isinstance(module, nn.Linear) and module is getattr(self, "lm_head", None):
            normal(module.weight, 1.0)

    def _apply(self, fn, recurse=True):
        # Every dtype or device change (.to, loading) re-picks the layout of the decoder's matrices
        # (``decode_layout``): one-row products with a matrix stored [in, out] are faster where it widens its input
        # and slower where it narrows it, so only the widening ones move (benchmarks/README.md). The encoder, run
        # once per input over many rows, keeps transformers' layout and stays bit-identical to it.
        super()._apply(fn, recurse)
        decoder, head = getattr(self, "decoder", None), getattr(self, "lm_head", None)
        matrices = [m for m in decoder.modules() if isinstance(m, nn.Linear)] if decoder is not None else []
        if head is not None and head.weight is not self.shared.weight:  # a tied head stays [vocab, width]
            matrices.append(head)
        for module in matrices:
            if module.out_features > module.in_features:
                decode_layout(module)
        return self

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def encode(self, input_ids=None, attention_mask=None, inputs_embeds=None, hidden=None, attn=None):
        """The encoder's last hidden state ``[batch, seq, d_model]``; ``attention_mask`` is 1 for tokens, 0 for pad."""
        length = input_length(input_ids, inputs_embeds)
        x = self.shared(input_ids) if inputs_embeds is None else inputs_embeds
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # nothing padded: the bias alone is the mask
        return self.encoder.run(
            x, self.encoder.self_attention_mask(length, attention_mask), hidden=hidden, attn=attn
        )


class T5EncoderModel(T5PreTrainedModel):
    """The encoder alone (sentence embeddings, classifiers): reads full T5 checkpoints, ignoring the decoder."""

    ignore_on_load = (*T5PreTrainedModel.ignore_on_load, r"^decoder\.", r"^lm_head\.")

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        hidden, attn = recorders(self.config, output_hidden_states, output_attentions)
        x = self.encode(input_ids, attention_mask, inputs_embeds, hidden, attn)
        out = BaseModelOutput(last_hidden_state=x, hidden_states=recorded(hidden), attentions=recorded(attn))
        return out if return_dict is not False else out.to_tuple()


class T5EncoderDecoder(T5PreTrainedModel):
    """The shared embedding, the encoder and the decoder; the base of ``T5Model`` and the LM."""

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False)
        self.decoder = T5Stack(config, is_decoder=True)

    def get_encoder(self):
        return self.encode

    def _shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs for teacher forcing: the start token, then the labels but the last (-100 -> pad)."""
        start, pad = self.config.decoder_start_token_id, self.config.pad_token_id
        if start is None or pad is None:
            raise ValueError(
                "labels need config.decoder_start_token_id and config.pad_token_id to build decoder inputs; "
                "set both (0 for T5) or pass decoder_input_ids"
            )
        shifted = labels.new_full(labels.shape, start)
        shifted[..., 1:] = labels[..., :-1]
        return shifted.masked_fill(shifted == -100, pad)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        encoder_outputs=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        """The decoder over a whole target (teacher forcing; generation uses ``next_token_logits``), with the
        encoder output and the hidden states and attention probabilities asked for. ``encoder_outputs`` (a
        tensor, an output object or a tuple starting with the hidden state) skips the encoder."""
        if (decoder_input_ids is None) == (decoder_inputs_embeds is None):
            raise ValueError(
                "pass exactly one of decoder_input_ids or decoder_inputs_embeds (or labels, to shift into them)"
            )
        encoder_hidden, encoder_attn = recorders(self.config, output_hidden_states, output_attentions)
        hidden, attn = recorders(self.config, output_hidden_states, output_attentions)
        cross = None if attn is None else []
        if encoder_outputs is None:
            encoder_states = self.encode(
                input_ids, attention_mask, inputs_embeds, encoder_hidden, encoder_attn
            )
        else:
            encoder_states = encoder_outputs if torch.is_tensor(encoder_outputs) else encoder_outputs[0]
        x = self.shared(decoder_input_ids) if decoder_inputs_embeds is None else decoder_inputs_embeds
        if decoder_attention_mask is not None and bool(decoder_attention_mask.all()):
            decoder_attention_mask = None
        mask = self.decoder.self_attention_mask(x.shape[1], decoder_attention_mask)
        encoder_kv = [block.cross.project(encoder_states) for block in self.decoder.blocks]
        x = self.decoder.run(x, mask, None, encoder_kv, padding_mask(attention_mask), hidden, attn, cross)
        out = Seq2SeqModelOutput(
            last_hidden_state=x,
            decoder_hidden_states=recorded(hidden),
            decoder_attentions=recorded(attn),
            cross_attentions=recorded(cross),
            encoder_last_hidden_state=encoder_states,
            encoder_hidden_states=recorded(encoder_hidden),
            encoder_attentions=recorded(encoder_attn),
        )
        return out if return_dict is not False else out.to_tuple()


class T5Model(T5EncoderDecoder):
    ignore_on_load = (*T5PreTrainedModel.ignore_on_load, r"^lm_head\.")


class T5ForConditionalGeneration(GenerationMixin, T5EncoderDecoder):
    tied_weights = {"lm_head.weight": "shared.weight"}

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    @classmethod
    def adapt_config_to_checkpoint(cls, config, hf_state):
        # As transformers 5: the head is tied unless the checkpoint stores a different one, whatever
        # tie_word_embeddings says (transformers 5 writes True even for untied Flan-T5 heads).
        head, shared = hf_state.get("lm_head.weight"), hf_state.get("shared.weight")
        config.tie_word_embeddings = head is None or (shared is not None and torch.equal(head, shared))

    def lm_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.scale_decoder_outputs:  # T5 v1.0 rescales before its tied head
            x = x * self.config.d_model**-0.5
        return self.lm_head(x)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        encoder_outputs=None,
        labels=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        """``labels`` [batch, target] give the loss; without decoder inputs they are shifted right into them."""
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self._shift_right(labels)
        base = super().forward(
            input_ids,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs,
            inputs_embeds,
            decoder_inputs_embeds,
            output_hidden_states,
            output_attentions,
        )
        fields = dict(base)
        logits = self.lm_logits(fields.pop("last_hidden_state"))
        loss = token_loss(logits.float(), labels.to(logits.device)) if labels is not None else None
        out = Seq2SeqLMOutput(loss=loss, logits=logits, **fields)
        return out if return_dict is not False else out.to_tuple()

    # ---- the encoder-decoder generation protocol (see tinyformers.generation.seq2seq) ---------------------------
    def allocate_cache(self, rows: int, max_length: int, encoder_states, encoder_mask) -> EncoderDecoderCache:
        """Decoder caches for ``rows`` sequences of up to ``max_length`` tokens, each encoder row serving
        ``rows // batch`` consecutive sequences (beams, samples)."""
        per_input = rows // encoder_states.shape[0]
        cross_kv = [
            tuple(t.repeat_interleave(per_input, 0) for t in block.cross.project(encoder_states))
            for block in self.decoder.blocks
        ]
        # Bias + causal mask for every (query, key) pair up to max_length: each step slices its rows.
        causal = torch.ones(max_length, max_length, dtype=torch.bool, device=encoder_states.device).tril()
        encoder_mask = padding_mask(encoder_mask)
        c, dtype, device = self.config, encoder_states.dtype, encoder_states.device
        return EncoderDecoderCache(
            *(c.num_decoder_layers, rows, c.num_heads, max_length, c.d_kv, dtype, device),
            cross_kv=cross_kv,
            encoder_mask=None if encoder_mask is None else encoder_mask.repeat_interleave(per_input, 0),
            self_attention_mask=additive_mask(self.decoder.position_bias(max_length), causal),
            rows_per_input=per_input,
        )

    def next_token_logits(self, input_ids, position_ids, cache: EncoderDecoderCache) -> torch.Tensor:
        # Positions enter through the relative bias, sliced from the table by the cache length.
        start, end = cache.length, cache.length + input_ids.shape[1]
        mask = cache.self_attention_mask[:, :, start:end, :end]
        x = self.decoder.run(self.shared(input_ids), mask, cache, cache.cross_kv, cache.encoder_mask)
        return self.lm_logits(x[:, -1])
