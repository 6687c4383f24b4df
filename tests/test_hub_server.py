"""The hub server against the real huggingface_hub 2.4 client (default install, hf_xet present) and transformers.

One real ``tinyformers hub serve`` process per module, on a free 127.0.0.1 port, stopped by its pid. The
LFS path (HF_HUB_DISABLE_XET=1) and the size limits are in test_hub_server_lfs.py.
"""

from __future__ import annotations

import base64
import filecmp
import hashlib
import io
import json
import math
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

from conftest import missing, oracle

oracle("fastapi")  # the server's own dependency, in the test extra
oracle("huggingface_hub")
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import safe_open  # noqa: E402

from hubserver import HubServer, cli_env  # noqa: E402
from tinyformers.hub.server import ndjson as reader  # noqa: E402
from tinyformers.hub.server.blobs import BlobFolder  # noqa: E402

REPO = "alice/minilm"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = HubServer(tmp_path_factory.mktemp("hub") / "root").start(timeout=120)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(hub):
    return {
        "alice": hub.token("alice", "write"),
        "alice_read": hub.token("alice", "read"),
        "bob": hub.token("bob", "write"),
    }


def api(hub, token=False) -> HfApi:
    return HfApi(endpoint=hub.url, token=token)


def local_files(folder) -> dict:
    return {
        str(p.relative_to(folder)): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".fetched"
    }


@pytest.fixture(scope="module")
def minilm(hub, tokens, minilm_dir):
    alice = api(hub, tokens["alice"])
    alice.create_repo(REPO)
    return alice.upload_folder(folder_path=minilm_dir, repo_id=REPO, ignore_patterns=[".fetched"])


def state(hub, repo=REPO, token=None):
    """Everything a failed write must leave as it was: refs, the file tree and the history."""
    refs = hub.request("GET", f"/api/models/{repo}/refs", token=token).json()
    tree = hub.request("GET", f"/api/models/{repo}/tree/main?recursive=true", token=token).json()
    commits = hub.request("GET", f"/api/models/{repo}/commits/main", token=token).json()
    return refs, tree, [c["id"] for c in commits]


# -- acceptance -----------------------------------------------------------------------------------------------


def test_upload_folder_then_model_info(hub, minilm, minilm_dir):
    info = api(hub).model_info(REPO)
    assert info.sha == minilm.oid
    files = local_files(minilm_dir)
    assert {s.rfilename: s.size for s in info.siblings} == {
        name: p.stat().st_size for name, p in files.items()
    }
    weights = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert weights.lfs.sha256 == hashlib.sha256(files["model.safetensors"].read_bytes()).hexdigest()
    assert info.card_data["license"] == "apache-2.0" and info.pipeline_tag == "sentence-similarity"
    assert info.library_name == "sentence-transformers" and "bert" in info.tags
    assert api(hub).model_info(REPO, revision=minilm.oid).sha == minilm.oid
    # The parameter summary huggingface.co sends, from the weights' header (safetensors is the oracle).
    counts = {}
    with safe_open(files["model.safetensors"], "pt") as weights_file:
        for name in weights_file.keys():
            view = weights_file.get_slice(name)
            counts[view.get_dtype()] = counts.get(view.get_dtype(), 0) + math.prod(view.get_shape())
    assert info.safetensors.parameters == counts and info.safetensors.total == sum(counts.values())
    assert api(hub).model_info(REPO, revision=minilm.oid).safetensors == info.safetensors


def test_downloads_are_byte_identical(hub, minilm, minilm_dir, tmp_path):
    files = local_files(minilm_dir)
    one = hf_hub_download(REPO, "model.safetensors", endpoint=hub.url, cache_dir=tmp_path / "a", token=False)
    assert filecmp.cmp(one, files["model.safetensors"], shallow=False)
    folder = snapshot_download(REPO, endpoint=hub.url, cache_dir=tmp_path / "b", token=False)
    for name, path in files.items():
        assert filecmp.cmp(path, f"{folder}/{name}", shallow=False), name
    assert not any("xet" in line.lower() for line in hub.access_log().splitlines())


