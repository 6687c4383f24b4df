"""``tinyformers train --push-to-hub ID`` against a real ``tinyformers hub serve`` process: the trained folder
(without its checkpoints) lands in the repo with its model card, ``from_pretrained(ID)`` through the endpoint
gives the local model, and a missing token or an unreachable hub is one line that says the model is saved."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest
import torch

from cli_runner import run_cli
from conftest import asset, oracle
from fixtures import bert_with_minilm_tokenizer
from hubserver import free_port, hub_with_write_token
from tinyformers import AutoModelForSequenceClassification, AutoTokenizer
from tinyformers.hub.card import front_matter

oracle("fastapi")  # the server's own dependency, in the test extra
huggingface_hub = oracle("huggingface_hub")

TEXTS = ["a gorgeous, moving film", "dull and far too long", "a delight from start to end", "a tedious mess"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with hub_with_write_token(tmp_path_factory.mktemp("hub") / "root") as server:
        yield server


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-bert")
    return bert_with_minilm_tokenizer(folder, asset("minilm"), "BertForSequenceClassification")


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(24):
            writer.writerow([f"{TEXTS[i % 4]} ({i})", "positive" if i % 2 == 0 else "negative"])
    return path


def train_and_push(model: str, data, out, repo_id: str, **env) -> subprocess.CompletedProcess:
    return run_cli(
        "train", model, "--data", str(data), "--output-dir", str(out), "--max-steps", "2", "--batch-size", "4",
        "--save-steps", "1", "--push-to-hub", repo_id, "--json", **env,
    )  # fmt: skip


def test_push_uploads_model_card_and_loads_back(hub, tiny_classifier, reviews, tmp_path, monkeypatch):
    out = tmp_path / "sentiment"
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.write_token, "HF_HOME": tmp_path / "home"}
    result = train_and_push(tiny_classifier, reviews, out, "alice/sentiment", **env)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["pushed_to"] == "alice/sentiment" and printed["commit"]
    assert (out / "checkpoint-2").is_dir(), "the run wrote checkpoints locally"

    api = huggingface_hub.HfApi(endpoint=hub.url, token=hub.write_token)
    files = set(api.list_repo_files("alice/sentiment"))
    local = {p.name for p in out.iterdir() if p.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "training_args.bin"} <= files
    assert files - {".gitattributes"} == local, "the folder's files, and no checkpoint-*"
    assert api.model_info("alice/sentiment").sha == printed["commit"]
    card = api.hf_hub_download("alice/sentiment", "README.md", cache_dir=str(tmp_path / "hf-cache"))
    meta, body = front_matter(open(card, encoding="utf-8").read())
    assert meta["pipeline_tag"] == "text-classification" and "reviews.csv" in meta["datasets"]
    assert "tinyformers train" in body

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    pulled = AutoModelForSequenceClassification.from_pretrained("alice/sentiment").eval()
    saved = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert pulled.config.id2label == {0: "negative", 1: "positive"}
    tokenizer = AutoTokenizer.from_pretrained("alice/sentiment")
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == AutoTokenizer.from_pretrained(out)(TEXTS, padding=True)["input_ids"]
    with torch.no_grad():
        assert torch.equal(pulled(**batch).logits, saved(**batch).logits)


@pytest.mark.parametrize("problem", ["no token", "hub unreachable"])
def test_failed_push_keeps_the_saved_model_and_says_so(problem, hub, tiny_classifier, reviews, tmp_path):
    out = tmp_path / "sentiment"
    if problem == "no token":
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "", "HF_HOME": tmp_path / "home"}
        cause = "rejected the token"
    else:
        env = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_TOKEN": hub.write_token}
        cause = "cannot reach the hub"
    result = train_and_push(tiny_classifier, reviews, out, "alice/kept", **env)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tinyformers: error: the model is saved in") and cause in last, last
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    AutoModelForSequenceClassification.from_pretrained(out)


def test_bad_repo_id_fails_before_training(tiny_classifier, reviews, tmp_path):
    result = train_and_push(tiny_classifier, reviews, tmp_path / "out", "no-namespace")
    assert result.returncode == 2
    assert "--push-to-hub: 'no-namespace' is not a hub id" in result.stderr
    assert not (tmp_path / "out").exists()
