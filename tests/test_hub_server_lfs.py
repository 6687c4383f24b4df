"""Files above the regular limit: the LFS batch API, PUT and verify, with huggingface_hub run as
``HF_HUB_DISABLE_XET=1`` (set before import, in a subprocess), and the size limits' negative cases.

The server here runs with a 1 MiB regular limit and an 8 MiB file limit, so the files stay small.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import oracle

oracle("fastapi")  # the server's own dependency, in the test extra
oracle("huggingface_hub")
from huggingface_hub import HfApi  # noqa: E402

from hubserver import HubServer, cli_env  # noqa: E402

MiB = 1 << 20
LFS_CLIENT = """
import hashlib, json, os, sys
assert os.environ["HF_HUB_DISABLE_XET"] == "1"
from huggingface_hub import HfApi, hf_hub_download
api = HfApi(endpoint=sys.argv[1], token=sys.argv[2])
api.create_repo("carol/big", exist_ok=True)
info = api.upload_file(path_or_fileobj=sys.argv[3], path_in_repo="weights/big.bin", repo_id="carol/big")
path = hf_hub_download("carol/big", "weights/big.bin", endpoint=sys.argv[1], cache_dir=sys.argv[4], token=False)
print(json.dumps({"commit": info.oid, "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()}))
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = HubServer(
        tmp_path_factory.mktemp("hub") / "root", "--regular-limit", "1MiB", "--max-file-size", "8MiB"
    )
    yield server.start(timeout=120)
    server.stop()


@pytest.fixture(scope="module")
def carol(hub):
    token = hub.token("carol", "write")
    HfApi(endpoint=hub.url, token=token).create_repo("carol/files")
    return token


def blob_path(hub, sha256: str):
    return hub.root / "blobs" / sha256[:2] / sha256


def leftovers(hub) -> list:
    return [p.name for p in (hub.root / "tmp").iterdir()]


def test_file_above_the_regular_limit_goes_through_lfs(hub, carol, tmp_path):
    data = os.urandom(3 * MiB + 17)
    (tmp_path / "big.bin").write_bytes(data)
    env = cli_env(HF_HUB_DISABLE_XET=1, HF_HUB_DISABLE_TELEMETRY=1, HF_HOME=tmp_path / "hf")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LFS_CLIENT,
            hub.url,
            carol,
            str(tmp_path / "big.bin"),
            str(tmp_path / "cache"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    log = hub.access_log()
    assert "POST /carol/big.git/info/lfs/objects/batch" in log and "PUT /api/lfs/upload/" in log
    assert "POST /carol/big.git/info/lfs/objects/verify" in log
    sibling = next(s for s in HfApi(endpoint=hub.url, token=False).model_info("carol/big").siblings if s.lfs)
    assert (sibling.rfilename, sibling.size, sibling.lfs.sha256) == (
        "weights/big.bin",
        len(data),
        result["sha256"],
    )


def test_default_client_uploads_regular_below_the_limit(hub, carol):
    api = HfApi(endpoint=hub.url, token=carol)  # hf_xet is installed here: only "regular" keeps it out
    data = os.urandom(200_000)
    api.upload_file(path_or_fileobj=data, path_in_repo="small.bin", repo_id="carol/files")
    modes = hub.request(
        "POST",
        "/api/models/carol/files/preupload/main",
        {"files": [{"path": "a", "size": 900_000, "sample": ""}]},
        carol,
    ).json()
    assert modes["files"][0]["uploadMode"] == "regular"
    assert api.hf_hub_download("carol/files", "small.bin", cache_dir=hub.root.parent / "c", token=False)


def _batch(hub, token, oid, size, repo="carol/files"):
    body = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]}
    answer = hub.request(
        "POST", f"/{repo}.git/info/lfs/objects/batch", body, token, {"Accept": "application/vnd.git-lfs+json"}
    )
    assert answer.status == 200, answer.body
    return answer.json()["objects"][0]


def _put(hub, href, data, chunked=False):
    # Chunked: no Content-Length up front, so the server can only find out about extra bytes at the end.
    body = iter([data[i : i + MiB] for i in range(0, len(data), MiB)]) if chunked else data
    return hub.request("PUT", href.removeprefix(hub.url), body)


def test_lfs_bytes_must_match_the_announced_sha256_and_size(hub, carol):
    data = os.urandom(2 * MiB)
    oid = hashlib.sha256(data).hexdigest()
    href = _batch(hub, carol, oid, len(data))["actions"]["upload"]["href"]
    wrong = _put(hub, href, bytes(reversed(data)))
    assert (wrong.status, wrong.code) == (400, "LfsObjectMismatch") and not blob_path(hub, oid).exists()
    longer = _put(hub, href, data + b"!", chunked=True)
    assert (longer.status, longer.code) == (413, "PayloadTooLarge") and not blob_path(hub, oid).exists()
    shorter = _put(hub, href, data[:-1])
    assert (shorter.status, shorter.code) == (400, "LfsObjectMismatch") and not blob_path(hub, oid).exists()
    assert leftovers(hub) == []
    before = hub.request("GET", "/api/models/carol/files/refs").json()
    commit = json.dumps({"key": "header", "value": {"summary": "s"}}) + "\n"
    commit += json.dumps(
        {"key": "lfsFile", "value": {"path": "x.bin", "algo": "sha256", "oid": oid, "size": len(data)}}
    )
    answer = hub.request("POST", "/api/models/carol/files/commit/main", commit.encode(), carol)
    assert (answer.status, answer.code) == (400, "LfsObjectNotFound")
    assert hub.request("GET", "/api/models/carol/files/refs").json() == before
    assert _put(hub, href, data).status == 200 and blob_path(hub, oid).read_bytes() == data
    verify = hub.request(
        "POST", "/carol/files.git/info/lfs/objects/verify", {"oid": oid, "size": len(data)}, carol
    )
    assert verify.status == 200
    assert "actions" not in _batch(hub, carol, oid, len(data))  # already stored: nothing to send
    assert _put(hub, href, b"x").code == "UploadNotFound"  # the upload URL was used up


def test_batch_needs_a_write_token(hub, carol):
    body = {"operation": "upload", "objects": [{"oid": "a" * 64, "size": 1}]}
    anonymous = hub.request("POST", "/carol/files.git/info/lfs/objects/batch", body)
    assert (anonymous.status, anonymous.code) == (401, "Unauthorized")
    reader = hub.token("carol", "read")
    assert hub.request("POST", "/carol/files.git/info/lfs/objects/batch", body, reader).code == "Forbidden"


def test_oversized_files_are_refused_and_change_nothing(hub, carol):
    before = hub.request("GET", "/api/models/carol/files/tree/main?recursive=true").json()
    big = 9 * MiB
    pre = hub.request(
        "POST",
        "/api/models/carol/files/preupload/main",
        {"files": [{"path": "huge.bin", "size": big, "sample": ""}]},
        carol,
    )
    assert (pre.status, pre.code) == (413, "PayloadTooLarge")
    assert _batch(hub, carol, "b" * 64, big)["error"]["code"] == 422
    content = base64.b64encode(os.urandom(MiB + 1)).decode()
    commit = json.dumps({"key": "header", "value": {"summary": "s"}}) + "\n"
    commit += json.dumps(
        {"key": "file", "value": {"content": content, "path": "r.bin", "encoding": "base64"}}
    )
    answer = hub.request("POST", "/api/models/carol/files/commit/main", commit.encode(), carol)
    assert (answer.status, answer.code) == (413, "PayloadTooLarge")
    assert hub.request("GET", "/api/models/carol/files/tree/main?recursive=true").json() == before
    assert leftovers(hub) == []


def test_killed_lfs_upload_keeps_nothing(hub, carol):
    data = os.urandom(3 * MiB)
    oid = hashlib.sha256(data).hexdigest()
    href = _batch(hub, carol, oid, len(data))["actions"]["upload"]["href"].removeprefix(hub.url)
    with socket.create_connection(("127.0.0.1", hub.port)) as conn:
        conn.sendall(
            f"PUT {href} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        )
        conn.sendall(data[: MiB + 5])
    # The server notices the disconnect at once when it gets the CPU; a machine busy compiling in another test
    # has kept it waiting for over 5 s, so the wait is long and ends as soon as the temp file is gone.
    deadline = time.monotonic() + 60
    while leftovers(hub) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(hub) == [] and not blob_path(hub, oid).exists()
    assert _put(hub, href, data).status == 200  # the same upload URL still works for a complete retry
