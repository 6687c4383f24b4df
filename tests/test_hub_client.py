"""The hub client against a real `tinyformers hub serve` process, with the real huggingface_hub and transformers.

One server and one uploaded MiniLM repo serve the whole module; each test gets its own empty cache. Requests are
counted in the server's access log. huggingface_hub reads HF_ENDPOINT and HF_HUB_CACHE once, at import, so in this
process it gets them as arguments, and transformers runs in a subprocess with its environment set.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from conftest import oracle
from hubserver import FlakyProxy, HubServer
from tinyformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertConfig, pipeline
from tinyformers.hub import (
    EntryNotFoundError,
    HubAuthError,
    HubError,
    ModelNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    resolve_dir,
)
from tinyformers.hub.download import hub_file, snapshot_download

oracle("fastapi")  # the server's own dependency, in the test extra
huggingface_hub = oracle("huggingface_hub")
oracle("transformers")  # run in a subprocess

SENTENCES = ["The hub moves bytes.", "A second, longer sentence about caches and commits."]


@pytest.fixture(scope="module")
def hub(tmp_path_factory, minilm_dir):
    server = HubServer(tmp_path_factory.mktemp("hub") / "root").start(timeout=120)
    try:
        server.write_token = server.token("alice", "write")
        api = huggingface_hub.HfApi(endpoint=server.url, token=server.write_token)
        api.create_repo("alice/minilm")
        server.minilm_commit = api.upload_folder(folder_path=minilm_dir, repo_id="alice/minilm").oid
        yield server
    finally:
        server.stop()


@pytest.fixture()
def env(hub, tmp_path, monkeypatch):
    """A fresh cache and the endpoint for both clients; no token unless a test sets one."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "cache"


def _embed(model_id, revision=None):
    tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision)
    model = AutoModel.from_pretrained(model_id, revision=revision)
    with torch.no_grad():
        return model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).last_hidden_state


def test_minilm_through_the_endpoint_matches_the_folder(hub, env, minilm_dir):
    assert torch.allclose(_embed("alice/minilm"), _embed(minilm_dir), atol=1e-6)
    snapshot = env / "models--alice--minilm" / "snapshots" / hub.minilm_commit
    assert (snapshot / "model.safetensors").is_symlink()
    assert (env / "models--alice--minilm" / "refs" / "main").read_text() == hub.minilm_commit


def test_a_cached_pinned_load_makes_no_request(hub, env):
    commit = hub.minilm_commit
    _embed("alice/minilm", revision=commit)
    mark = hub.mark()
    _embed("alice/minilm", revision=commit)
    vectors = pipeline("feature-extraction", model="alice/minilm", revision=commit)("cached")
    assert hub.requests_since(mark) == []
    assert len(vectors[0][0]) == 384
    # A branch costs one request (which commit is it now?) per load, then the load goes on at that commit.
    mark = hub.mark()
    AutoModel.from_pretrained("alice/minilm")
    sent = hub.requests_since(mark)
    assert [line.rsplit(" ", 1)[0] for line in sent] == ["GET /api/models/alice/minilm/revision/main"]
    # huggingface_hub's snapshot_download of the branch asks the server every time.
    huggingface_hub.snapshot_download("alice/minilm", cache_dir=env, endpoint=hub.url)
    mark = hub.mark()
    huggingface_hub.snapshot_download("alice/minilm", cache_dir=env, endpoint=hub.url)
    assert len(hub.requests_since(mark)) >= 1


