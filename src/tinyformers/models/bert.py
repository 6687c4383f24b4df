"""BERT: embeddings, a post-LayerNorm encoder with SDPA attention, a pooler, and task heads.

Our module tree is flatter than transformers' (one ``BertLayer`` holding a fused QKV projection); ``RENAMES``
maps it to the checkpoint names, so real BERT checkpoints load and what we save loads in transformers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..configuration import PretrainedConfig
from ..modeling import PreTrainedModel, Rename, WeightMap
from ..outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .layers import (
    Packing,
    activation,
    attend,
    input_length,
    padding_mask,
    sequence_classification_loss,
    token_loss,
)


class BertConfig(PretrainedConfig):
    model_type = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    classifier_dropout: float | None = None
    use_cache: bool = True

    def validate(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); fix one of them in the config"
            )
        activation(self.hidden_act)


class BertEmbeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = c.hidden_dropout_prob

    def forward(self, input_ids, token_type_ids=None, position_ids=None, inputs_embeds=None):
        x = self.word(input_ids) if inputs_embeds is None else inputs_embeds
        seq_len = x.shape[1]
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=x.device)
        x = x + self.position(position_ids)
        if token_type_ids is None:
            x = x + self.token_type.weight[0]  # every token is segment 0: skip the gather
        else:
            x = x + self.token_type(token_type_ids)
        return F.dropout(self.norm(x), self.dropout, self.training)


class BertLayer(nn.Module):
    """Self-attention then feed-forward, each followed by residual + LayerNorm (BERT is post-norm)."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.n_heads = c.num_attention_heads
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.attn_out = nn.Linear(c.hidden_size, c.hidden_size)
        self.attn_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.ffn_in = nn.Linear(c.hidden_size, c.intermediate_size)
        self.ffn_out = nn.Linear(c.intermediate_size, c.hidden_size)
        self.ffn_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.act = activation(c.hidden_act)
        self.dropout = c.hidden_dropout_prob
        self.attn_dropout = c.attention_probs_dropout_prob

    def attention(self, x, mask, need_weights: bool, packing: Packing | None):
        qkv = self.qkv(x) if packing is None else packing.unpack(self.qkv(x))
        b, s, h = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        q, k, v = qkv.view(b, s, 3, self.n_heads, h // self.n_heads).permute(2, 0, 3, 1, 4)
        weights = [] if need_weights else None
        out = attend(q, k, v, mask, dropout_p=self.attn_dropout if self.training else 0.0, weights=weights)
        out = out.transpose(1, 2).reshape(b, s, h)
        return out if packing is None else packing.pack(out), weights[0] if weights else None

    def forward(self, x, mask=None, need_weights: bool = False, packing: Packing | None = None):
        """``x`` is [batch, seq, width], or [tokens, width] with ``packing`` (every step but attention is per
        token)."""
        a, probs = self.attention(x, mask, need_weights, packing)
        x = self.attn_norm(x + F.dropout(self.attn_out(a), self.dropout, self.training))
        y = self.ffn_out(self.act(self.ffn_in(x)))
        return self.ffn_norm(x + F.dropout(y, self.dropout, self.training)), probs


RENAMES = [
    Rename("embeddings.word.weight", "embeddings.word_embeddings.weight"),
    Rename("embeddings.position.weight", "embeddings.position_embeddings.weight"),
    Rename("embeddings.token_type.weight", "embeddings.token_type_embeddings.weight"),
    Rename("embeddings.norm.{p}", "embeddings.LayerNorm.{p}"),
    Rename(
        "layers.{n}.qkv.{p}",
        tuple(f"encoder.layer.{{n}}.attention.self.{name}.{{p}}" for name in ("query", "key", "value")),
    ),
    Rename("layers.{n}.attn_out.{p}", "encoder.layer.{n}.attention.output.dense.{p}"),
    Rename("layers.{n}.attn_norm.{p}", "encoder.layer.{n}.attention.output.LayerNorm.{p}"),
    Rename("layers.{n}.ffn_in.{p}", "encoder.layer.{n}.intermediate.dense.{p}"),
    Rename("layers.{n}.ffn_out.{p}", "encoder.layer.{n}.output.dense.{p}"),
    Rename("layers.{n}.ffn_norm.{p}", "encoder.layer.{n}.output.LayerNorm.{p}"),
    Rename("pooler.{p}", "pooler.dense.{p}"),
    Rename("mlm.transform.{p}", "cls.predictions.transform.dense.{p}"),
    Rename("mlm.norm.{p}", "cls.predictions.transform.LayerNorm.{p}"),
    Rename("mlm.decoder.weight", "cls.predictions.decoder.weight"),
    Rename("mlm.decoder.bias", "cls.predictions.bias"),
]


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    weight_map = WeightMap(RENAMES)
    ignore_on_load = (r"position_ids$", r"cls\.predictions\.decoder\.bias$", r"cls\.seq_relationship")


class BertModel(BertPreTrainedModel):
    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
        skip_padding: bool = False,
    ):
        """As transformers' ``BertModel.forward``; ``skip_padding`` (ours) runs every step but attention on the
        real tokens only, for a caller that reads no output at a padding position (they are then zeros)."""
        seq_len = input_length(input_ids, inputs_embeds)
        if seq_len > self.config.max_position_embeddings:
            raise ValueError(
                f"input has {seq_len} tokens but this model takes at most {self.config.max_position_embeddings}; "
                "tokenize with truncation=True (and max_length) to fit"
            )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = (
            output_attentions if output_attentions is not None else self.config.output_attentions
        )
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        mask = padding_mask(attention_mask)
        packing = Packing.of(attention_mask) if skip_padding else None
        hidden_states, attentions = [x], []
        if packing is not None:
            x = packing.pack(x)
        for layer in self.layers:
            x, probs = layer(x, mask, need_weights=output_attentions, packing=packing)
            hidden_states.append(x if packing is None or not output_hidden_states else packing.unpack(x))
            attentions.append(probs)
        if packing is not None:
            x = packing.unpack(x)
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None
        out = BaseModelOutputWithPooling(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )
        return out if return_dict is not False else out.to_tuple()


