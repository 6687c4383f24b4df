"""`tinyformers hub login|whoami|search|info|download|upload` as a user runs them, against a real hub server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import oracle
from hubserver import HubServer, cli_env
from tinyformers import AutoModelForSequenceClassification, BertConfig

oracle("fastapi")  # the server's own dependency, in the test extra
huggingface_hub = oracle("huggingface_hub")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = HubServer(tmp_path_factory.mktemp("hub") / "root").start(timeout=120)
    try:
        server.write_token = server.token("alice", "write")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small classifier folder with a card, as a user would upload it."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
        num_labels=2,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("upload") / "tiny"
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    (folder / "README.md").write_text(
        "---\nlicense: mit\npipeline_tag: text-classification\ntags:\n- tiny\n---\n\n# Tiny\n\nA tiny classifier.\n"
    )
    return folder


@pytest.fixture()
def env(hub, tmp_path):
    return {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "home"),
        "HF_HUB_CACHE": str(tmp_path / "cache"),
    }


@pytest.fixture(scope="module")
def uploaded(hub, model_dir, tmp_path_factory):
    """`hub upload` of the folder as alice/tiny-cls: its --json answer."""
    home = tmp_path_factory.mktemp("uploader")
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_TOKEN": hub.write_token}
    return json.loads(
        ok(env, "upload", str(model_dir), "alice/tiny-cls", "--message", "First version", "--json")
    )


def run(env, *args, stdin=None):
    command = [sys.executable, "-m", "tinyformers.cli", "hub", *args]
    return subprocess.run(
        command, env=cli_env(**env), capture_output=True, text=True, input=stdin, timeout=300
    )


def ok(env, *args, stdin=None):
    result = run(env, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def failure(env, *args, stdin=None) -> str:
    result = run(env, *args, stdin=stdin)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyformers: error: "), result.stderr
    return lines[0]


def test_login_writes_the_token_file_hf_reads(hub, env, tmp_path):
    assert "rejected the token" in failure(env, "login", "--token", "hf_wrong")
    assert not (tmp_path / "home" / "token").exists()
    assert "not logged in" in failure(env, "whoami")

    saved = json.loads(ok(env, "login", "--json", stdin=hub.write_token + "\n"))
    assert saved["user"] == "alice" and saved["role"] == "write"
    assert (tmp_path / "home" / "token").read_text() == hub.write_token
    assert json.loads(ok(env, "whoami", "--json"))["user"] == "alice"
    # huggingface_hub finds the same token (its whoami sends it to the hub).
    code = "import huggingface_hub; print(huggingface_hub.whoami()['name'])"
    theirs = subprocess.run([sys.executable, "-c", code], env=cli_env(**env), capture_output=True, text=True)
    assert theirs.returncode == 0 and theirs.stdout.strip() == "alice", theirs.stderr


def test_upload_search_info_download(hub, env, model_dir, uploaded, tmp_path):
    api = huggingface_hub.HfApi(endpoint=hub.url)
    assert api.list_repo_commits("alice/tiny-cls")[0].title == "First version"
    assert uploaded["commit"] == api.model_info("alice/tiny-cls").sha

    table = ok(env, "search", "tiny", "--task", "text-classification", "--sort", "downloads", "--limit", "5")
    header, rule, row = table.splitlines()[:3]
    assert header.split() == ["id", "task", "downloads", "likes", "size", "updated"]
    assert row.split()[:2] == ["alice/tiny-cls", "text-classification"]
    found = json.loads(ok(env, "search", "tiny", "--json"))
    assert [m["id"] for m in found] == ["alice/tiny-cls"]
    assert json.loads(ok(env, "search", "tiny", "--task", "fill-mask", "--json")) == []

    info = json.loads(ok(env, "info", "alice/tiny-cls", "--json"))
    assert info["model_type"] == "bert" and info["architectures"] == ["BertForSequenceClassification"]
    assert info["license"] == "mit" and info["card"]["summary"] == "A tiny classifier."
    assert {p.name: p.stat().st_size for p in model_dir.iterdir()}.items() <= info["files"].items()
    assert found[0]["size"] == info["size"] == sum(info["files"].values())  # with the hub's .gitattributes
    assert "text-classification" in info["tasks"]

    target = tmp_path / "copy"
    done = json.loads(
        ok(env, "download", "alice/tiny-cls", "--revision", info["sha"], "--local-dir", str(target), "--json")
    )
    assert done["files"] == len(info["files"])
    for path in model_dir.iterdir():
        assert (target / path.name).read_bytes() == path.read_bytes()
    assert (tmp_path / "cache" / "models--alice--tiny-cls" / "snapshots" / info["sha"]).is_dir()


def test_bad_input_changes_nothing(hub, env, model_dir, uploaded, tmp_path):
    env = {**env, "HF_TOKEN": hub.write_token}
    assert "repository 'alice/missing' not found" in failure(env, "info", "alice/missing")
    assert "revision 'v9' not found" in failure(env, "download", "alice/tiny-cls", "--revision", "v9")
    assert "is not a folder" in failure(env, "upload", str(tmp_path / "nowhere"), "alice/never")
    assert "not a hub id" in failure(env, "download", "just-a-name")
    with pytest.raises(huggingface_hub.errors.RepositoryNotFoundError):
        huggingface_hub.HfApi(endpoint=hub.url).model_info("alice/never")
    reader = {**env, "HF_TOKEN": hub.token("bob", "read")}
    assert "not allowed" in failure(reader, "upload", str(model_dir), "alice/tiny-cls")
    assert huggingface_hub.HfApi(endpoint=hub.url).model_info("alice/tiny-cls").sha == uploaded["commit"]
