"""``tinyformers serve`` on an encoder (all-MiniLM-L6-v2): ``/v1/embeddings`` gives the sentence-embedding
pipeline's vectors to the real ``openai`` client."""

from __future__ import annotations

import json

import pytest

from conftest import oracle

openai = oracle("openai")
oracle("fastapi")  # the server's own dependencies, installed with the test extra
oracle("uvicorn")

from server_process import Server  # noqa: E402

TEXTS = ["A man is eating food.", "The weather is lovely today.", "Ein Mann isst."]


@pytest.fixture(scope="module")
def server(minilm_dir):
    server = Server(str(minilm_dir))
    yield server
    assert server.stop() == 0


def test_embeddings_equal_the_pipeline(server, minilm_dir):
    from tinyformers import pipeline

    expected = pipeline("sentence-embedding", model=str(minilm_dir))(TEXTS)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["minilm"]
    # Left to itself the client asks for base64 and decodes it: check that and plain floats.
    for options in ({}, {"encoding_format": "float"}):
        reply = client.embeddings.create(model="minilm", input=TEXTS, **options)
        assert [d.index for d in reply.data] == [0, 1, 2]
        for got, want in zip(reply.data, expected):
            assert got.embedding == pytest.approx(want, abs=1e-6)
    assert reply.usage.prompt_tokens > len(TEXTS)


def test_generation_routes_refuse_an_encoder(server):
    body = {"model": "minilm", "messages": [{"role": "user", "content": "Hi"}]}
    status, _, reply = server.request("POST", "/v1/chat/completions", json.dumps(body).encode())
    assert status == 400 and "/v1/embeddings" in reply["error"]["message"]
    status, _, reply = server.request(
        "POST", "/v1/embeddings", json.dumps({"model": "minilm", "input": 3}).encode()
    )
    assert status == 400 and reply["error"]["param"] == "input"