def _encoder_kwargs(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k != "return_dict"}


class BertForSequenceClassification(BertPreTrainedModel):
    """Pooled [CLS] vector -> dropout -> linear layer to ``num_labels`` logits."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, labels=None, return_dict=None, **kwargs):
        # Training reads only the first position: the layers can skip the padding (often 40 % of a batch)
        # when no row is padded on the left.
        skip = self.training and attention_mask is not None and bool(attention_mask[:, 0].all())
        out = self.bert(input_ids, attention_mask, skip_padding=skip, **_encoder_kwargs(kwargs))
        logits = self.classifier(F.dropout(out.pooler_output, self.dropout, self.training))
        loss = (
            sequence_classification_loss(logits, labels, self.config.problem_type)
            if labels is not None
            else None
        )
        result = SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)
        return result if return_dict is not False else result.to_tuple()


class BertForTokenClassification(BertPreTrainedModel):
    """Every token's hidden state -> dropout -> linear layer to ``num_labels`` logits (NER, POS tagging)."""

    ignore_on_load = BertPreTrainedModel.ignore_on_load + (r"pooler\.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, labels=None, return_dict=None, **kwargs):
        out = self.bert(input_ids, attention_mask, **_encoder_kwargs(kwargs))
        logits = self.classifier(F.dropout(out.last_hidden_state, self.dropout, self.training))
        loss = token_loss(logits, labels) if labels is not None else None
        result = TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)
        return result if return_dict is not False else result.to_tuple()


class BertMLMHead(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.transform = nn.Linear(c.hidden_size, c.hidden_size)
        self.act = activation(c.hidden_act)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size)

    def forward(self, x):
        return self.decoder(self.norm(self.act(self.transform(x))))


class BertForMaskedLM(BertPreTrainedModel):
    """Predicts the token behind each [MASK]; the output matrix is the word-embedding matrix (tied)."""

    ignore_on_load = BertPreTrainedModel.ignore_on_load + (r"pooler\.",)
    tied_weights = {"mlm.decoder.weight": "bert.embeddings.word.weight"}

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.mlm = BertMLMHead(config)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is getattr(self, "mlm", None):
            nn.init.zeros_(module.decoder.bias)  # transformers starts the output bias at zero

    def forward(self, input_ids=None, attention_mask=None, labels=None, return_dict=None, **kwargs):
        out = self.bert(input_ids, attention_mask, **_encoder_kwargs(kwargs))
        logits = self.mlm(out.last_hidden_state)
        loss = token_loss(logits, labels) if labels is not None else None
        result = MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)
        return result if return_dict is not False else result.to_tuple()