def test_offline_makes_no_request_at_all(hub, env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mark = hub.mark()
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE is set"):
        AutoModel.from_pretrained("alice/minilm")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    snapshot_download("alice/minilm")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mark = hub.mark()
    assert AutoModel.from_pretrained("alice/minilm").config.model_type == "bert"
    assert hub.requests_since(mark) == []


def test_one_cache_for_both_tools(hub, env, monkeypatch):
    commit = hub.minilm_commit
    # huggingface_hub downloads, tinyformers reads it without asking the server.
    huggingface_hub.snapshot_download("alice/minilm", revision=commit, cache_dir=env, endpoint=hub.url)
    mark = hub.mark()
    assert AutoTokenizer.from_pretrained("alice/minilm", revision=commit)("hub")["input_ids"][0] == 101
    assert hub.requests_since(mark) == []
    # tinyformers downloads, huggingface_hub reads it without asking the server.
    other = env.parent / "cache-2"
    monkeypatch.setenv("HF_HUB_CACHE", str(other))
    folder = resolve_dir("alice/minilm", revision=commit)
    mark = hub.mark()
    for name in ("config.json", "model.safetensors", "1_Pooling/config.json"):
        theirs = huggingface_hub.hf_hub_download(
            "alice/minilm", name, revision=commit, cache_dir=other, local_files_only=True
        )
        assert theirs == str(folder / name)
    snapshot = huggingface_hub.snapshot_download(
        "alice/minilm", revision=commit, cache_dir=other, local_files_only=True
    )
    assert snapshot == str(folder)
    assert hub.requests_since(mark) == []


def test_an_incomplete_download_is_resumed_with_a_range_request(hub, env):
    folder = snapshot_download("alice/minilm")
    weights = folder / "model.safetensors"
    blob = weights.resolve()
    data = blob.read_bytes()
    weights.unlink()
    blob.unlink()
    incomplete = blob.with_name(blob.name + ".incomplete")
    incomplete.write_bytes(data[: len(data) // 3])
    mark = hub.mark()
    snapshot_download("alice/minilm")
    assert blob.read_bytes() == data and not incomplete.exists()
    fetches = [line for line in hub.requests_since(mark) if "model.safetensors" in line]
    assert len(fetches) == 1 and " 206" in fetches[0]

    # A leftover whose bytes are wrong fails the hash check: it is dropped and fetched whole again.
    weights.unlink()
    blob.unlink()
    incomplete.write_bytes(b"\0" * (len(data) // 2))
    snapshot_download("alice/minilm")
    assert blob.read_bytes() == data and not incomplete.exists()


FLAKY_DATA = hashlib.shake_256(b"flaky").digest(1_500_000)


@pytest.fixture(scope="module")
def flaky_repo(hub):
    api = huggingface_hub.HfApi(endpoint=hub.url, token=hub.write_token)
    api.create_repo("alice/flaky")
    api.upload_file(path_or_fileobj=FLAKY_DATA, path_in_repo="data.bin", repo_id="alice/flaky")
    return "alice/flaky"


@pytest.fixture()
def proxy(hub, env, monkeypatch):
    """A FlakyProxy in front of the hub, as the client's endpoint."""
    proxy = FlakyProxy(hub.url, stall=10)
    monkeypatch.setenv("HF_ENDPOINT", proxy.url)
    yield proxy
    proxy.close()


def _fetches(proxy) -> list:
    return [entry for entry in proxy.log if "/resolve/" in entry[1]]


def test_a_flaky_hub_is_retried_and_the_download_resumed(flaky_repo, proxy, monkeypatch):
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1")  # a stalled body is given up after a second
    proxy.plan = {"/api/models/alice/flaky": [503], "/resolve/": [500, "drop", 503, "stall"]}
    started = time.monotonic()
    path = hub_file(flaky_repo, "data.bin")
    assert time.monotonic() - started < 30
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(FLAKY_DATA).digest()
    assert list(path.resolve().parent.glob("*.incomplete")) == []
    fetches = _fetches(proxy)
    assert [fault for _, _, _, fault, _ in fetches] == [500, "drop", 503, "stall", None]
    half = len(FLAKY_DATA) // 2  # what arrived before the drop, then half of the rest before the stall
    kept = half + (len(FLAKY_DATA) - half) // 2
    assert [rng for _, _, rng, _, _ in fetches] == [
        None,
        None,
        f"bytes={half}-",
        f"bytes={half}-",
        f"bytes={kept}-",
    ]
    assert fetches[-1][4] == 206  # the hub answered the last range with the rest of the file
    assert [fault for _, path, _, fault, _ in proxy.log if "/api/" in path][:2] == [503, None]


def test_a_hub_that_keeps_failing_gives_one_clear_error_in_bounded_time(flaky_repo, proxy, env, monkeypatch):
    proxy.plan = {"/resolve/": [503] * 50}
    started = time.monotonic()
    with pytest.raises(HubError) as error:
        hub_file(flaky_repo, "data.bin")
    assert time.monotonic() - started < 30
    message = str(error.value)
    assert "\n" not in message and "after 5 attempts" in message and "503" in message, message
    assert len(_fetches(proxy)) == 5

    # A body cut off every time: the same error, and what arrived is kept for the next run, which resumes.
    proxy.log.clear()
    proxy.plan = {"/resolve/": ["drop"] * 5}
    with pytest.raises(HubError, match="after 5 attempts .* bytes are kept and the next run resumes there"):
        hub_file(flaky_repo, "data.bin")
    ranges = [rng for _, _, rng, _, _ in _fetches(proxy)]
    proxy.log.clear()
    path = hub_file(flaky_repo, "data.bin")
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(FLAKY_DATA).digest()
    (resumed,) = _fetches(proxy)
    assert resumed[2] and resumed[2] not in ranges and resumed[4] == 206

    # The API keeps failing too, with nothing cached to fall back on: one line, after the request's own retries.
    monkeypatch.setenv("HF_HUB_CACHE", str(env.parent / "empty-cache"))
    proxy.plan = {"/api/": [503] * 50}
    with pytest.raises(HubError, match=r"answered 503 Service Unavailable \(after 3 attempts\)"):
        hub_file(flaky_repo, "other.bin")


# transformers (with the huggingface_hub under it) in a fresh interpreter: both read HF_ENDPOINT once, at import.
TRANSFORMERS_LOADS = """
import json, sys, torch, transformers
job = json.loads(sys.argv[1])
cached = transformers.AutoModel.from_pretrained(
    job["cached"], revision=job["commit"], cache_dir=job["cache"], local_files_only=True
)
print(type(cached).__name__)
model = transformers.AutoModelForSequenceClassification.from_pretrained(job["pushed"])
tokenizer = transformers.AutoTokenizer.from_pretrained(job["pushed"])
with torch.no_grad():
    print(json.dumps(model(**tokenizer(job["texts"], padding=True, return_tensors="pt")).logits.tolist()))
"""


def test_push_to_hub_round_trips(hub, env, monkeypatch, minilm_dir):
    monkeypatch.setenv("HF_TOKEN", hub.write_token)
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, num_labels=3
    )
    model = AutoModelForSequenceClassification.from_config(config)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    model.push_to_hub("alice/tiny-classifier", license="mit", datasets=["imdb"], metrics=["accuracy"])
    tokenizer.push_to_hub("alice/tiny-classifier")

    monkeypatch.setenv("HF_HUB_CACHE", str(env.parent / "elsewhere"))
    monkeypatch.delenv("HF_TOKEN")
    again = AutoModelForSequenceClassification.from_pretrained("alice/tiny-classifier")
    batch = AutoTokenizer.from_pretrained("alice/tiny-classifier")(
        SENTENCES, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.equal(again(**batch).logits, model(**batch).logits)
    # transformers loads the pushed model through the endpoint, and reads MiniLM from the cache we filled.
    monkeypatch.setenv("HF_HUB_CACHE", str(env))
    resolve_dir("alice/minilm", revision=hub.minilm_commit)
    job = {
        "pushed": "alice/tiny-classifier", "texts": SENTENCES, "cached": "alice/minilm",
        "commit": hub.minilm_commit, "cache": str(env),
    }  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", TRANSFORMERS_LOADS, json.dumps(job)],
        env={**os.environ, "HF_HUB_CACHE": str(env.parent / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    cached_class, logits = out.stdout.splitlines()[-2:]
    assert cached_class == "BertModel"
    with torch.no_grad():
        assert torch.allclose(torch.tensor(json.loads(logits)), model(**batch).logits, atol=1e-5)

    info = huggingface_hub.HfApi(endpoint=hub.url).model_info("alice/tiny-classifier")
    assert info.card_data["license"] == "mit"
    assert info.card_data["datasets"] == ["imdb"]
    assert info.pipeline_tag == "text-classification"
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= {
        s.rfilename for s in info.siblings
    }
    commits = huggingface_hub.HfApi(endpoint=hub.url).list_repo_commits("alice/tiny-classifier")
    assert len(commits) >= 2  # the model in one commit, then the tokenizer in another; the card stays


def test_bad_input_is_one_clear_line(hub, env, monkeypatch):
    with pytest.raises(RepositoryNotFoundError, match="repository 'alice/nothing' not found"):
        AutoModel.from_pretrained("alice/nothing")
    with pytest.raises(RevisionNotFoundError, match="revision 'v9' not found in 'alice/minilm'"):
        AutoModel.from_pretrained("alice/minilm", revision="v9")
    with pytest.raises(EntryNotFoundError, match="file 'nope.json' not found in 'alice/minilm'"):
        hub_file("alice/minilm", "nope.json")
    before = huggingface_hub.HfApi(endpoint=hub.url).model_info("alice/minilm").sha
    model = AutoModel.from_pretrained("alice/minilm", revision=hub.minilm_commit)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(HubAuthError, match="token") as error:
        model.push_to_hub("alice/minilm")
    assert "\n" not in str(error.value)
    read_token = hub.token("bob", "read")
    monkeypatch.setenv("HF_TOKEN", read_token)
    with pytest.raises(HubAuthError):
        model.push_to_hub("alice/minilm")
    assert huggingface_hub.HfApi(endpoint=hub.url).model_info("alice/minilm").sha == before


def test_push_sends_files_above_the_regular_limit_through_lfs(tmp_path, monkeypatch):
    hub = HubServer(tmp_path / "root", "--regular-limit", "256KiB").start(timeout=120)
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("HF_TOKEN", hub.token("carol", "write"))
        torch.manual_seed(0)
        model = AutoModel.from_config(BertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4))
        model.push_to_hub("carol/tiny-bert")
        sent = hub.requests()
        assert any(line.startswith("POST /carol/tiny-bert.git/info/lfs/objects/batch 200") for line in sent)
        assert any(line.startswith("PUT ") for line in sent)
        again = AutoModel.from_pretrained("carol/tiny-bert")
        for name, tensor in model.state_dict().items():
            assert torch.equal(again.state_dict()[name], tensor), name
        files = huggingface_hub.HfApi(endpoint=hub.url).model_info("carol/tiny-bert", files_metadata=True)
        weights = next(s for s in files.siblings if s.rfilename == "model.safetensors")
        assert weights.lfs is not None and weights.lfs.size == weights.size
    finally:
        hub.stop()


def test_a_private_repo_needs_its_owners_token(hub, env, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.write_token)
    torch.manual_seed(0)
    model = AutoModel.from_config(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4))
    model.push_to_hub("alice/secret", private=True)
    assert AutoModel.from_pretrained("alice/secret").config.hidden_size == 32
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HUB_CACHE", str(env.parent / "stranger"))
    with pytest.raises(RepositoryNotFoundError, match="'alice/secret' not found"):
        AutoModel.from_pretrained("alice/secret")
