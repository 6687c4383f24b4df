"""The command line as a new user meets it, from a directory outside the checkout: the default models from their
home ($TINYFORMERS_HOME, filled by `tinyformers setup`), a refusal for a checkpoint without a trained head, fill-mask
rows as transformers gives them, and one real run of every subcommand."""

from __future__ import annotations

import csv
import json
import os
import urllib.request
from pathlib import Path

import pytest
import torch

from cli_runner import run_cli
from conftest import oracle
from fixtures import bert_with_minilm_tokenizer, gpt2_with_gpt2_tokenizer
from hubserver import HubServer
from server_process import Server

ROOT = Path(__file__).resolve().parent.parent
MASKED = "Paris is the [MASK] of France."


def tinyformers(*args: str, cwd: Path, home: Path, stdin: str | None = None, **extra: str):
    """``tinyformers ARGS`` (in this process, ``cli_runner``) run from ``cwd`` with the models home ``home``; the
    test assets' own variable (ASSETS_DIR) is removed, so nothing can come from it."""
    env = {k: v for k, v in os.environ.items() if k != "ASSETS_DIR"}
    return run_cli(*args, cwd=cwd, env=env, input=stdin, TINYFORMERS_HOME=home, **extra)


def ok(done) -> str:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def one_line_error(done) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("tinyformers: error: ")
    return done.stderr


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """The user's working directory: not the checkout, no .assets in it."""
    folder = tmp_path_factory.mktemp("user")
    assert ROOT not in folder.resolve().parents and not (folder / ".assets").exists()
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory, minilm_dir, smollm2_dir) -> Path:
    """A models home as `tinyformers setup` leaves it, made of links to the test assets."""
    folder = tmp_path_factory.mktemp("home")
    (folder / "minilm").symlink_to(minilm_dir, target_is_directory=True)
    (folder / "smollm2").symlink_to(smollm2_dir, target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("empty-home")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir, gpt2_tokenizer_dir) -> dict[str, str]:
    """Small seeded-random checkpoints saved by transformers, with the real tokenizers: a bare BERT encoder, BERT
    with a masked-LM head, with a classifier head, and a GPT-2 causal LM."""
    oracle("transformers").logging.set_verbosity_error()
    folder = tmp_path_factory.mktemp("tiny")
    return {
        "encoder": bert_with_minilm_tokenizer(folder / "encoder", minilm_dir, "BertModel"),
        "mlm": bert_with_minilm_tokenizer(
            folder / "mlm", minilm_dir, "BertForMaskedLM", initializer_range=0.5
        ),
        "classifier": bert_with_minilm_tokenizer(
            folder / "classifier", minilm_dir, "BertForSequenceClassification", num_labels=2
        ),
        "gpt2": gpt2_with_gpt2_tokenizer(folder / "gpt2", gpt2_tokenizer_dir, "GPT2LMHeadModel"),
    }


# -- 7. the default models, from any directory ---------------------------------------------------------------------


def test_default_models_work_from_any_directory(outside, home):
    data = json.loads(
        ok(tinyformers("--json", "embed", "A man eats.", "A man eats food.", cwd=outside, home=home))
    )
    assert Path(data["model"]) == home / "minilm"
    assert [len(item["result"]) for item in data["results"]] == [384, 384] and data["similarity"][0][1] > 0.5
    question = "What is the capital of France?"
    answer = ok(
        tinyformers("--json", "chat", "--prompt", question, "--max-new-tokens", "8", cwd=outside, home=home)
    )
    assert json.loads(answer)["reply"].startswith("The capital of France is Paris")


@pytest.mark.parametrize("command", [("chat", "--prompt", "hi"), ("embed", "hi")], ids=["chat", "embed"])
def test_a_missing_default_model_names_the_command_that_fetches_it(outside, empty_home, command):
    error = one_line_error(tinyformers(*command, cwd=outside, home=empty_home))
    assert "run `tinyformers setup`" in error and str(empty_home) in error
    assert "hub" not in error  # the default is not a hub id to look up


def test_classify_has_no_default_and_says_what_to_pass(outside, home):
    error = one_line_error(tinyformers("classify", "Great film!", cwd=outside, home=home))
    assert "no default model" in error and "--model" in error


def test_setup_verifies_the_models_already_in_their_home(outside, home):
    done = tinyformers("--json", "setup", cwd=outside, home=home)
    assert json.loads(ok(done)) == {
        "home": str(home),
        "models": {"minilm": str(home / "minilm"), "smollm2": str(home / "smollm2")},
    }
    assert (
        "minilm: ok (cached)" in done.stderr and "smollm2: ok (cached)" in done.stderr
    )  # nothing downloaded


