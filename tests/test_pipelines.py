"""pipeline(...) against transformers' pipeline(...) on the same checkpoints: same structure, labels, ids and
words; scores within 1e-4. Head checkpoints are small random BERTs saved by transformers next to the real
MiniLM tokenizer files; text generation uses a random GPT-2 with the real GPT-2 tokenizer, and SmolLM2 (slow);
the seq2seq tasks a random T5 with a T5-layout sentencepiece tokenizer."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from conftest import oracle
from fixtures import (
    PIPELINE_CHATS,
    PIPELINE_OPTIONS,
    bert_with_minilm_tokenizer,
    gpt2_with_gpt2_tokenizer,
    reference_t5,
    smollm2_reference,
)
from tinyformers.pipelines import pipeline

transformers = oracle("transformers")

ATOL = 1e-4
TEXTS = [
    "Hugging Face is a company based in New York City.",
    "My name is Wolfgang and I live in Berlin, near the Brandenburger Tor.",
    "Café naïve résumé — Ångström units 你好世界 👋",
    "tokenization of unbelievably long words",
]
MASKED = ["Paris is the [MASK] of France.", "The [MASK] sat on the mat.", "I [MASK] to the [MASK] yesterday."]
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def assert_same(ours, ref, path="result"):
    """Same nesting, same keys, equal strings/ints, floats within ATOL (numpy scalars count as floats)."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict) and list(ours) == list(ref), f"{path}: keys {list(ours)} != {list(ref)}"
        for key in ref:
            assert_same(ours[key], ref[key], f"{path}[{key!r}]")
    elif isinstance(ref, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(ref), f"{path}: {ours!r} != {ref!r}"
        for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(ref, str) or isinstance(ref, int) and not hasattr(ref, "dtype"):
        assert ours == ref, f"{path}: {ours!r} != {ref!r}"
    else:
        assert math.isclose(float(ours), float(ref), abs_tol=ATOL), f"{path}: {ours} != {float(ref)}"


@pytest.fixture(scope="module")
def bert_checkpoint(tmp_path_factory, minilm_dir):
    """A small random BERT with a head, saved by transformers, with the real MiniLM tokenizer beside it."""

    def build(head: str, **config):
        return bert_with_minilm_tokenizer(
            tmp_path_factory.mktemp(head), minilm_dir, head, initializer_range=0.2, **config
        )

    return build


@pytest.fixture(scope="module")
def mlm_dir(bert_checkpoint):
    return bert_checkpoint("BertForMaskedLM")


@pytest.fixture(scope="module")
def classifier_dir(bert_checkpoint):
    return bert_checkpoint(
        "BertForSequenceClassification", id2label={0: "negative", 1: "neutral", 2: "positive"}
    )


@pytest.fixture(scope="module")
def ner_dir(bert_checkpoint):
    return bert_checkpoint("BertForTokenClassification", id2label=dict(enumerate(NER_LABELS)))


def both(task, model, **kwargs):
    return pipeline(task, model=model, **kwargs), transformers.pipeline(task, model=model, **kwargs)


# -- feature extraction and sentence embeddings (the real MiniLM) ----------------------------------------------


@pytest.fixture(scope="module")
def extractors(minilm_dir):
    return both("feature-extraction", str(minilm_dir))


def test_feature_extraction_single_and_list(extractors):
    ours, ref = extractors
    assert_same(ours(TEXTS[0]), ref(TEXTS[0]))
    assert_same(ours(TEXTS), ref(TEXTS))


def test_feature_extraction_batched_keeps_each_inputs_own_tokens(extractors):
    ours, ref = extractors
    assert_same(ours(TEXTS, batch_size=3), ref(TEXTS))  # transformers (batch_size=1) has no padding either
    tensor = ours(TEXTS[0], return_tensors=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape[0] == 1 and tensor.shape[2] == 384


def test_sentence_embedding_is_normalised_mean_of_features(extractors):
    features, _ = extractors
    embed = pipeline("sentence-embedding", model=features.model, tokenizer=features.tokenizer)
    vectors = embed(TEXTS, batch_size=2)
    for text, vector in zip(TEXTS, vectors, strict=True):
        tokens = torch.tensor(features(text)[0])
        expected = torch.nn.functional.normalize(tokens.mean(0), dim=0)
        torch.testing.assert_close(torch.tensor(vector), expected, atol=ATOL, rtol=0)
    raw = embed(TEXTS[0], normalize=False)
    torch.testing.assert_close(
        torch.tensor(raw), torch.tensor(features(TEXTS[0])[0]).mean(0), atol=ATOL, rtol=0
    )


def test_generator_input_streams_lazily(extractors):
    ours, _ = extractors
    seen = []

    def texts():
        for text in TEXTS:
            seen.append(text)
            yield text

    results = ours(texts(), batch_size=2)
    assert seen == []  # nothing ran yet: a generator gives an iterator
    first = next(results)
    assert seen == TEXTS[:2] and len(first[0]) > 0
    assert len(list(results)) == len(TEXTS) - 1


# -- fill-mask -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fillers(mlm_dir):
    return both("fill-mask", mlm_dir)


def test_fill_mask_matches(fillers):
    ours, ref = fillers
    assert_same(ours(MASKED[0]), ref(MASKED[0]))
    assert_same(ours(MASKED, batch_size=2), ref(MASKED))  # includes a two-mask input (list of lists)
    assert_same(ours(MASKED[:1]), ref(MASKED[:1]))  # transformers' one-item-list quirk


def test_fill_mask_top_k_and_targets(fillers):
    ours, ref = fillers
    assert_same(ours(MASKED[1], top_k=2), ref(MASKED[1], top_k=2))
    targets = ["cat", "dog", "capital"]
    assert_same(ours(MASKED[0], targets=targets), ref(MASKED[0], targets=targets))


def test_fill_mask_without_mask_is_an_error(fillers):
    with pytest.raises(ValueError, match=r"no mask token \(\[MASK\]\)"):
        fillers[0]("no mask here")


# -- text classification ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifiers(classifier_dir):
    return both("text-classification", classifier_dir)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"top_k": 2}, {"top_k": None}, {"function_to_apply": "sigmoid"}, {"function_to_apply": "none"}],
)
def test_text_classification_matches(classifiers, kwargs):
    ours, ref = classifiers
    assert_same(ours(TEXTS[0], **kwargs), ref(TEXTS[0], **kwargs))
    assert_same(ours(TEXTS, batch_size=4, **kwargs), ref(TEXTS, **kwargs))


