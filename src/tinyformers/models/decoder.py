"""What every decoder-only family shares, written once: the base model's ``forward`` around its layers, and the
causal-LM head (loss, logits, and the generation protocol of ``tinyformers.generation``).

A family provides, on its base model: ``embed(input_ids, position_ids, inputs_embeds) -> (x, layer_args)``
(``layer_args`` are extra per-step inputs every layer takes, e.g. rotary cos/sin), ``layers``, ``norm`` and
``cache_layout() -> (layers, kv_heads, head_dim)``; each layer is called as
``layer(x, *layer_args, mask, is_causal, cache, attentions)`` (``attentions``: None, or a list for ``attend``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..generation import GenerationMixin, StaticKVCache, causal_mask
from ..outputs import BaseModelOutput, CausalLMOutputWithPast
from .compiled import SpeedOptions
from .inner_product import ONEDNN_INNER_PRODUCT, decoding_step
from .layers import input_length, recorded, recorders


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Position t predicts label t+1; label -100 is skipped (padding, prompt tokens)."""
    shifted = logits[:, :-1].float().reshape(-1, logits.shape[-1])
    return F.cross_entropy(shifted, labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)


def labelled_positions_loss(head: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``causal_lm_loss`` with the head run on the positions that have a label only.

    The same mean over the same tokens, without the [batch, length, vocab] logits of the positions that a
    prompt mask or padding leaves out, nor their share of the backward pass."""
    targets = labels[:, 1:].to(x.device)
    labelled = targets != -100
    return F.cross_entropy(head(x[:, :-1][labelled]).float(), targets[labelled])


class DecoderBackbone:
    """Mixin for a decoder-only base model (GPT2Model, LlamaModel)."""

    def run(
        self,
        input_ids,
        position_ids,
        mask,
        is_causal: bool,
        cache=None,
        inputs_embeds=None,
        hidden_states=None,
        attentions=None,
    ):
        """The decoder proper; ``hidden_states``, when a list, collects every layer's input and the output,
        ``attentions``, when a list, every layer's attention probabilities."""
        x, layer_args = self.embed(input_ids, position_ids, inputs_embeds)
        for layer in self.layers:
            if hidden_states is not None:
                hidden_states.append(x)
            x = layer(x, *layer_args, mask, is_causal, cache, attentions)
        if cache is not None:
            cache.advance(x.shape[1])
        x = self.norm(x)
        if hidden_states is not None:
            hidden_states.append(x)
        return x

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        inputs_embeds=None,
        cache: StaticKVCache | None = None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        seq_len = input_length(input_ids, inputs_embeds)
        past = cache.length if cache is not None else 0
        limit = self.config.max_position_embeddings
        if past + seq_len > limit:
            raise ValueError(
                f"input reaches position {past + seq_len} but this model has {limit} positions; "
                "shorten the input (tokenize with truncation=True and max_length)"
            )
        if position_ids is None:  # as transformers: positions count from the cache length, padding or not
            position_ids = torch.arange(past, past + seq_len, device=self.device)[None]
        if cache is not None:
            if attention_mask is not None and past == 0:
                cache.set_padding(attention_mask)
            mask, is_causal = cache.attention_mask(seq_len)
        elif attention_mask is None or bool(attention_mask.all()):
            mask, is_causal = None, True
        else:
            mask, is_causal = causal_mask(attention_mask.bool(), 0), False
        hidden_states, attentions = recorders(self.config, output_hidden_states, output_attentions)
        x = self.run(
            input_ids, position_ids, mask, is_causal, cache, inputs_embeds, hidden_states, attentions
        )
        out = BaseModelOutput(
            last_hidden_state=x, hidden_states=recorded(hidden_states), attentions=recorded(attentions)
        )
        return out if return_dict is not False else out.to_tuple()


class CausalLM(SpeedOptions, GenerationMixin):
    """Mixin for a decoder-only LM: a backbone (``base_model_prefix`` names it) plus ``lm_head``."""

    @property
    def backbone(self):
        return getattr(self, self.base_model_prefix)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        labels=None,
        logits_to_keep: int = 0,
        skip_logits: bool = False,
        return_dict=None,
        **kwargs,
    ):
        """``labels`` (usually the input ids) give the next-token loss; ``logits_to_keep=n`` computes logits for the
        last ``n`` positions only (0 = all). ``skip_logits=True`` (with ``labels``; the ``Trainer`` passes it where it
        needs the loss alone) returns the loss alone, computed from the labelled positions only: ``logits`` is None."""
        out = self.backbone(input_ids, attention_mask, return_dict=True, **kwargs)
        x = out.last_hidden_state
        if skip_logits and labels is not None:
            logits, loss = None, labelled_positions_loss(self.lm_head, x, labels)
        else:
            logits = self.lm_head(x[:, -logits_to_keep:] if logits_to_keep else x)
            loss = causal_lm_loss(logits, labels) if labels is not None else None
        result = CausalLMOutputWithPast(loss, logits, kwargs.get("cache"), out.hidden_states, out.attentions)
        return result if return_dict is not False else result.to_tuple()

    # ---- the generation protocol (see tinyformers.generation) ---------------------------------------------------
    def allocate_cache(self, batch_size: int, max_length: int) -> StaticKVCache:
        if self._compiled_step is not None:
            return self._compiled_step.allocate_cache(batch_size, max_length)
        layers, kv_heads, head_dim = self.backbone.cache_layout()
        # the activations' dtype: the norms' (matrices and the embedding may be quantised)
        return StaticKVCache(layers, batch_size, kv_heads, max_length, head_dim, self.dtype, self.device)

    @decoding_step
    def next_token_logits(self, input_ids, position_ids, cache: StaticKVCache) -> torch.Tensor:
        if self._compiled_step is not None and input_ids.shape[1] == 1:
            return self._compiled_step(input_ids, position_ids, cache)
        mask, is_causal = cache.attention_mask(input_ids.shape[1])
        x = self.backbone.run(input_ids, position_ids, mask, is_causal, cache)
        return self.output_logits(x[:, -1])

    def output_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last positions during generation.

        A float32 head tied to the embedding is stored [vocab, width] for the lookup. oneDNN multiplies those rows
        fastest; without it, MKL's ``x @ W`` on an [in, out] copy is faster, and the head is the largest matrix
        (benchmarks/README.md). Untied heads are stored the fast way already (``decode_layout``), quantised heads
        have their own kernel.
        """
        head = self.head_in_out()
        return self.lm_head(x) if head is None else x @ head

    def head_in_out(self) -> torch.Tensor | None:
        """The float32 output matrix as an [in, out] copy (made once, reused while the weight is unchanged), or
        None where ``lm_head`` itself is the fast way."""
        weight = getattr(self.lm_head, "weight", None)
        if (
            ONEDNN_INNER_PRODUCT is not None
            or weight is None
            or weight.dtype != torch.float32
            or weight.stride(0) == 1
        ):
            return None
        version = 0 if weight.is_inference() else weight._version  # inference tensors have no version counter
        key = (weight.data_ptr(), version, weight.shape, weight.dtype)
        if getattr(self, "_head_key", None) != key:
            self._head_t, self._head_key = weight.detach().t().contiguous(), key
        return self._head_t