# -- 9. a checkpoint without a trained head ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, missing",
    [
        (("classify", "Great film!"), "classifier.weight"),
        (("run", "fill-mask", MASKED), "cls.predictions.transform.dense.weight"),
        (("run", "token-classification", "Ada lives in London."), "classifier.weight"),
    ],
    ids=["classify", "fill-mask", "token-classification"],
)
def test_a_checkpoint_without_a_trained_head_is_refused(outside, home, minilm_dir, command, missing):
    error = one_line_error(tinyformers(*command, "--model", str(minilm_dir), cwd=outside, home=home))
    assert "has no trained" in error and missing in error and "tinyformers train" in error


def test_info_lists_only_the_tasks_the_weights_serve(outside, home, minilm_dir, tiny):
    def tasks(model: str) -> list[str]:
        return json.loads(ok(tinyformers("--json", "info", model, cwd=outside, home=home)))["tasks"]

    assert tasks(str(minilm_dir)) == ["feature-extraction", "sentence-embedding"]
    assert "fill-mask" in tasks(tiny["mlm"]) and "text-classification" not in tasks(tiny["mlm"])


@pytest.mark.parametrize(
    "head", ["BertForSequenceClassification", "BertForTokenClassification", "BertForMaskedLM", "BertModel"]
)
def test_loading_reports_new_weights_as_transformers_does(tiny, head, caplog):
    import tinyformers

    transformers = oracle("transformers")
    _, theirs = getattr(transformers, head).from_pretrained(tiny["encoder"], output_loading_info=True)
    with caplog.at_level("WARNING", logger="tinyformers"):
        model, ours = getattr(tinyformers, head).from_pretrained(tiny["encoder"], output_loading_info=True)
    assert model.loading_info is ours and ours["mismatched_keys"] == [] == list(theirs["mismatched_keys"])
    # transformers also lists cls.predictions.decoder.bias, the tied alias of cls.predictions.bias
    assert set(ours["missing_keys"]) == set(theirs["missing_keys"]) - {"cls.predictions.decoder.bias"}
    if ours["missing_keys"]:
        assert "were not initialized from the model checkpoint" in caplog.text
        assert "You should probably TRAIN this model" in caplog.text
        assert all(name in caplog.text for name in ours["missing_keys"])
    else:
        assert "newly initialized" not in caplog.text


# -- 10. fill-mask rows ------------------------------------------------------------------------------------------


def test_fill_mask_top_k_gives_k_rows_as_transformers_pipeline(outside, home, tiny):
    transformers = oracle("transformers")
    reference = transformers.pipeline("fill-mask", model=tiny["mlm"], top_k=3)
    done = tinyformers("--json", "run", "fill-mask", MASKED, "--model", tiny["mlm"], "-p", "top_k=3",
                       cwd=outside, home=home)  # fmt: skip
    (item,) = json.loads(ok(done))["results"]
    rows, expected = item["result"], reference(MASKED)
    assert len(rows) == 3
    keys = ("token", "token_str", "sequence")
    assert [{k: r[k] for k in keys} for r in rows] == [{k: r[k] for k in keys} for r in expected]
    torch.testing.assert_close([r["score"] for r in rows], [r["score"] for r in expected], atol=1e-4, rtol=0)


# -- the new user's trial: every subcommand, from outside the checkout -------------------------------------------


def subcommands() -> list[tuple[str, ...]]:
    """Every command and subcommand the parser knows, e.g. ("hub", "token", "create")."""
    import argparse

    from tinyformers.cli import build_parser

    def walk(parser, path):
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            return [path]
        return [p for name, sub in actions[0].choices.items() for p in walk(sub, (*path, name))]

    return walk(build_parser(), ())


def test_every_subcommand_has_help(outside, empty_home):
    commands = subcommands()
    assert {c[0] for c in commands} >= {"run", "embed", "classify", "generate", "chat", "train", "serve", "setup",
                                        "info", "convert", "hub", "env"}  # fmt: skip
    for command in commands:
        out = ok(tinyformers(*command, "--help", cwd=outside, home=empty_home))
        assert out.startswith(f"usage: tinyformers {' '.join(command)}") and "examples:" in out, command