def test_text_classification_pairs_and_alias(classifiers, classifier_dir):
    ours, ref = classifiers
    pair = {"text": "A man is eating.", "text_pair": "Someone eats food."}
    assert_same(ours(pair), ref(pair))
    assert pipeline("sentiment-analysis", model=classifier_dir).task == "text-classification"


def test_text_classification_legacy_return_all_scores(classifiers):
    ours, ref = classifiers
    every = ours(TEXTS[0], return_all_scores=True)
    assert [d["label"] for d in every[0]] == [
        "negative",
        "neutral",
        "positive",
    ]  # label order, as transformers 4
    assert_same(sorted(every[0], key=lambda d: -d["score"]), ref(TEXTS[0], top_k=None))


def test_pipeline_level_parameters_are_defaults_for_calls(classifier_dir):
    ranked = pipeline("text-classification", model=classifier_dir, top_k=None)
    assert len(ranked(TEXTS[0])[0]) == 3  # wrapped like transformers: top_k was not passed to the call
    assert len(ranked(TEXTS[0], top_k=1)) == 1
    with pytest.raises(TypeError, match="unexpected argument.*topk"):
        ranked(TEXTS[0], topk=2)


# -- token classification --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taggers(ner_dir):
    return both("token-classification", ner_dir)


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "max", "average"])
def test_token_classification_matches(taggers, ner_dir, strategy):
    ours, ref = taggers
    ignore = {"ignore_labels": []}  # random weights: keep every token so all fields are compared
    expected = [ref(text, aggregation_strategy=strategy, **ignore) for text in TEXTS]
    assert_same(ours(TEXTS, aggregation_strategy=strategy, batch_size=3, **ignore), expected)
    assert_same(ours(TEXTS[0], aggregation_strategy=strategy), ref(TEXTS[0], aggregation_strategy=strategy))


