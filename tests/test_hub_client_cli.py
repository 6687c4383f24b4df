"""`tinyformers hub login|whoami|search|info|download|upload` as a user runs them, against a real hub server."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from cli_runner import run_cli
from conftest import oracle
from hubserver import cli_env, hub_with_write_token, tinyformers_cli
from tinyformers import AutoModelForSequenceClassification, BertConfig

oracle("fastapi")  # the server's own dependency, in the test extra
huggingface_hub = oracle("huggingface_hub")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with hub_with_write_token(tmp_path_factory.mktemp("hub") / "root") as server:
        yield server


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
    return run_cli("hub", *args, input=stdin, **env)


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


HF_READS_TOKENS = """
import json
from huggingface_hub import get_token, whoami
from huggingface_hub.utils import get_stored_tokens
print(json.dumps({"active": get_token(), "stored": get_stored_tokens(), "user": whoami()["name"]}))
"""


def huggingface_hub_sees(env) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", HF_READS_TOKENS],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def named_token(hub, user, name) -> str:
    created = tinyformers_cli(
        "hub", "token", "create", "--root", str(hub.root), "--user", user, "--role", "write", "--name", name
    )
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def test_login_writes_the_token_files_hf_reads(hub, env, tmp_path):
    home = tmp_path / "home"
    assert "rejected the token" in failure(env, "login", "--token", "hf_wrong")
    assert "organization token" in failure(env, "login", "--token", "api_org_x")
    assert not home.exists() or sorted(p.name for p in home.iterdir()) == []
    assert "not logged in" in failure(env, "whoami")

    laptop = named_token(hub, "alice", "laptop")
    saved = json.loads(ok(env, "login", "--json", stdin=laptop + "\n"))
    assert (saved["user"], saved["role"], saved["token_name"]) == ("alice", "write", "laptop")
    assert (home / "token").read_text() == laptop
    for secret in (home / "token", home / "stored_tokens"):
        assert secret.stat().st_mode & 0o777 == 0o600
    assert json.loads(ok(env, "whoami", "--json"))["user"] == "alice"
    # huggingface_hub reads both files: the active token, and the stored one by its name.
    assert huggingface_hub_sees(env) == {"active": laptop, "stored": {"laptop": laptop}, "user": "alice"}

    # The reverse: huggingface_hub logs in another token; we use it, and our next login keeps its entry.
    ci = named_token(hub, "alice", "ci")
    theirs = subprocess.run(
        [sys.executable, "-c", f"import huggingface_hub; huggingface_hub.login(token={ci!r})"],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert theirs.returncode == 0, theirs.stderr
    assert (home / "token").read_text() == ci
    assert json.loads(ok(env, "whoami", "--json"))["user"] == "alice"
    ok(env, "login", "--token", laptop)
    assert huggingface_hub_sees(env) == {
        "active": laptop,
        "stored": {"ci": ci, "laptop": laptop},
        "user": "alice",
    }
    listed = subprocess.run(
        [sys.executable, "-m", "huggingface_hub.cli.hf", "auth", "list"],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    masked = {token: f"{token[:3]}****{token[-4:]}" for token in (laptop, ci)}
    assert ["*", "laptop", masked[laptop]] in rows and ["ci", masked[ci]] in rows  # * marks the active one


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


def test_info_reads_config_and_card_but_never_the_weights(hub, env, model_dir, uploaded, tmp_path):
    """Both `tinyformers info ID` and `tinyformers hub info ID`: model_info, config.json, README.md, nothing more."""
    for command in (["info"], ["hub", "info"]):
        cache = tmp_path / f"cache-{len(command)}"
        env = {**env, "HF_HUB_CACHE": str(cache)}
        mark = hub.mark()
        done = run_cli(*command, "alice/tiny-cls", "--json", **env)
        assert done.returncode == 0, done.stderr
        shown = json.loads(done.stdout)
        assert (shown["model_type"], shown["license"], shown["context_length"]) == ("bert", "mit", 512)
        assert shown["files"]["model.safetensors"] == (model_dir / "model.safetensors").stat().st_size
        with safe_open(model_dir / "model.safetensors", "pt") as weights:  # the parameters, from the header
            assert shown["parameters"] == sum(
                math.prod(weights.get_slice(k).get_shape()) for k in weights.keys()
            )
        sent = [line.rsplit(" ", 1)[0] for line in hub.requests_since(mark)]
        sha = uploaded["commit"]
        assert sent == [
            "GET /api/models/alice/tiny-cls?blobs=true",
            f"GET /alice/tiny-cls/resolve/{sha}/config.json",
            f"GET /alice/tiny-cls/resolve/{sha}/README.md",
        ], sent
        snapshot = cache / "models--alice--tiny-cls" / "snapshots" / sha
        assert sorted(p.name for p in snapshot.iterdir()) == ["README.md", "config.json"]


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