def test_pipeline_commands_run(outside, home, tiny):
    features = ok(tinyformers("run", "feature-extraction", "hello world", cwd=outside, home=home))
    assert "features: [1, 4, 384]" in features  # [CLS] hello world [SEP], from the default MiniLM
    labels = json.loads(ok(tinyformers("--json", "classify", "Great film!", "--model", tiny["classifier"],
                                       "--top-k", "2", cwd=outside, home=home)))  # fmt: skip
    assert sorted(r["label"] for r in labels["results"][0]["result"]) == ["LABEL_0", "LABEL_1"]
    text = ok(tinyformers("generate", "Hello", "--model", tiny["gpt2"], "--max-new-tokens", "5",
                          cwd=outside, home=home))  # fmt: skip
    assert text.startswith("Hello") and len(text.strip()) > len("Hello")


def test_train_then_classify_with_the_trained_head(outside, home, tiny, tmp_path):
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(12):  # distinct texts: the held-out share is picked by text hash
            writer.writerows(
                [(f"A gorgeous film, take {i}.", "positive"), (f"Dull and lifeless, take {i}.", "negative")]
            )
    out = tmp_path / "sentiment"
    ok(tinyformers("train", tiny["encoder"], "--data", str(data), "--output-dir", str(out), "--max-steps", "2",
                   "--batch-size", "4", "--max-length", "16", "--save-strategy", "no", cwd=outside, home=home))  # fmt: skip
    first = ok(
        tinyformers("--json", "classify", "A gorgeous film.", "--model", str(out), cwd=outside, home=home)
    )
    label = json.loads(first)["results"][0]["result"]["label"]
    assert label in ("positive", "negative")


def test_convert_and_env(outside, home, tiny, tmp_path):
    converted = json.loads(ok(tinyformers("--json", "convert", tiny["classifier"], str(tmp_path / "bin"), "--to",
                                          "bin", cwd=outside, home=home)))  # fmt: skip
    assert "pytorch_model.bin" in converted["files"]
    assert json.loads(ok(tinyformers("--json", "env", cwd=outside, home=home)))["torch"].startswith("2.13")


def test_serve_answers_an_openai_request(outside, tiny, monkeypatch):
    monkeypatch.chdir(outside)
    server = Server(tiny["gpt2"], "--max-batch", "2")
    try:
        with urllib.request.urlopen(server.url + "/v1/models", timeout=120) as response:
            model = json.load(response)["data"][0]["id"]
        request = urllib.request.Request(
            server.url + "/v1/completions",
            data=json.dumps({"model": model, "prompt": "Hello", "max_tokens": 3}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.status == 200 and json.load(response)["choices"][0]["text"]
    finally:
        assert server.stop() == 0


def test_hub_commands_and_hub_ids_as_models(outside, home, tiny, tmp_path, monkeypatch):
    oracle("fastapi")
    monkeypatch.chdir(outside)
    hub = HubServer(tmp_path / "hub").start(timeout=120)
    try:
        created = tinyformers("--json", "hub", "token", "create", "--root", str(hub.root), "--user", "ada",
                              "--role", "write", cwd=outside, home=home)  # fmt: skip
        token = json.loads(ok(created))["token"]
        client = {
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_CACHE": str(tmp_path / "cache"),
        }

        def cli(*args, stdin=None):
            return tinyformers(*args, cwd=outside, home=home, stdin=stdin, **client)

        ok(cli("hub", "login", stdin=token + "\n"))
        assert "ada" in ok(cli("hub", "whoami"))
        ok(cli("hub", "upload", tiny["mlm"], "ada/tiny-mlm"))
        assert "ada/tiny-mlm" in ok(cli("hub", "search", "tiny"))
        assert "config.json" in ok(cli("hub", "info", "ada/tiny-mlm"))
        ok(cli("hub", "download", "ada/tiny-mlm", "--local-dir", str(tmp_path / "copy")))
        assert (tmp_path / "copy" / "config.json").is_file()
        # a hub id works wherever a model goes: convert's source too
        ok(cli("convert", "ada/tiny-mlm", str(tmp_path / "as-bin")))
        assert (tmp_path / "as-bin" / "pytorch_model.bin").is_file() and (
            tmp_path / "as-bin" / "config.json"
        ).is_file()
        rows = json.loads(
            ok(cli("--json", "run", "fill-mask", MASKED, "--model", "ada/tiny-mlm", "-p", "top_k=2"))
        )
        assert len(rows["results"][0]["result"]) == 2
    finally:
        hub.stop()