def test_ner_alias_and_bad_strategy(ner_dir):
    ner = pipeline("ner", model=ner_dir)
    assert ner.task == "token-classification"
    with pytest.raises(ValueError, match="aggregation_strategy='best' is not valid"):
        ner(TEXTS[0], aggregation_strategy="best")


# -- text generation -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory, gpt2_tokenizer_dir):
    return gpt2_with_gpt2_tokenizer(
        tmp_path_factory.mktemp("gpt2"),
        gpt2_tokenizer_dir,
        "GPT2LMHeadModel",
        n_positions=128,
        initializer_range=0.2,
    )


@pytest.fixture(scope="module")
def generators(gpt2_dir):
    return both("text-generation", gpt2_dir)


PROMPTS = ["Hello, my dog is", "The meaning of life", "Once upon a time there was a very small"]


@pytest.mark.parametrize("kwargs", [{}, {"return_full_text": False}, {"return_tensors": True}])
def test_text_generation_matches(generators, kwargs):
    ours, ref = generators
    options = {"max_new_tokens": 8, "do_sample": False, **kwargs}
    assert_same(ours(PROMPTS[0], **options), ref(PROMPTS[0], **options))
    assert_same(ours(PROMPTS, batch_size=3, **options), ref(PROMPTS, **options))  # left-padded batch


def test_text_generation_several_sequences(generators):
    ours, ref = generators
    options = {"max_new_tokens": 6, "do_sample": False, "num_beams": 3, "num_return_sequences": 2}
    assert_same(ours(PROMPTS[1], **options), ref(PROMPTS[1], **options))


def test_text_generation_samples_by_default_like_transformers(generators):
    ours, ref = generators
    torch.manual_seed(0)
    first = ours(PROMPTS[0], max_new_tokens=8)
    torch.manual_seed(0)
    assert ours(PROMPTS[0], max_new_tokens=8) == first  # sampled with the torch seed
    torch.manual_seed(0)
    assert_same(first, ref(PROMPTS[0], max_new_tokens=8))  # the same draws as transformers' pipeline
    greedy = ours(PROMPTS[0], max_new_tokens=8, do_sample=False)
    samples = {ours(PROMPTS[0], max_new_tokens=8)[0]["generated_text"] for _ in range(3)}
    assert samples != {greedy[0]["generated_text"]}


def test_text_generation_bad_option_names_it(generators):
    with pytest.raises(TypeError, match="max_new_tokenz"):
        generators[0](PROMPTS[0], max_new_tokenz=3)


# -- errors and defaults ---------------------------------------------------------------------------------------


def test_unknown_task_lists_supported_tasks():
    with pytest.raises(KeyError) as info:
        pipeline("sentiment-analysiss")
    message = str(info.value)
    assert message.startswith("unknown task 'sentiment-analysiss'") and "fill-mask" in message


def test_feature_extraction_on_a_model_without_a_pad_token(gpt2_dir):
    """GPT-2 has no pad token: one text (or texts run one by one) needs none, as in transformers."""
    ours, ref = both("feature-extraction", gpt2_dir)
    assert_same(ours(PROMPTS[0]), ref(PROMPTS[0]))
    assert_same(ours(PROMPTS, batch_size=2), ref(PROMPTS))


def test_model_that_does_not_fit_says_which_tasks_it_fits(gpt2_dir):
    with pytest.raises(
        ValueError, match="'gpt2' model, which does not fit task 'fill-mask'; it fits: .*text-generation"
    ):
        pipeline("fill-mask", model=gpt2_dir)


def test_tasks_without_an_offline_default_model():
    for task in ("zero-shot-classification", "token-classification"):  # need a trained head
        with pytest.raises(ValueError, match="no default model"):
            pipeline(task)


