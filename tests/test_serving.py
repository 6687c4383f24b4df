"""``tinyformers serve`` on the real SmolLM2 GGUF, driven by the real ``openai`` client over 127.0.0.1.

One server for the module (``--max-batch 16``); few tokens per request. Expected outputs come from local
``generate()`` on the same file, never from the server itself.
"""

from __future__ import annotations

import json
import time

import pytest
import torch

from conftest import oracle

openai = oracle("openai")
oracle("fastapi")  # the server's own dependencies, installed with the test extra
oracle("uvicorn")

from server_process import Server, at_once, openai_client  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def gguf(smollm2_dir):
    return smollm2_dir / GGUF


@pytest.fixture(scope="module")
def server(gguf):
    server = Server(str(gguf), "--max-batch", "16", "--max-queue", "32", "--max-context", "256")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    return openai_client(server)


@pytest.fixture(scope="module")
def local(gguf):
    from tinyformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(gguf), AutoTokenizer.from_pretrained(gguf)


def chat_ids(tokenizer, text: str) -> list[int]:
    messages = [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]


def greedy(local, ids: list[int], new_tokens: int, streamer=None) -> str:
    model, tokenizer = local
    input_ids = torch.tensor([ids])
    out = model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=new_tokens,
        do_sample=False,
        streamer=streamer,
    )
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)


def ask(client, text: str, **kwargs):
    return client.chat.completions.create(model=GGUF, messages=[{"role": "user", "content": text}], **kwargs)


def test_models_list(client):
    assert [m.id for m in client.models.list().data] == [GGUF]


def test_chat_greedy_equals_local_generate_and_streams_the_same_chunks(client, local):
    from tinyformers.generation import TextStreamer

    class Chunks(TextStreamer):
        def on_finalized_text(self, text, stream_end=False):
            chunks.append(text)

    chunks: list[str] = []
    expected = greedy(
        local,
        chat_ids(local[1], "Tell me a story about a cat."),
        8,
        Chunks(local[1], skip_prompt=True, skip_special_tokens=True),
    )
    reply = ask(client, "Tell me a story about a cat.", temperature=0, max_tokens=8)
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 8

    stream = ask(
        client,
        "Tell me a story about a cat.",
        temperature=0,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    events = list(stream)
    assert all(e.object == "chat.completion.chunk" for e in events)
    assert events[0].choices[0].delta.role == "assistant"
    deltas = [e.choices[0].delta.content for e in events if e.choices and e.choices[0].delta.content]
    assert deltas == [c for c in chunks if c]  # the local streamer's chunks, one by one
    assert "".join(deltas) == expected
    assert [e.choices[0].finish_reason for e in events if e.choices][-1] == "length"
    assert events[-1].choices == [] and events[-1].usage.completion_tokens == 8


def test_completions_equal_local_generate(client, local):
    ids = local[1]("The quick brown fox")["input_ids"]
    reply = client.completions.create(model=GGUF, prompt="The quick brown fox", max_tokens=5, temperature=0)
    assert reply.choices[0].text == greedy(local, ids, 5)
    assert reply.usage.prompt_tokens == len(ids)


def test_a_repeated_question_reuses_its_prompt_and_answers_the_same(server, client, local):
    text = "Which planet is known as the red planet?"
    ids = chat_ids(local[1], text)
    expected = greedy(local, ids, 6)
    assert ask(client, text, temperature=0, max_tokens=6).choices[0].message.content == expected
    before = server.metric("tinyformers_prompt_tokens_reused_total")
    assert ask(client, text, temperature=0, max_tokens=6).choices[0].message.content == expected
    # every prompt position but the last came from the cache; the last ran in a decoding step, giving the answer's
    # first token
    assert server.metric("tinyformers_prompt_tokens_reused_total") == before + len(ids) - 1


def test_an_empty_prompt_starts_from_bos_like_local_generate(client, local):
    model, tokenizer = local
    out = model.generate(max_new_tokens=5, do_sample=False)  # no input: from bos
    reply = client.completions.create(model=GGUF, prompt="", max_tokens=5, temperature=0)
    assert reply.choices[0].text == tokenizer.decode(out[0, 1:], skip_special_tokens=True)
    assert reply.usage.prompt_tokens == 1


def test_stop_string_ends_the_answer_before_it(client, local):
    text = greedy(local, chat_ids(local[1], "Tell me a story about a cat."), 12)
    stop = text.split()[3]
    reply = ask(client, "Tell me a story about a cat.", temperature=0, max_tokens=12, stop=[stop])
    assert reply.choices[0].message.content == text[: text.index(stop)]
    assert reply.choices[0].finish_reason == "stop"


def test_sixteen_concurrent_requests_each_equal_their_sequential_result(client, local):
    prompts = [f"Say something about the number {i}." for i in range(16)]
    lengths = [2 + i % 5 for i in range(16)]
    expected = [greedy(local, chat_ids(local[1], p), n) for p, n in zip(prompts, lengths)]
    replies = at_once(lambda i: ask(client, prompts[i], temperature=0, max_tokens=lengths[i]), 16)
    assert [r.choices[0].message.content for r in replies] == expected


def test_seeded_sampling_is_reproducible(client):
    kwargs = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 6, "seed": 1234}
    first = ask(client, "Invent a name for a ship.", **kwargs).choices[0].message.content
    again = ask(client, "Invent a name for a ship.", **kwargs, n=2)
    assert again.choices[0].message.content == first  # choice i samples with seed + i
    assert len(again.choices) == 2


