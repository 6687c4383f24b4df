"""``pipeline(task, model)``: text in, plain Python results out, shaped exactly as transformers' pipelines.

One module per task family, over the ``Pipeline`` base class (``base.py``):

* ``features.py`` — feature-extraction, sentence-embedding (ours: pooled, normalised vectors);
* ``fill_mask.py`` — fill-mask;
* ``text_classification.py`` — text-classification (alias sentiment-analysis), zero-shot-classification (with an
  NLI checkpoint);
* ``token_classification.py`` — token-classification (alias ner);
* ``text_generation.py`` — text-generation (plain text and chat messages);
* ``text2text.py`` — for seq2seq models (T5, Flan-T5): text2text-generation, summarization and
  translation_xx_to_yy (transformers 4's pipelines: transformers 5 dropped them);
* ``registry.py`` — the task names and aliases, and ``pipeline(...)`` itself (the default models live in
  ``tinyformers.defaults``, re-exported here).
"""

from __future__ import annotations

from ..defaults import DEFAULT_MODELS, default_model, models_home
from ..errors import UnknownTaskError
from .base import (
    PROGRESS_MIN_ITEMS,
    SORT_WINDOW,
    EncoderPipeline,
    GeneratingPipeline,
    Pipeline,
    as_torch_device,
    progress_bar,
    rows,
)
from .features import (
    POOLINGS,
    FeatureExtractionPipeline,
    SentenceEmbeddingPipeline,
    SentenceSetup,
    cls_pooling,
    last_token_pooling,
    max_pooling,
    mean_pooling,
    mean_sqrt_len_pooling,
    model_folder,
    pool,
    sentence_embeddings,
    sentence_setup,
    weighted_mean_pooling,
)
from .fill_mask import FillMaskPipeline
from .registry import (
    ARCHITECTURE_TASKS,
    TASK_ALIASES,
    TASKS,
    available,
    canonical_task,
    check_fits,
    pipeline,
    supported_tasks,
    task_from_architecture,
    task_name_for,
    tasks_for_model_type,
    trained_tasks,
    unavailable_note,
    untrained_weights,
)
from .text2text import LANGUAGES, SummarizationPipeline, Text2TextGenerationPipeline, TranslationPipeline
from .text_classification import (
    SCORE_FUNCTIONS,
    TextClassificationPipeline,
    ZeroShotClassificationPipeline,
    candidate_label_list,
    check_hypothesis_template,
    default_function,
    entailment_label_id,
    ranked_labels,
)
from .text_generation import (
    PIPELINE_GENERATION_DEFAULTS,
    SAMPLING_PARAMS,
    TextGenerationPipeline,
    is_chat,
    left_pad,
    with_pipeline_defaults,
)
from .token_classification import (
    AGGREGATIONS,
    TokenClassificationPipeline,
    aggregate,
    bio_tag,
    group_entities,
    split_words,
    token_entity,
    word_entity,
)

__all__ = [
    "AGGREGATIONS",
    "ARCHITECTURE_TASKS",
    "DEFAULT_MODELS",
    "EncoderPipeline",
    "FeatureExtractionPipeline",
    "FillMaskPipeline",
    "GeneratingPipeline",
    "LANGUAGES",
    "PIPELINE_GENERATION_DEFAULTS",
    "POOLINGS",
    "PROGRESS_MIN_ITEMS",
    "Pipeline",
    "SAMPLING_PARAMS",
    "SCORE_FUNCTIONS",
    "SORT_WINDOW",
    "SentenceEmbeddingPipeline",
    "SentenceSetup",
    "SummarizationPipeline",
    "TASKS",
    "TASK_ALIASES",
    "Text2TextGenerationPipeline",
    "TextClassificationPipeline",
    "TextGenerationPipeline",
    "TokenClassificationPipeline",
    "TranslationPipeline",
    "UnknownTaskError",
    "ZeroShotClassificationPipeline",
    "aggregate",
    "as_torch_device",
    "available",
    "bio_tag",
    "candidate_label_list",
    "canonical_task",
    "check_fits",
    "check_hypothesis_template",
    "cls_pooling",
    "default_function",
    "default_model",
    "models_home",
    "entailment_label_id",
    "group_entities",
    "is_chat",
    "left_pad",
    "last_token_pooling",
    "max_pooling",
    "mean_pooling",
    "mean_sqrt_len_pooling",
    "model_folder",
    "pipeline",
    "pool",
    "progress_bar",
    "ranked_labels",
    "rows",
    "sentence_embeddings",
    "sentence_setup",
    "split_words",
    "supported_tasks",
    "task_from_architecture",
    "task_name_for",
    "tasks_for_model_type",
    "trained_tasks",
    "token_entity",
    "unavailable_note",
    "untrained_weights",
    "weighted_mean_pooling",
    "with_pipeline_defaults",
    "word_entity",
]