def test_task_from_config_architectures(mlm_dir):
    assert pipeline(model=mlm_dir).task == "fill-mask"


def test_default_model_for_feature_extraction(minilm_dir, monkeypatch):
    monkeypatch.setenv("TINYFORMERS_HOME", str(minilm_dir.parent))
    assert pipeline("sentence-embedding").model.config.model_type == "bert"


# -- chat with the real SmolLM2 (slow: the oracle loads the GGUF for ~40 s, so its answers are cached) -----------

CHAT, CHAT_BATCH, CHAT_OPTIONS = PIPELINE_CHATS[0], PIPELINE_CHATS, PIPELINE_OPTIONS


@pytest.mark.slow
def test_chat_matches_transformers_on_smollm2(smollm2_dir, monkeypatch):
    ref = smollm2_reference(smollm2_dir)["pipeline"]  # transformers' chat pipeline on the same file
    monkeypatch.setenv("TINYFORMERS_HOME", str(smollm2_dir.parent))
    chat = pipeline("text-generation")  # the default model is this GGUF
    ours = chat(CHAT, **CHAT_OPTIONS)
    assert_same(ours, ref["one"])
    assert ours[0]["generated_text"][-1]["content"].startswith("The capital of France is Paris.")
    assert_same(chat(CHAT_BATCH, batch_size=2, **CHAT_OPTIONS), ref["batch"])


def test_text_generation_stop_sequence(generators):
    ours, ref = generators
    full = ours(PROMPTS[0], max_new_tokens=8, do_sample=False, return_full_text=False)[0]["generated_text"]
    stop = full[len(full) // 2 :][:3]  # a piece of what greedy decoding writes anyway
    options = {"max_new_tokens": 8, "do_sample": False, "stop_sequence": stop}
    assert_same(ours(PROMPTS[0], **options), ref(PROMPTS[0], **options))


# -- text2text-generation, summarization, translation (a random T5) -------------------------------------------
# transformers 5 has no such pipelines: the reference is its model.generate + tokenizer.decode on the same
# prefixed inputs, in batches of two (right-padded, as transformers 4's pipelines batched them).

SOURCES = [
    "The house is wonderful.",
    "I am a cat. As yet I have no name, and where I was born I have no idea.",
    "Café naïve résumé, 1984.",
]
SEQ2SEQ = [  # task, the prefix a checkpoint without task_specific_params gets, result key
    ("text2text-generation", "", "generated_text"),
    ("summarization", "summarize: ", "summary_text"),
    ("translation_en_to_de", "translate English to German: ", "translation_text"),
]
GREEDY = {"do_sample": False, "max_new_tokens": 10}


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory, t5_tokenizer_dir):
    """A random T5 saved by transformers, with the T5-layout tokenizer (spiece.model) beside it."""
    folder = tmp_path_factory.mktemp("t5")
    reference_t5("t5").save_pretrained(folder)
    shutil.copy(t5_tokenizer_dir / "spiece.model", folder)
    return folder


@pytest.fixture(scope="module")
def seq2seq_reference(t5_dir):
    """texts -> token ids and texts, by transformers' model and tokenizer, ``batch_size`` inputs at a time."""
    model = transformers.T5ForConditionalGeneration.from_pretrained(t5_dir).eval()
    tokenizer = transformers.T5Tokenizer.from_pretrained(str(t5_dir))

    @torch.inference_mode()
    def generate(texts, batch_size=2, **kwargs):
        ids, decoded = [], []
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt")
            out = model.generate(**enc, **kwargs)
            ids += out.tolist()
            decoded += tokenizer.batch_decode(out, skip_special_tokens=True)
        return ids, decoded

    return generate


def with_task_params(t5_dir, folder, params):
    """A copy of the checkpoint whose config.json has ``task_specific_params``, as real T5 checkpoints do."""
    shutil.copytree(t5_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "task_specific_params": params}))
    return str(folder)


