"""The server's limits, on a deliberately small one (one batch row, one queue place, an API key): wrong key
401, queue overflow 429 with Retry-After, and SIGTERM letting a running answer finish before exiting 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import oracle

openai = oracle("openai")
oracle("fastapi")  # the server's own dependencies, installed with the test extra
oracle("uvicorn")

from server_process import ROOT, Server, openai_client  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
KEY = "sk-test-key"


@pytest.fixture(scope="module")
def server(smollm2_dir):
    server = Server(
        str(smollm2_dir / GGUF),
        "--max-batch",
        "1",
        "--max-queue",
        "1",
        "--max-context",
        "128",
        "--api-key",
        KEY,
    )
    yield server
    server.stop()


def client(server, key: str = KEY):
    return openai_client(server, key)


def long_answer(server, results: list) -> None:
    reply = client(server).chat.completions.create(
        model=GGUF, messages=[{"role": "user", "content": "Write a long poem."}], max_tokens=40, temperature=0
    )
    results.append(reply)


def test_wrong_or_missing_key_is_401(server):
    with pytest.raises(openai.AuthenticationError, match="API key"):
        client(server, "sk-wrong").models.list()
    status, _, body = server.request("GET", "/v1/models")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert server.request("GET", "/health")[0] == 200  # probes need no key
    assert [m.id for m in client(server).models.list().data] == [GGUF]


def test_queue_overflow_is_429_with_retry_after(server):
    results: list = []
    running = threading.Thread(target=long_answer, args=(server, results))
    running.start()  # takes the one batch row
    wait_for(lambda: server.metric("tinyformers_running_requests") == 1)
    queued = threading.Thread(target=long_answer, args=(server, results))
    queued.start()  # takes the one queue place
    wait_for(lambda: server.metric("tinyformers_queue_depth") == 1)
    body = {"model": GGUF, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    status, head, reply = server.request("POST", "/v1/chat/completions", json.dumps(body).encode(), headers)
    assert status == 429 and reply["error"]["type"] == "rate_limit_error"
    assert int(head["retry-after"]) >= 1
    with pytest.raises(openai.RateLimitError):
        client(server).chat.completions.create(**body)
    running.join(300)
    queued.join(300)
    assert [r.choices[0].finish_reason for r in results] == ["length", "length"]
    assert server.metric("tinyformers_requests_rejected_total") == 2


def test_sigterm_finishes_the_running_answer_then_exits(server):
    results: list = []
    running = threading.Thread(target=long_answer, args=(server, results))
    running.start()
    wait_for(lambda: server.metric("tinyformers_running_requests") == 1)
    assert server.stop() == 0
    running.join(60)
    assert len(results) == 1 and results[0].usage.completion_tokens == 40


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_missing_model_is_one_line_and_exit_2():
    out = subprocess.run(
        [sys.executable, "-m", "tinyformers.cli", "serve", str(ROOT / "no-such-model")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert (
        out.returncode == 2 and out.stderr.startswith("tinyformers: error: ") and out.stderr.count("\n") == 1
    )
