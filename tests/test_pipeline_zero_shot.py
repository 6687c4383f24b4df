"""pipeline("zero-shot-classification") against transformers' pipeline on the same NLI checkpoints: same
sequences, labels in the same order, scores within 1e-5. No NLI checkpoint is available offline, so the
checkpoints are small seeded-random BERT sequence classifiers with NLI label names, saved by transformers next to
the real MiniLM tokenizer files (plus one GPT-2 with the real GPT-2 tokenizer, which has no pad token)."""

from __future__ import annotations

import json
import math

import pytest

from cli_runner import run_cli
from conftest import oracle
from fixtures import bert_with_minilm_tokenizer, gpt2_with_gpt2_tokenizer
from tinyformers.pipelines import pipeline

transformers = oracle("transformers")

ATOL = 1e-5
TEXTS = [
    "Who are you voting for in 2020?",
    "The team scored twice in the last ten minutes and won the cup.",
    "Add the flour, then stir the sauce until it thickens.",
    "Café naïve résumé — Ångström units 你好世界 👋",
]
LABELS = ["politics", "sports", "cooking", "public health"]
# Longer than the short checkpoint's 24 tokens once paired with a hypothesis: truncation "only_first" cuts it.
LONG_TEXTS = [
    "The city council met on Tuesday evening to debate the new budget, the bus lanes and the football stadium.",
    "Preheat the oven, whisk the eggs with sugar and butter, fold in the flour and bake for forty minutes.",
]
# A label whose hypothesis alone is longer than the short checkpoint's 24 tokens: "only_first" truncation cannot
# fit that pair, which then goes to the model untruncated (transformers' fallback).
OVERLONG_LABEL = (
    "a label that keeps going on and on and on well past the twenty four tokens this tokenizer keeps"
)

# Checkpoint name -> its id2label: MNLI's order (contradiction first); entailment first, where the pipeline takes
# the last label as contradiction; and MNLI's order with a 24-token tokenizer limit, to exercise truncation.
CHECKPOINT_LABELS = {
    "nli": {0: "contradiction", 1: "neutral", 2: "entailment"},
    "entailment_first": {0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"},
    "short_context": {0: "contradiction", 1: "neutral", 2: "entailment"},
}

# (checkpoint, inputs, call arguments): every case runs once in transformers, for the whole module.
CASES = {
    "one_text": ("nli", TEXTS[0], {"candidate_labels": LABELS}),
    "texts": ("nli", TEXTS, {"candidate_labels": LABELS}),
    "one_text_in_a_list": ("nli", TEXTS[1:2], {"candidate_labels": LABELS}),
    "comma_separated_labels": ("nli", TEXTS[:2], {"candidate_labels": "sports, politics ,, cooking, "}),
    "multi_label": ("nli", TEXTS, {"candidate_labels": LABELS, "multi_label": True}),
    "one_label": ("nli", TEXTS, {"candidate_labels": ["sports"]}),
    "template": (
        "nli",
        TEXTS,
        {"candidate_labels": LABELS, "hypothesis_template": "The topic of this text is {}"},
    ),
    "template_multi_label": (
        "nli",
        TEXTS[1],
        {"candidate_labels": LABELS, "hypothesis_template": "{} is what this is about.", "multi_label": True},
    ),
    "batch_size_2": ("nli", TEXTS, {"candidate_labels": LABELS, "batch_size": 2}),
    "batch_size_16": ("nli", TEXTS, {"candidate_labels": LABELS, "batch_size": 16}),
    "entailment_first": ("entailment_first", TEXTS, {"candidate_labels": LABELS}),
    "entailment_first_multi_label": (
        "entailment_first",
        TEXTS,
        {"candidate_labels": LABELS, "multi_label": True, "batch_size": 3},
    ),
    "truncated_premise": ("short_context", LONG_TEXTS + TEXTS, {"candidate_labels": LABELS, "batch_size": 4}),
    "overlong_hypothesis": ("short_context", TEXTS[1:3], {"candidate_labels": ["sports", OVERLONG_LABEL]}),
}


def save_nli_checkpoint(folder, minilm_dir, id2label: dict[int, str], model_max_length: int | None = None):
    """A seeded-random BertForSequenceClassification with NLI label names and the real MiniLM tokenizer."""
    bert_with_minilm_tokenizer(
        folder,
        minilm_dir,
        "BertForSequenceClassification",
        initializer_range=0.5,  # spread-out logits, so no two labels score within the tolerance of each other
        id2label=id2label,
        # transformers 5 does not derive label2id from id2label here, and its pipeline reads label2id.
        label2id={label: i for i, label in id2label.items()},
    )
    if model_max_length is not None:
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
        tokenizer_config["model_max_length"] = model_max_length
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return str(folder)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, minilm_dir) -> dict[str, str]:
    return {
        name: save_nli_checkpoint(
            tmp_path_factory.mktemp(name),
            minilm_dir,
            id2label,
            model_max_length=24 if name == "short_context" else None,
        )
        for name, id2label in CHECKPOINT_LABELS.items()
    }