@pytest.mark.parametrize("task, prefix, key", SEQ2SEQ)
def test_seq2seq_tasks_equal_generate_and_decode(t5_dir, seq2seq_reference, task, prefix, key):
    ours = pipeline(task, model=str(t5_dir))
    assert ours.task == task
    _, texts = seq2seq_reference([prefix + text for text in SOURCES], **GREEDY)
    assert all(texts) and len(set(texts)) == len(texts)  # random weights, but distinct non-empty outputs
    assert ours(SOURCES, batch_size=2, **GREEDY) == [{key: text} for text in texts]  # one record per input
    _, (alone,) = seq2seq_reference([prefix + SOURCES[1]], **GREEDY)
    assert ours(SOURCES[1], **GREEDY) == [{key: alone}]


def test_seq2seq_pipeline_options_and_generate_options(t5_dir, seq2seq_reference):
    summarize = pipeline("summarization", model=str(t5_dir), batch_size=2, max_new_tokens=6)
    ids, texts = seq2seq_reference(SOURCES, max_new_tokens=6, num_beams=3, num_return_sequences=2)
    grouped = [[{"summary_text": t} for t in texts[i : i + 2]] for i in range(0, len(texts), 2)]
    assert summarize(SOURCES, prefix="", num_beams=3, num_return_sequences=2) == grouped  # lists per input
    ids, _ = seq2seq_reference(["summarize: " + SOURCES[0]], max_new_tokens=6)
    assert summarize(SOURCES[0], return_tensors=True) == [{"summary_token_ids": ids[0]}]
    streamed = summarize(iter(SOURCES[:2]))  # an iterator yields each input's list, as transformers 4
    assert [next(streamed), next(streamed)] == [[r] for r in summarize(SOURCES[:2])]
    with pytest.raises(TypeError, match="max_new_tokenz"):
        summarize(SOURCES[0], max_new_tokenz=3)
    with pytest.raises(ValueError, match="summarization takes a str or a list of str; got dict"):
        summarize({"text": SOURCES[0]})


def test_seq2seq_task_specific_params(t5_dir, seq2seq_reference, tmp_path):
    params = {
        "summarization": {"prefix": "tl;dr: ", "num_beams": 2, "max_length": 9, "no_repeat_ngram_size": 2},
        "translation_en_to_fr": {"prefix": "en->fr: "},
    }
    folder = with_task_params(t5_dir, tmp_path / "t5", params)
    summarize = pipeline("summarization", model=folder)
    settings = {"num_beams": 2, "max_length": 9, "no_repeat_ngram_size": 2}
    _, texts = seq2seq_reference(["tl;dr: " + text for text in SOURCES], **settings)
    assert summarize(SOURCES, batch_size=2) == [{"summary_text": text} for text in texts]
    # the call's options come first: prefix, then generate options over the checkpoint's settings
    _, texts = seq2seq_reference(["summarize: " + SOURCES[0]], **{**settings, "num_beams": 1})
    assert summarize(SOURCES[0], prefix="summarize: ", num_beams=1) == [{"summary_text": texts[0]}]
    _, texts = seq2seq_reference(["en->fr: " + SOURCES[0]], **GREEDY)
    assert pipeline("translation_en_to_fr", model=folder)(SOURCES[0], **GREEDY) == [
        {"translation_text": texts[0]}
    ]
    _, texts = seq2seq_reference(["translate English to Romanian: " + SOURCES[0]], **GREEDY)
    assert pipeline("translation_en_to_ro", model=folder)(SOURCES[0], **GREEDY) == [
        {"translation_text": texts[0]}
    ]


def test_seq2seq_task_from_architecture_and_misfits(t5_dir, gpt2_dir):
    assert pipeline(model=str(t5_dir)).task == "text2text-generation"
    with pytest.raises(ValueError, match="'gpt2' model, which does not fit task 'summarization'"):
        pipeline("summarization", model=gpt2_dir)
    with pytest.raises(ValueError, match="'t5' model, which does not fit task 'text-generation'"):
        pipeline("text-generation", model=str(t5_dir))