def test_logprobs(client):
    reply = ask(client, "Hi", temperature=0, max_tokens=2, logprobs=True, top_logprobs=3)
    entries = reply.choices[0].logprobs.content
    assert len(entries) == 2
    for entry in entries:
        assert len(entry.top_logprobs) == 3
        assert entry.logprob == pytest.approx(max(t.logprob for t in entry.top_logprobs))
        assert entry.logprob <= 0


def test_disconnect_mid_stream_frees_the_slot(server, client):
    before = server.metric('tinyformers_requests_finished_total{reason="cancelled"}')
    stream = ask(client, "Write a long poem about the sea.", temperature=0, max_tokens=200, stream=True)
    for _, _ in zip(stream, range(3)):
        pass
    stream.close()  # the client goes away mid-answer
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cancelled = server.metric('tinyformers_requests_finished_total{reason="cancelled"}')
        if cancelled > before and server.metric("tinyformers_running_requests") == 0:
            break
        time.sleep(0.2)
    assert cancelled == before + 1
    assert server.metric("tinyformers_running_requests") == 0


def test_bad_requests_get_openai_errors(server, client):
    status, _, body = server.request(
        "POST", "/v1/chat/completions", b'{"model": ', {"content-type": "application/json"}
    )
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"

    with pytest.raises(openai.BadRequestError, match="temperature"):
        ask(client, "Hi", temperature="hot")
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError, match="'tools' is not supported"):
        ask(client, "Hi", tools=[tool])
    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.BadRequestError) as error:
        ask(client, "Hi", max_tokens=1000)
    message = error.value.body["message"]
    assert "1000" in message and "256" in message  # max_tokens and the context, both named
    status, _, body = server.request(
        "POST", "/v1/embeddings", json.dumps({"model": GGUF, "input": "x"}).encode()
    )
    assert status == 400 and "encoder" in body["error"]["message"]


def test_quantize_gguf_serves_the_files_blocks_with_the_same_answers(gguf, local):
    """``--quantize gguf``: the matrices stay as the file's blocks and the answers are the dequantised file's."""
    server = Server(str(gguf), "--quantize", "gguf", "--max-batch", "2", "--max-context", "128")
    try:
        expected = greedy(local, chat_ids(local[1], "What is the capital of France?"), 8)
        reply = ask(openai_client(server), "What is the capital of France?", temperature=0, max_tokens=8)
        assert reply.choices[0].message.content == expected
    finally:
        assert server.stop() == 0