def test_transformers_loads_from_the_endpoint(hub, minilm, minilm_dir, tmp_path):
    oracle("transformers")
    script = (
        "import json, sys, torch\n"
        "from transformers import AutoModel\n"
        "ids = torch.tensor([[101, 7592, 2088, 2003, 2307, 102]])\n"
        "with torch.no_grad():\n"
        "    remote = AutoModel.from_pretrained(sys.argv[1])(input_ids=ids).last_hidden_state\n"
        "    local = AutoModel.from_pretrained(sys.argv[2])(input_ids=ids).last_hidden_state\n"
        "print(json.dumps({'diff': (remote - local).abs().max().item()}))\n"
    )
    env = cli_env(HF_ENDPOINT=hub.url, HF_HOME=tmp_path / "hf", HF_HUB_DISABLE_TELEMETRY=1)
    env.pop("HF_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", script, REPO, str(minilm_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["diff"] == 0.0


def test_list_models_search_filter_sort_and_pages(hub, tokens, minilm, tmp_path):
    alice = api(hub, tokens["alice"])
    alice.create_repo("alice/minilm-twin")
    alice.upload_file(
        path_or_fileobj=b'{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}',
        path_in_repo="config.json",
        repo_id="alice/minilm-twin",
    )
    for i in range(2):  # two fetches of config.json: two downloads of the twin
        hf_hub_download(
            "alice/minilm-twin", "config.json", endpoint=hub.url, cache_dir=tmp_path / str(i), token=False
        )
    listed = list(api(hub).list_models(search="MINILM", sort="downloads"))
    assert {m.id for m in listed} == {REPO, "alice/minilm-twin"}
    assert [m.downloads for m in listed] == sorted((m.downloads for m in listed), reverse=True)
    assert next(m.downloads for m in listed if m.id == "alice/minilm-twin") == 2
    by_task = [m.id for m in api(hub).list_models(filter="sentence-similarity")]
    assert REPO in by_task and "alice/minilm-twin" not in by_task
    assert [m.id for m in api(hub).list_models(pipeline_tag="text-generation", author="alice")] == [
        "alice/minilm-twin"
    ]
    assert list(api(hub).list_models(author="bob")) == []
    first = hub.request("GET", "/api/models?search=minilm&sort=createdAt&limit=1")
    assert len(first.json()) == 1 and first.headers["link"].startswith(f"<{hub.url}/api/models?")
    following = hub.request(
        "GET", first.headers["link"][1 : first.headers["link"].index(">")].removeprefix(hub.url)
    )
    assert following.json()[0]["id"] != first.json()[0]["id"]
    assert hub.request("POST", "/api/models/alice/minilm-twin/like", token=tokens["bob"]).status == 200
    assert hub.request("POST", "/api/models/alice/minilm-twin/like").code == "Unauthorized"
    by_likes = list(api(hub).list_models(search="minilm", sort="likes"))
    assert [(m.id, m.likes) for m in by_likes][0] == ("alice/minilm-twin", 1)
    api(hub, tokens["bob"]).unlike("alice/minilm-twin")
    assert api(hub).model_info("alice/minilm-twin").likes == 0
    full = api(hub).list_models(search="minilm-twin", full=True, cardData=True)
    assert [s.rfilename for s in next(iter(full)).siblings] == [".gitattributes", "config.json"]


def test_downloads_counted_once_per_fetch_of_config(hub, tokens, minilm, tmp_path):
    def downloads():
        return api(hub).model_info(REPO).downloads

    before = downloads()
    hf_hub_download(REPO, "config.json", endpoint=hub.url, cache_dir=tmp_path / "a", token=False)
    hf_hub_download(REPO, "tokenizer.json", endpoint=hub.url, cache_dir=tmp_path / "a", token=False)
    assert downloads() == before + 1
    hf_hub_download(
        REPO, "config.json", endpoint=hub.url, cache_dir=tmp_path / "a", token=False
    )  # cached: HEAD
    assert downloads() == before + 1
    snapshot_download(REPO, endpoint=hub.url, cache_dir=tmp_path / "b", token=False)  # 13 files, one download
    assert downloads() == before + 2
    # A repo without config.json counts its weight files.
    alice = api(hub, tokens["alice"])
    alice.create_repo("alice/weights-only")
    alice.upload_file(path_or_fileobj=b"\0" * 64, path_in_repo="w.safetensors", repo_id="alice/weights-only")
    hf_hub_download(
        "alice/weights-only", "w.safetensors", endpoint=hub.url, cache_dir=tmp_path / "c", token=False
    )
    assert api(hub).model_info("alice/weights-only").downloads == 1


def test_resolve_headers_ranges_and_tree(hub, minilm, minilm_dir):
    weights = (minilm_dir / "model.safetensors").read_bytes()
    head = hub.request("HEAD", f"/{REPO}/resolve/main/model.safetensors")
    assert head.status == 200 and head.headers["x-repo-commit"] == minilm.oid
    assert head.headers["etag"] == f'"{hashlib.sha256(weights).hexdigest()}"' == head.headers["x-linked-etag"]
    assert head.headers["content-length"] == head.headers["x-linked-size"] == str(len(weights))
    assert not [h for h in head.headers if h.startswith("x-xet")]
    config = (minilm_dir / "config.json").read_bytes()
    git_sha1 = hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()
    assert hub.request("HEAD", f"/{REPO}/resolve/main/config.json").headers["etag"] == f'"{git_sha1}"'
    part = hub.request("GET", f"/{REPO}/resolve/main/model.safetensors", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == weights[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(weights)}"
    tail = hub.request(
        "GET", f"/{REPO}/resolve/{minilm.oid}/model.safetensors", headers={"Range": "bytes=-10"}
    )
    assert tail.status == 206 and tail.body == weights[-10:]
    outside = hub.request("GET", f"/{REPO}/resolve/main/config.json", headers={"Range": "bytes=99999-"})
    assert (outside.status, outside.code) == (416, "RangeNotSatisfiable")

    tree = list(api(hub).list_repo_tree(REPO, recursive=True, expand=True))
    assert {t.path for t in tree if hasattr(t, "size")} == set(local_files(minilm_dir))
    assert all(
        t.last_commit.oid == minilm.oid for t in tree if hasattr(t, "size") and t.path != ".gitattributes"
    )
    top = {t.path: type(t).__name__ for t in api(hub).list_repo_tree(REPO)}
    assert top["1_Pooling"] == "RepoFolder" and "1_Pooling/config.json" not in top
    assert "xetHash" not in hub.request("GET", f"/api/models/{REPO}/tree/main?recursive=true").body.decode()
    assert api(hub).file_exists(REPO, "1_Pooling/config.json") and not api(hub).file_exists(REPO, "nope.txt")
    infos = {i.path: i for i in api(hub).get_paths_info(REPO, ["config.json", "1_Pooling", "nope"])}
    assert set(infos) == {"config.json", "1_Pooling"} and infos["config.json"].blob_id == git_sha1


def test_unknown_repo_revision_file_have_codes(hub, minilm, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        api(hub).model_info("alice/nothing-here")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="v9", endpoint=hub.url, cache_dir=tmp_path, token=False)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "missing.json", endpoint=hub.url, cache_dir=tmp_path, token=False)
    missing = hub.request("HEAD", f"/{REPO}/resolve/main/missing.json")
    assert missing.code == "EntryNotFound" and missing.headers["x-repo-commit"] == minilm.oid
    wrong_method = hub.request("PATCH", "/api/whoami-v2")
    assert (wrong_method.status, wrong_method.code) == (405, "MethodNotAllowed")
    for path in ("/api/models/alice/nothing", "/no/such/route/here", f"/api/models/{REPO}/revision/v9"):
        answer = hub.request("GET", path)
        assert answer.status == 404 and answer.code and answer.headers["x-error-message"], path


# -- auth, private repos --------------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_whoami(hub, tokens):
    me = api(hub, tokens["alice_read"]).whoami()
    assert me["name"] == "alice" and me["auth"]["accessToken"]["role"] == "read" and me["orgs"] == []
    stored = b"".join(p.read_bytes() for p in hub.root.glob("hub.sqlite*"))
    assert all(token.encode() not in stored for token in tokens.values())
    with sqlite3.connect(hub.root / "hub.sqlite") as db:
        hashes = {row[0] for row in db.execute("SELECT hash FROM tokens")}
    assert hashlib.sha256(tokens["bob"].encode()).hexdigest() in hashes
    bad = hub.request("GET", "/api/whoami-v2", token="hf_not-a-token")
    assert (bad.status, bad.code) == (401, "Unauthorized")
    with pytest.raises(HfHubHTTPError):
        api(hub, "hf_not-a-token").whoami()


def test_private_repos_are_invisible_without_read_access(hub, tokens):
    alice = api(hub, tokens["alice"])
    alice.create_repo("alice/secret", private=True)
    alice.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/secret")
    for token in (None, tokens["bob"]):
        for path in ("/api/models/alice/secret", "/alice/secret/resolve/main/config.json", "/alice/secret"):
            answer = hub.request("GET", path, token=token)
            assert (answer.status, answer.code) == (404, "RepoNotFound"), path
        assert hub.request("GET", "/api/models?search=secret", token=token).json() == []
    assert api(hub, tokens["alice_read"]).model_info("alice/secret").private
    assert [m.id for m in api(hub, tokens["alice_read"]).list_models(search="secret")] == ["alice/secret"]
    with pytest.raises(RepositoryNotFoundError):  # bob cannot write (or learn about) alice's private repo
        api(hub, tokens["bob"]).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/secret")
    alice.update_repo_settings("alice/secret", private=False)
    assert not api(hub).model_info("alice/secret").private


NDJSON_HEADER = {"key": "header", "value": {"summary": "try"}}


def ndjson(*lines) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def add(path, content=b"x") -> dict:
    return {
        "key": "file",
        "value": {"content": base64.b64encode(content).decode(), "path": path, "encoding": "base64"},
    }


def test_writes_need_the_owners_write_token(hub, tokens, minilm):
    before = state(hub)
    body = ndjson(NDJSON_HEADER, add("x.txt"))
    for token, status in ((None, 401), (tokens["alice_read"], 403), (tokens["bob"], 403)):
        answer = hub.request("POST", f"/api/models/{REPO}/commit/main", body, token=token)
        assert (answer.status, answer.code) == (status, "Unauthorized" if status == 401 else "Forbidden")
        assert answer.headers["x-error-message"]
    intruder = hub.request(
        "POST", "/api/repos/create", {"name": "taken", "organization": "alice"}, tokens["bob"]
    )
    assert (intruder.status, intruder.code) == (403, "Forbidden")
    delete = hub.request(
        "DELETE", "/api/repos/delete", {"name": "minilm", "organization": "alice"}, tokens["bob"]
    )
    assert delete.code == "Forbidden"
    settings = hub.request("PUT", f"/api/models/{REPO}/settings", {"private": True}, tokens["alice_read"])
    assert settings.code == "Forbidden"
    assert state(hub) == before and not api(hub).model_info(REPO).private
    assert hub.request("GET", "/api/models/alice/taken").code == "RepoNotFound"


BAD_COMMITS = {
    "parent dir": (ndjson(NDJSON_HEADER, add("../x")), 400, "InvalidPath"),
    "inner parent dir": (ndjson(NDJSON_HEADER, add("a/../../x")), 400, "InvalidPath"),
    "absolute": (ndjson(NDJSON_HEADER, add("/etc/passwd")), 400, "InvalidPath"),
    "git dir": (ndjson(NDJSON_HEADER, add(".git/config")), 400, "InvalidPath"),
    "empty path": (ndjson(NDJSON_HEADER, add("")), 400, "InvalidPath"),
    "duplicate": (ndjson(NDJSON_HEADER, add("a.txt"), add("a.txt", b"y")), 400, "DuplicatePath"),
    "no header": (ndjson(add("a.txt")), 400, "MalformedCommit"),
    "not json": (ndjson(NDJSON_HEADER) + b"{not json\n", 400, "MalformedCommit"),
    "bad base64": (
        ndjson(NDJSON_HEADER, {"key": "file", "value": {"path": "a", "content": "%%%"}}),
        400,
        "MalformedCommit",
    ),
    "unknown op": (
        ndjson(NDJSON_HEADER, {"key": "renameFile", "value": {"path": "a"}}),
        400,
        "MalformedCommit",
    ),
    "lfs never uploaded": (
        ndjson(
            NDJSON_HEADER,
            {"key": "lfsFile", "value": {"path": "big.bin", "algo": "sha256", "oid": "ab" * 32, "size": 5}},
        ),
        400,
        "LfsObjectNotFound",
    ),
    "delete missing": (
        ndjson(NDJSON_HEADER, {"key": "deletedFile", "value": {"path": "nope.txt"}}),
        404,
        "EntryNotFound",
    ),
    "good then bad": (ndjson(NDJSON_HEADER, add("fine.txt"), add("../bad")), 400, "InvalidPath"),
    "empty body": (b"", 400, "MalformedCommit"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMITS))
def test_bad_commits_change_nothing(hub, tokens, minilm, case):
    body, status, code = BAD_COMMITS[case]
    before = state(hub)
    answer = hub.request("POST", f"/api/models/{REPO}/commit/main", body, tokens["alice"])
    assert (answer.status, answer.code) == (status, code), answer.body
    assert state(hub) == before


def test_bad_json_unknown_branch_and_wrong_parent(hub, tokens, minilm):
    before = state(hub)
    answer = hub.request(
        "POST", "/api/repos/create", b"{oops", tokens["alice"], {"Content-Type": "application/json"}
    )
    assert (answer.status, answer.code) == (400, "BadRequest")
    answer = hub.request(
        "POST", f"/api/models/{REPO}/commit/nobranch", ndjson(NDJSON_HEADER, add("a")), tokens["alice"]
    )
    assert (answer.status, answer.code) == (404, "RevisionNotFound")
    with pytest.raises(HfHubHTTPError) as error:
        api(hub, tokens["alice"]).create_commit(
            REPO, [CommitOperationAdd("x.txt", b"x")], commit_message="stale", parent_commit="0" * 40
        )
    assert error.value.response.status_code == 412
    assert error.value.response.headers["x-error-code"] == "PreconditionFailed"
    assert state(hub) == before


def test_killed_client_mid_commit_leaves_the_repo_as_it_was(hub, tokens, minilm):
    before = state(hub)
    body = ndjson(NDJSON_HEADER, add("partial.bin", b"z" * 300_000))
    with socket.create_connection(("127.0.0.1", hub.port)) as conn:
        conn.sendall(
            f"POST /api/models/{REPO}/commit/main HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {tokens['alice']}\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
    assert hub.request("GET", "/api/models?limit=1").status == 200  # the server is still serving
    assert state(hub) == before
    assert not api(hub).file_exists(REPO, "partial.bin")


def _peak_rss_since_reset(pid: int):
    """Reset the process's peak RSS (VmHWM) now; the returned function reads it in bytes."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")

    def peak() -> int:
        with open(f"/proc/{pid}/status") as f:
            line = next(line for line in f if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    return peak


@pytest.mark.parametrize("escape_slashes", [False, True])
def test_a_long_file_line_streams_whatever_its_key_order(hub, tokens, tmp_path, escape_slashes):
    """The base64 content is the last key (and the line's "value" comes before its "key"), so it can only be
    found where it ends; the server still decodes it in chunks: its peak RSS grows by far less than the line."""
    repo = f"alice/stream-{int(escape_slashes)}"
    api(hub, tokens["alice"]).create_repo(repo)
    data = hashlib.shake_256(repo.encode()).digest(24 << 20)
    line = {"value": {"path": "weights/big.bin", "encoding": "base64"}, "key": "file"}
    line["value"]["content"] = base64.b64encode(data).decode()
    text = json.dumps(line)
    body = ndjson(NDJSON_HEADER) + (text.replace("/", "\\/") if escape_slashes else text).encode()
    del line, text
    peak = _peak_rss_since_reset(hub.process.pid)
    start = peak()
    answer = hub.request("POST", f"/api/models/{repo}/commit/main", body, tokens["alice"])
    assert answer.status == 200, answer.body
    growth = peak() - start
    assert growth < len(body) // 2, (
        f"server peak RSS grew by {growth / 2**20:.0f} MiB for a {len(body) >> 20} MiB line"
    )
    info = api(hub).model_info(repo, files_metadata=True)
    assert {s.rfilename: s.size for s in info.siblings}["weights/big.bin"] == len(data)
    path = hf_hub_download(repo, "weights/big.bin", endpoint=hub.url, cache_dir=tmp_path, token=False)
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_long_lines_parse_across_every_chunk_boundary(tmp_path, monkeypatch, chunk):
    """The scanner in-process with tiny limits, so escapes and quotes fall on every chunk boundary."""
    monkeypatch.setattr(reader, "CHUNK", chunk)
    monkeypatch.setattr(reader, "LINE_LIMIT", 300)
    monkeypatch.setattr(reader, "LONG_STRING", 40)
    blobs, rng = BlobFolder(tmp_path), random.Random(chunk)
    for _ in range(20):
        data = rng.randbytes(rng.randint(250, 600))
        value = {"path": 'p\\"q\\\\' * rng.randint(0, 3) + "x", "content": base64.b64encode(data).decode()}
        value["encoding"] = "base64"
        keys = rng.sample(sorted(value), 3)
        line = json.dumps({"key": "file", "value": {k: value[k] for k in keys}}).replace("/", "\\/")
        body = (
            ndjson(NDJSON_HEADER)
            + line.encode()
            + b"\n"
            + ndjson({"key": "deletedFile", "value": {"path": "z"}})
        )
        lines = list(reader.read_lines(io.BytesIO(body), blobs.writer, reader.Budget(1 << 20)))
        assert [line.item["key"] for line in lines] == ["header", "file", "deletedFile"]
        assert lines[1].item["value"]["path"] == value["path"]
        assert lines[1].content.finish() == (hashlib.sha256(data).hexdigest(), len(data))


LONG = base64.b64encode(bytes(900_000)).decode()  # 1.2 MB, no padding: copies of it join into valid base64
BAD_LONG_LINES = {
    "header": ({"key": "header", "value": {"summary": LONG}}, "that is not a file's content"),
    "path": ({"key": "file", "value": {"path": LONG, "content": LONG}}, "two strings longer"),
    "utf-8": (
        {"key": "file", "value": {"path": "a", "content": LONG, "encoding": "utf-8"}},
        "base64-encoded",
    ),
    "not base64": ({"key": "file", "value": {"path": "a", "content": "%" * 2_000_000}}, "not valid base64"),
    "cut short": ({"key": "file", "value": {"path": "a", "content": LONG * 8}}, "ends inside a string"),
}


@pytest.mark.parametrize("case", sorted(BAD_LONG_LINES))
def test_bad_long_lines_change_nothing(hub, tokens, minilm, case):
    line, message = BAD_LONG_LINES[case]
    body = ndjson(NDJSON_HEADER, add("fine.txt"))
    body += ndjson(line)[:-50] if case == "cut short" else ndjson(line) + ndjson(add("after.txt"))
    before = state(hub)
    answer = hub.request("POST", f"/api/models/{REPO}/commit/main", body, tokens["alice"])
    assert (answer.status, answer.code) == (400, "MalformedCommit"), answer.body
    assert message in answer.headers["x-error-message"]
    assert state(hub) == before and list((hub.root / "tmp").iterdir()) == []


def test_concurrent_commits_serialise(hub, tokens):
    alice = api(hub, tokens["alice"])
    alice.create_repo("alice/race")
    head = alice.model_info("alice/race").sha
    barrier, results = threading.Barrier(2), {}

    def commit(name, parent):
        barrier.wait()
        try:
            results[name] = alice.create_commit(
                "alice/race",
                [CommitOperationAdd(f"{name}.txt", name.encode())],
                commit_message=name,
                parent_commit=parent,
            ).oid
        except HfHubHTTPError as e:
            results[name] = e.response.status_code

    def race(names, parent):
        threads = [threading.Thread(target=commit, args=(n, parent)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    race(["a", "b"], head)  # both claim the same parent: one wins, the other gets 412
    assert sorted(str(v) if v == 412 else "sha" for v in results.values()) == ["412", "sha"]
    winner = next(n for n, v in results.items() if v != 412)
    files = {s.rfilename for s in alice.model_info("alice/race").siblings}
    assert files == {".gitattributes", f"{winner}.txt"}
    results.clear()
    race(["c", "d"], None)  # without parent_commit both land, one after the other
    files = {s.rfilename for s in alice.model_info("alice/race").siblings}
    assert {"c.txt", "d.txt"} <= files
    titles = [c.title for c in alice.list_repo_commits("alice/race")]
    assert sorted(titles[:2]) == ["c", "d"] and titles[2] == winner


def test_branches_and_tags(hub, tokens, minilm, tmp_path):
    alice = api(hub, tokens["alice"])
    alice.create_branch(REPO, branch="dev")
    alice.create_tag(REPO, tag="v1.0", revision="main")
    refs = alice.list_repo_refs(REPO)
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1.0"]
    info = alice.upload_file(
        path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id=REPO, revision="dev"
    )
    path = hf_hub_download(REPO, "dev.txt", revision="dev", endpoint=hub.url, cache_dir=tmp_path, token=False)
    assert open(path, "rb").read() == b"dev only"
    assert not api(hub).file_exists(REPO, "dev.txt")  # main did not move
    assert api(hub).model_info(REPO, revision="v1.0").sha == minilm.oid
    assert api(hub).model_info(REPO, revision="refs/heads/dev").sha == info.oid
    with pytest.raises(HfHubHTTPError):
        alice.create_branch(REPO, branch="dev")
    alice.delete_branch(REPO, branch="dev")
    alice.delete_tag(REPO, tag="v1.0")
    assert [b.name for b in alice.list_repo_refs(REPO).branches] == ["main"]


def test_dataset_repos_and_reserved_names(hub, tokens, tmp_path):
    alice = api(hub, tokens["alice"])
    url = alice.create_repo("alice/corpus", repo_type="dataset")
    assert url == f"{hub.url}/datasets/alice/corpus"
    alice.upload_file(
        path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data.csv", repo_id="alice/corpus", repo_type="dataset"
    )
    path = hf_hub_download(
        "alice/corpus", "data.csv", repo_type="dataset", endpoint=hub.url, cache_dir=tmp_path, token=False
    )
    assert open(path, "rb").read() == b"a,b\n1,2\n"
    with pytest.raises(RepositoryNotFoundError):
        api(hub).model_info("alice/corpus")  # a dataset is not a model
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinyformers.cli",
            "hub",
            "token",
            "create",
            "--root",
            str(hub.root),
            "--user",
            "api",
            "--role",
            "write",
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "reserved" in done.stderr and done.stderr.count("\n") == 1


def test_validate_yaml_and_delete_repo(hub, tokens):
    alice = api(hub, tokens["alice"])
    alice.create_repo("alice/doomed")
    with pytest.raises(ValueError, match="Invalid metadata"):
        alice.upload_file(
            path_or_fileobj=b"---\nlicense: [\n---\nhi", path_in_repo="README.md", repo_id="alice/doomed"
        )
    assert alice.create_repo("alice/doomed", exist_ok=True).repo_id == "alice/doomed"
    alice.delete_repo("alice/doomed")
    with pytest.raises(RepositoryNotFoundError):
        api(hub).model_info("alice/doomed")


# -- the web page, in a real browser --------------------------------------------------------------------------


def chromium_dom(url: str, tmp_path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        missing("chromium is not installed: apt-get install -y chromium (.ci/run does it)")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_web_pages_in_chromium(hub, tokens, minilm, tmp_path):
    alice = api(hub, tokens["alice"])
    alice.create_repo("alice/sneaky")
    card = b"---\npipeline_tag: fill-mask\n---\n# Sneaky\n<script>document.title='pwned'</script>\n"
    alice.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id="alice/sneaky")

    listing = chromium_dom(f"{hub.url}/?search=minilm&sort=downloads", tmp_path)
    assert '<input type="search" name="search" value="minilm"' in listing
    assert f'<a href="/{REPO}">{REPO}</a>' in listing and "sentence-similarity" in listing
    assert "alice/sneaky" not in listing
    filtered = chromium_dom(f"{hub.url}/?task=fill-mask", tmp_path)
    assert "alice/sneaky" in filtered and REPO not in filtered

    page = chromium_dom(f"{hub.url}/{REPO}", tmp_path)
    assert "model type: <b>bert</b>" in page and "task: <b>sentence-similarity</b>" in page
    assert "model.safetensors" in page and "90.9 MB" in page and "downloads: <b>" in page
    assert "<h1>all-MiniLM-L6-v2</h1>" in page  # the card, rendered
    sneaky = chromium_dom(f"{hub.url}/alice/sneaky", tmp_path)
    assert "pwned" not in sneaky.split("<title>")[1].split("</title>")[0] and "&lt;script&gt;" in sneaky
