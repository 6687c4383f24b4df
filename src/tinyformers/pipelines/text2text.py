"""Encoder-decoder generation (T5, Flan-T5): text2text-generation, summarization and translation_xx_to_yy."""

from __future__ import annotations

import re

from ..generation.config import DEFAULTS as GENERATION_FIELDS
from .base import GeneratingPipeline

# Language names of T5's translation prefixes ("translate English to German: "), for checkpoints whose config
# has no task_specific_params entry for the pair.
LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "ro": "Romanian",
    "es": "Spanish",
    "it": "Italian",
}


class Text2TextGenerationPipeline(GeneratingPipeline):
    """Encoder-decoder generation (T5, Flan-T5), shaped as transformers 4's pipelines (transformers 5 dropped
    these three tasks): a str gives ``[{"generated_text": output}]``; a list of str one ``{"generated_text":
    ...}`` per input, or a list of records per input when there are several (``num_return_sequences``).
    ``summarization`` says ``summary_text``, ``translation_xx_to_yy`` ``translation_text``.

    Each input is ``prefix + text``. The prefix is, first found: the ``prefix=`` argument, the task's entry of
    ``config.task_specific_params`` (T5 checkpoints ship ``"summarize: "``, ``"translate English to German: "``,
    with num_beams, max_length... that become generate defaults under the call's), ``config.prefix``, then the
    task's T5 prefix (ours: transformers 4 used none). Other keyword arguments go to ``generate``; nothing is
    sampled unless ``do_sample=True``. As in transformers 4, inputs are not truncated unless ``truncation=True``
    (T5's relative positions have no length limit) and ``return_tensors=True`` gives ``generated_token_ids``
    (here a list of ints, not a tensor), the start token and any padding included.
    """

    task = "text2text-generation"
    auto_class = "AutoModelForSeq2SeqLM"
    output_key = "generated_text"
    defaults = {
        "prefix": None,
        "truncation": False,
        "clean_up_tokenization_spaces": False,
        "skip_special_tokens": True,
        "return_tensors": False,
    }

    def task_settings(self) -> dict:
        specific = getattr(self.model.config, "task_specific_params", None) or {}
        return dict(specific.get(self.task) or {})

    def default_prefix(self) -> str:
        return ""

    def resolve_params(self, params):
        settings = self.task_settings()
        prefixes = (
            params["prefix"],
            settings.pop("prefix", None),
            getattr(self.model.config, "prefix", None),
            self.default_prefix(),
        )
        prefix = next(p for p in prefixes if p is not None)
        generate_kwargs = {k: v for k, v in settings.items() if k in GENERATION_FIELDS}
        generate_kwargs.update({k: v for k, v in params.items() if k not in self.defaults})
        return {**params, "prefix": prefix, "generate": generate_kwargs}

    def preprocess(self, items, params):
        if not all(isinstance(item, str) for item in items):
            bad = next(item for item in items if not isinstance(item, str))
            raise ValueError(f"{self.task} takes a str or a list of str; got {type(bad).__name__}")
        texts = [params["prefix"] + item for item in items]
        return {"model_inputs": self.encode(texts, truncation=params["truncation"])}

    def forward(self, batch, params):
        return self.generate(batch["model_inputs"], params["generate"])

    def postprocess(self, batch, sequences, params):
        n_items = batch["model_inputs"]["input_ids"].shape[0]
        grouped = sequences.cpu().reshape(n_items, sequences.shape[0] // n_items, -1).tolist()
        if params["return_tensors"]:
            key = self.output_key.replace("_text", "_token_ids")
            return [[{key: ids} for ids in seqs] for seqs in grouped]
        return [[{self.output_key: self.decode(ids, params)} for ids in seqs] for seqs in grouped]

    def decode(self, ids: list[int], params) -> str:
        return self.tokenizer.decode(
            ids,
            skip_special_tokens=params["skip_special_tokens"],
            clean_up_tokenization_spaces=params["clean_up_tokenization_spaces"],
        )

    def __call__(self, inputs, **kwargs):
        results = super().__call__(inputs, **kwargs)
        # transformers 4's quirk, kept so code written for it works: a list of str whose inputs each give one
        # record returns those records, not one-record lists (generators still yield lists).
        if isinstance(inputs, list) and all(isinstance(r, list) and len(r) == 1 for r in results):
            return [r[0] for r in results]
        return results


class SummarizationPipeline(Text2TextGenerationPipeline):
    task = "summarization"
    output_key = "summary_text"

    def default_prefix(self) -> str:
        return "summarize: "


class TranslationPipeline(Text2TextGenerationPipeline):
    task = "translation"  # set per instance to translation_xx_to_yy
    output_key = "translation_text"

    def default_prefix(self) -> str:
        source, target = re.fullmatch(r"translation_(\w+)_to_(\w+)", self.task).groups()
        return f"translate {LANGUAGES.get(source, source)} to {LANGUAGES.get(target, target)}: "
