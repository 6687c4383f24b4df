"""T5 and Flan-T5: the model classes (encoder alone, encoder-decoder, LM head), their checkpoint names and
initialisation. The network itself (config, attention with a relative position bias, blocks, stacks) is in
``t5_layers.py``; the generation side of the LM in ``t5_generation.py``.

The LM head is tied to the embedding (T5 v1.0) or not (v1.1 / Flan). The checkpoint keeps Q/K/V, cross-attention
K/V and the gated FFN's two inputs as separate matrices: ``RENAMES`` concatenates them into our fused ones.
"""

from __future__ import annotations

import torch
from torch import nn

from ..modeling import PreTrainedModel, Rename, WeightMap
from ..outputs import BaseModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from .layers import Linear, RMSNorm, input_length, padding_mask, recorded, recorders, token_loss
from .t5_generation import T5Decoding
from .t5_layers import Attention, DenseActDense, GatedActDense, SelfAttention, T5Config, T5Stack


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
    """The shared embedding, the encoder and the decoder; the base of ``T5Model`` and the LM, whose ``output``
    turns the decoder's last hidden state (and ``labels``) into the returned fields."""

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
        labels=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        """The decoder over a whole target (teacher forcing; generation uses ``next_token_logits``), with the
        encoder output and the hidden states and attention probabilities asked for. ``encoder_outputs`` (a
        tensor, an output object or a tuple starting with the hidden state) skips the encoder. ``labels``
        [batch, target] give the LM's loss; without decoder inputs they are shifted right into them."""
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self._shift_right(labels)
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
        out = self.output(
            x,
            labels,
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

    def output(self, x: torch.Tensor, labels, **fields) -> Seq2SeqModelOutput:
        if labels is not None:
            raise ValueError("T5Model has no LM head to compute a loss with; use T5ForConditionalGeneration")
        return Seq2SeqModelOutput(last_hidden_state=x, **fields)


class T5ForConditionalGeneration(T5Decoding, T5EncoderDecoder):
    tied_weights = {"lm_head.weight": "shared.weight"}

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)

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

    def output(self, x: torch.Tensor, labels, **fields) -> Seq2SeqLMOutput:
        logits = self.lm_logits(x)
        loss = token_loss(logits.float(), labels.to(logits.device)) if labels is not None else None
        return Seq2SeqLMOutput(loss=loss, logits=logits, **fields)