@pytest.fixture(scope="module")
def reference(checkpoints) -> dict[str, object]:
    """transformers' output for every case."""
    pipes = {
        name: transformers.pipeline("zero-shot-classification", model=folder)
        for name, folder in checkpoints.items()
    }
    return {case: pipes[checkpoint](inputs, **kwargs) for case, (checkpoint, inputs, kwargs) in CASES.items()}


@pytest.fixture(scope="module")
def pipes(checkpoints):
    return {name: pipeline("zero-shot-classification", model=folder) for name, folder in checkpoints.items()}


def assert_same(ours, ref):
    """The same structure; per result, the same sequence, labels in the same order, scores within ATOL."""
    if isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref)
        for one, other in zip(ours, ref, strict=True):
            assert_same(one, other)
        return
    assert list(ours) == ["sequence", "labels", "scores"] == list(ref)
    assert ours["sequence"] == ref["sequence"]
    assert ours["labels"] == ref["labels"], (ours, ref)
    assert all(isinstance(score, float) for score in ours["scores"])
    for score, expected in zip(ours["scores"], ref["scores"], strict=True):
        assert math.isclose(score, expected, abs_tol=ATOL), (ours, ref)


@pytest.mark.parametrize("case", CASES)
def test_same_as_transformers(case, pipes, reference):
    checkpoint, inputs, kwargs = CASES[case]
    assert_same(pipes[checkpoint](inputs, **kwargs), reference[case])


def test_scores_of_one_text_sum_to_one_unless_multi_label(reference):
    assert math.isclose(sum(reference["one_text"]["scores"]), 1.0, abs_tol=1e-6)
    assert sum(reference["multi_label"][0]["scores"]) > 1.0  # independent probabilities


def test_candidate_labels_as_the_second_positional_argument(pipes, reference):
    assert_same(pipes["nli"](TEXTS, LABELS), reference["texts"])


def test_call_arguments_given_to_pipeline(checkpoints, reference):
    pipe = pipeline(
        "zero-shot-classification", model=checkpoints["nli"], candidate_labels=LABELS, multi_label=True
    )
    assert_same(pipe(TEXTS), reference["multi_label"])
    assert_same(pipe(TEXTS, multi_label=False), reference["texts"])


def test_a_generator_gives_results_lazily(pipes, reference):
    results = pipes["nli"]((text for text in TEXTS), candidate_labels=LABELS, batch_size=3)
    assert not isinstance(results, list)
    assert_same(list(results), reference["texts"])


def test_tokenizer_without_pad_token_runs_each_pair_alone(tmp_path, gpt2_tokenizer_dir):
    """GPT-2 has no pad token: transformers then runs every (text, label) pair on its own; so does this."""
    id2label = CHECKPOINT_LABELS["nli"]
    label2id = {label: i for i, label in id2label.items()}
    gpt2_with_gpt2_tokenizer(
        tmp_path,
        gpt2_tokenizer_dir,
        "GPT2ForSequenceClassification",
        initializer_range=0.5,
        id2label=id2label,
        label2id=label2id,
    )
    ref = transformers.pipeline("zero-shot-classification", model=str(tmp_path))(TEXTS[:3], LABELS)
    ours = pipeline("zero-shot-classification", model=str(tmp_path))(TEXTS[:3], LABELS, batch_size=3)
    assert_same(ours, ref)


# -- errors: one line, naming the problem and the fix ----------------------------------------------------------


def one_line_error(call, match: str) -> str:
    with pytest.raises(ValueError, match=match) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    "labels", [None, [], "", " , "], ids=["missing", "empty_list", "empty_str", "blanks"]
)
def test_no_candidate_labels(pipes, labels):
    kwargs = {} if labels is None else {"candidate_labels": labels}
    message = one_line_error(lambda: pipes["nli"](TEXTS[0], **kwargs), "needs candidate labels")
    assert "candidate_labels=['sports', 'politics']" in message


@pytest.mark.parametrize("template", ["This example is about sports.", "This example is {label}."])
def test_template_without_a_place_for_the_label(pipes, template):
    message = one_line_error(
        lambda: pipes["nli"](TEXTS[0], candidate_labels=LABELS, hypothesis_template=template),
        "has no {} where the label goes",
    )
    assert "This example is {}." in message


def test_model_without_an_entailment_label(tmp_path, minilm_dir):
    folder = save_nli_checkpoint(tmp_path, minilm_dir, {0: "negative", 1: "positive"})
    message = one_line_error(
        lambda: pipeline("zero-shot-classification", model=folder), "labels include entailment"
    )
    assert "['negative', 'positive']" in message and "id2label" in message


def test_bad_inputs(pipes):
    one_line_error(lambda: pipes["nli"]("", candidate_labels=LABELS), "non-empty str inputs")
    one_line_error(lambda: pipes["nli"](TEXTS[0], LABELS, candidate_labels=LABELS), "given twice")
    one_line_error(lambda: pipes["nli"](TEXTS[0], LABELS, "{}"), "pass the others by name")


# -- the command line ------------------------------------------------------------------------------------------


def test_cli_run(checkpoints, reference):
    command = ["run", "zero-shot-classification", TEXTS[0]]
    command += ["-p", f"candidate_labels={','.join(LABELS)}", "--model", checkpoints["nli"], "--json"]
    out = run_cli(*command)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["task"] == "zero-shot-classification"
    assert_same(data["results"][0]["result"], reference["one_text"])
