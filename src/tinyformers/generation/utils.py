"""``generate``: greedy, sampling and beam search over any decoder that speaks the protocol below.

The model protocol (all a decoder needs to provide; this package never looks at the model's type):

* ``model.allocate_cache(batch_size, max_length) -> StaticKVCache`` — preallocated keys/values for every layer.
* ``model.next_token_logits(input_ids, position_ids, cache) -> Tensor[batch, vocab]`` — run the new tokens
  ``input_ids [batch, n]`` at ``position_ids [batch, n]`` through the model, writing their keys/values into
  ``cache`` (after ``cache.length`` positions, masked by ``cache.attention_mask``) and return the logits of the
  last position only.
* ``model.config`` — for ``max_position_embeddings`` (the longest sequence, if the model has a limit) and the
  special token ids; ``model.generation_config`` — the defaults from the model folder (may be absent).

The first call (prefill) feeds the whole prompt; each later call feeds one token per row. The loop ends when
every row is finished (eos token or stop string) or ``max_length`` is reached.

``generate`` works the arguments out once (``prepare.py``), then hands them to one loop: ``sampling.py`` (greedy
and sampling) or ``beam_search.py``; an encoder-decoder model is first encoded by ``seq2seq.py``.
"""

from __future__ import annotations

import torch

from .beam_search import beam_search
from .config import GENERATION_CONFIG_NAME, GenerationConfig
from .prepare import prepare
from .sampling import sample
from .seq2seq import start_decoding


@torch.inference_mode()
def generate(
    model,
    input_ids=None,
    attention_mask=None,
    generation_config=None,
    streamer=None,
    tokenizer=None,
    **kwargs,
):
    """Continue each row of ``input_ids``; returns ids ``[rows, prompt + new]`` (or an output object with
    ``return_dict_in_generate=True``). Keyword arguments are ``GenerationConfig`` fields (``max_new_tokens``,
    ``do_sample``, ``num_beams``, ``stop_strings``, ...); anything else is a ``TypeError``, and a transformers
    option that is not implemented a ``ValueError``. ``tokenizer`` is needed only for ``stop_strings``."""
    if getattr(model.config, "is_encoder_decoder", False):  # encode once; the loops below run the decoder
        model, input_ids, attention_mask = start_decoding(
            model, input_ids, attention_mask, generation_config, kwargs
        )
    p = prepare(model, input_ids, attention_mask, generation_config, kwargs, tokenizer)
    if p.max_length == p.input_ids.shape[1]:  # max_new_tokens=0
        return p.input_ids
    if p.gc.num_beams > 1:
        if streamer is not None:
            raise ValueError(
                "streamer cannot be used with beam search (beams change until the end); use num_beams=1"
            )
        if p.gc.stop_strings is not None:
            raise ValueError("stop_strings is not supported with beam search here; use num_beams=1")
        return beam_search(model, p)
    return sample(model, p, streamer)


class GenerationMixin:
    """``model.generate(...)`` for models that implement the protocol above; delegates to ``generate``.

    ``generation_config`` holds the model's own defaults: read from the folder's ``generation_config.json`` by
    ``from_pretrained``, else derived from the config's token ids; ``save_pretrained`` writes it back.
    """

    _generation_config: GenerationConfig | None = None

    @property
    def generation_config(self) -> GenerationConfig:
        if self._generation_config is None:
            self._generation_config = GenerationConfig.from_model_config(self.config)
        return self._generation_config

    @generation_config.setter
    def generation_config(self, value: GenerationConfig | None) -> None:
        self._generation_config = value

    def load_generation_config(self, directory) -> None:
        """Called by ``from_pretrained`` with the model folder: take its ``generation_config.json`` if present."""
        if (directory / GENERATION_CONFIG_NAME).is_file():
            self.generation_config = GenerationConfig.from_pretrained(directory)

    def generate(
        self,
        input_ids=None,
        attention_mask=None,
        generation_config=None,
        streamer=None,
        tokenizer=None,
        **kwargs,
    ):
        return generate(self, input_ids, attention_mask, generation_config, streamer, tokenizer, **kwargs)
