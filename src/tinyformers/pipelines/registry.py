"""The tasks and their aliases, and ``pipeline(task, model)`` that builds one (the default models: ``defaults.py``)."""

from __future__ import annotations

import os
import re

from ..auto import MODELS, AutoConfig, AutoTokenizer, import_object
from ..defaults import default_model
from ..errors import UnknownTaskError
from ..hub import pin_revision
from .base import Pipeline
from .features import FeatureExtractionPipeline, SentenceEmbeddingPipeline
from .fill_mask import FillMaskPipeline
from .text2text import SummarizationPipeline, Text2TextGenerationPipeline, TranslationPipeline
from .text_classification import TextClassificationPipeline, ZeroShotClassificationPipeline
from .text_generation import TextGenerationPipeline
from .token_classification import TokenClassificationPipeline

TASKS: dict[str, type[Pipeline]] = {
    "feature-extraction": FeatureExtractionPipeline,
    "sentence-embedding": SentenceEmbeddingPipeline,
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "zero-shot-classification": ZeroShotClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "text-generation": TextGenerationPipeline,
    "text2text-generation": Text2TextGenerationPipeline,
    "summarization": SummarizationPipeline,
    "translation_xx_to_yy": TranslationPipeline,
}
TASK_ALIASES = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
    "sentence-embeddings": "sentence-embedding",
}

# Architecture-name endings -> the task they serve, for pipeline(model=...) without a task.
ARCHITECTURE_TASKS = (
    ("ForMaskedLM", "fill-mask"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("Model", "feature-extraction"),
)


def available(task: str) -> bool:
    """A task is available when the registry has the Auto class it needs (seq2seq arrives with T5)."""
    return TASKS[task].auto_class in MODELS


def supported_tasks() -> list[str]:
    return [t for t in TASKS if available(t)]


def canonical_task(task: str) -> str:
    """The TASKS key for ``task`` (aliases, translation_xx_to_yy), or a one-line error listing what exists."""
    name = TASK_ALIASES.get(task, task)
    if re.fullmatch(r"translation_\w+_to_\w+", name):
        name = "translation_xx_to_yy"
    if name not in TASKS:
        raise UnknownTaskError(
            f"unknown task '{task}'; supported tasks: {', '.join(supported_tasks() + sorted(TASK_ALIASES))}"
            + unavailable_note()
        )
    if not available(name):
        raise ValueError(
            f"task '{task}' needs a seq2seq model ({TASKS[name].auto_class}), which tinyformers does not have yet"
        )
    return name


def unavailable_note() -> str:
    missing = [t for t in TASKS if not available(t)]
    return f" (needs a seq2seq model, not yet in tinyformers: {', '.join(missing)})" if missing else ""


def tasks_for_model_type(model_type: str) -> list[str]:
    return [t for t in supported_tasks() if model_type in MODELS[TASKS[t].auto_class]]


def check_fits(task: str, model_type: str, where: str) -> None:
    if model_type not in MODELS[TASKS[task].auto_class]:
        fits = tasks_for_model_type(model_type)
        raise ValueError(
            f"{where} is a '{model_type}' model, which does not fit task '{task}'; "
            f"it fits: {', '.join(fits) if fits else 'no pipeline task'}"
        )


def untrained_weights(task: str, config, hf_state: dict) -> list[str]:
    """Checkpoint names of the weights that ``task``'s model would initialise at random from ``hf_state`` (the
    task head a checkpoint lacks), found without loading it. Tasks on the bare model (feature-extraction,
    sentence-embedding) need no head, and do not use the pooler a checkpoint may lack."""
    auto_class = TASKS[task].auto_class
    if auto_class == "AutoModel":
        return []
    return import_object(MODELS[auto_class][config.model_type]).untrained_weights(config, hf_state)


def trained_tasks(config, hf_state: dict) -> list[str]:
    """The tasks whose weights are all in ``hf_state``: what the checkpoint can answer without training."""
    return [t for t in tasks_for_model_type(config.model_type) if not untrained_weights(t, config, hf_state)]


def task_from_architecture(config) -> str:
    for architecture in config.architectures or []:
        for ending, task in ARCHITECTURE_TASKS:
            if architecture.endswith(ending) and available(task):
                return task
    raise ValueError(
        f"cannot tell the task from config.architectures={config.architectures}; pass it: pipeline(task, model=...)"
    )


def pipeline(
    task: str | None = None,
    model=None,
    tokenizer=None,
    device=None,
    batch_size: int | None = None,
    dtype=None,
    quantize: str | None = None,
    gguf_file: str | None = None,
    model_kwargs: dict | None = None,
    revision: str | None = None,
    **params,
) -> Pipeline:
    """Build the pipeline for ``task`` (e.g. ``"fill-mask"``) over ``model`` — a folder, a .gguf file, a hub id
    (``org/name`` at ``revision``, from the cache or ``$HF_ENDPOINT``), or a loaded model (then pass its
    ``tokenizer`` too unless it came from a folder).

    Without ``model`` the task's default from the models home (``models_home()``, filled by `tinyformers setup`)
    is used (feature-extraction and sentence-embedding: all-MiniLM-L6-v2; text-generation: SmolLM2-135M-Instruct).
    Without ``task`` it is read from the model's ``config.architectures``. ``batch_size``: inputs per forward
    pass (default 1, as in transformers; 32 for sentence-embedding, as in sentence-transformers).
    ``quantize="int8"``: int8 matrices (``from_pretrained``'s option; encoders and decoders); ``"gguf"``: a .gguf
    decoder's quantised blocks kept as they are. Other keyword
    arguments are the task's call parameters
    (``top_k=3``, ``max_new_tokens=20``...), used for every call unless the call overrides them.
    """
    if task is None and model is None:
        raise ValueError(
            "pipeline() needs a task, a model, or both; e.g. pipeline('fill-mask', model=FOLDER)"
        )
    if task is not None:
        task_name = canonical_task(task)
        model = default_model(task_name) if model is None else model
    model_kwargs = {**(model_kwargs or {}), **({"dtype": dtype} if dtype is not None else {})}
    if quantize is not None:
        model_kwargs["quantize"] = quantize
    if isinstance(model, (str, os.PathLike)):
        source = str(model)
        revision = pin_revision(source, revision, gguf_file)  # model and tokenizer from one commit
        config = AutoConfig.from_pretrained(source, gguf_file=gguf_file, revision=revision)
        if task is None:
            task = task_name = task_from_architecture(config)
        check_fits(task_name, config.model_type, f"'{source}'")
        auto_class = import_object(f"tinyformers.auto:{TASKS[task_name].auto_class}")
        model = auto_class.from_pretrained(source, gguf_file=gguf_file, revision=revision, **model_kwargs)
    else:
        source = getattr(model.config, "_name_or_path", None)
        if task is None:
            task = task_name = task_from_architecture(model.config)
        check_fits(task_name, model.config.model_type, f"the given {type(model).__name__}")
    if tokenizer is None:
        if not source:
            raise ValueError("pass tokenizer=... with a model object that was not loaded from a folder")
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file, revision=revision)
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    return TASKS[task_name](
        model, tokenizer, device=device, batch_size=batch_size, task=task_name_for(task, task_name), **params
    )


def task_name_for(task: str, canonical: str) -> str:
    """The name a pipeline reports: the canonical one, except translation keeps its languages."""
    return task if canonical == "translation_xx_to_yy" else canonical
