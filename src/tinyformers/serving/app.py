"""The OpenAI-compatible HTTP API over a ``Scheduler`` (causal LMs) or a sentence-embedding pipeline (encoders).

Routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions``, ``POST /v1/embeddings``,
``GET /health``, ``GET /metrics``. Bodies are read by ``protocol.py``; errors have OpenAI's JSON shape.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, replace

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .protocol import (
    APIError,
    chat_messages,
    completion_prompt,
    embedding_inputs,
    parse_json,
    sampling_fields,
)
from .scheduler import Finished, QueueFull, Token


@dataclass
class Served:
    """What one server process serves: one model, under ``name`` (clients pass it as ``model``)."""

    name: str
    tokenizer: object
    scheduler: object = None  # a Scheduler for a causal LM
    embedder: object = None  # a sentence-embedding pipeline for an encoder
    api_key: str | None = None
    aliases: tuple[str, ...] = ()
    created: int = 0


def build_app(served: Served) -> FastAPI:
    app = FastAPI(title="tinyformers", docs_url=None, redoc_url=None, openapi_url=None)
    embed_lock = asyncio.Lock()

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        headers = {"Retry-After": "1"} if error.status == 429 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    if served.api_key:
        app.add_middleware(RequireKey, key=served.api_key)

    def model_of(body: dict) -> str:
        model = body.get("model")
        if not isinstance(model, str):
            raise APIError(400, "'model' must be a string: the id /v1/models lists", param="model")
        if model != served.name and model not in served.aliases:
            raise APIError(
                404,
                f"the model '{model}' does not exist here; this server serves '{served.name}'",
                param="model",
                code="model_not_found",
            )
        return served.name

    def scheduler_for(kind: str):
        if served.scheduler is None:
            raise APIError(400, f"'{served.name}' is an encoder: it serves /v1/embeddings, not {kind}")
        return served.scheduler

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": served.name}

    @app.get("/metrics")
    async def metrics():
        source = served.scheduler.metrics.render() if served.scheduler else ""
        return PlainTextResponse(source, media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models():
        card = {"id": served.name, "object": "model", "created": served.created, "owned_by": "tinyformers"}
        return {"object": "list", "data": [card]}

    def announced():
        """Around reading a request until its submission: an idle scheduler waits for it (``announce``)."""
        return served.scheduler.announce() if served.scheduler is not None else contextlib.nullcontext()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        with announced():
            body = parse_json(await request.body())
            model = model_of(body)
            scheduler = scheduler_for("/v1/chat/completions")
            if getattr(served.tokenizer, "chat_template", None) is None:
                raise APIError(
                    400,
                    f"'{served.name}' has no chat template (no chat_template in its tokenizer files), so it "
                    "cannot take messages; send the text as a prompt to /v1/completions",
                    param="messages",
                )
            messages = chat_messages(body)
            try:
                prompt = served.tokenizer.apply_chat_template(messages, add_generation_prompt=True)[
                    "input_ids"
                ]
            except Exception as error:  # noqa: BLE001 - a template that cannot render these messages
                raise APIError(
                    400, f"the chat template cannot render these messages: {error}", param="messages"
                ) from None
            room = scheduler.room(prompt)
            params, n, stream, usage = sampling_fields(body, "max_completion_tokens", max(room, 1))
            submitted = submit(prompt, params, n)
        return await respond("chat.completion", model, submitted, params, n, stream, usage)

    @app.post("/v1/completions")
    async def completions(request: Request):
        with announced():
            body = parse_json(await request.body())
            model = model_of(body)
            scheduler_for("/v1/completions")
            prompt = completion_prompt(body, served.tokenizer)
            params, n, stream, usage = sampling_fields(body, "max_tokens", 16)  # OpenAI's default here
            submitted = submit(prompt, params, n)
        return await respond("text_completion", model, submitted, params, n, stream, usage)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        body = parse_json(await request.body())
        model = model_of(body)
        if served.embedder is None:
            raise APIError(400, f"'{served.name}' is a generative model; /v1/embeddings needs an encoder")
        texts, encoding = embedding_inputs(body)
        async with embed_lock:
            vectors = await run_in_threadpool(served.embedder, texts)
        tokens = sum(len(served.tokenizer(t)["input_ids"]) for t in texts)
        data = [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding)}
            for i, v in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def submit(prompt: list[int], params, n: int) -> tuple[list, asyncio.Queue]:
        """The ``n`` choices of a request, queued; their requests and the queue their events arrive on."""
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        requests = []
        try:
            for index in range(n):
                choice = (
                    params if params.seed is None or n == 1 else replace(params, seed=params.seed + index)
                )

                def sink(event, index=index):
                    loop.call_soon_threadsafe(events.put_nowait, (index, event))

                requests.append(served.scheduler.submit(prompt, choice, sink))
        except ValueError as error:
            cancel_all(requests)
            raise APIError(400, str(error), param="max_tokens", code="context_length_exceeded") from None
        except QueueFull as error:
            cancel_all(requests)
            raise APIError(
                429, f"the server is busy: {error}; retry later", type="rate_limit_error"
            ) from None
        return requests, events

    async def respond(kind: str, model: str, submitted, params, n: int, stream: bool, include_usage: bool):
        requests, events = submitted
        reply = Reply(kind, model, n, params.logprobs, served.tokenizer)
        if stream:
            return StreamingResponse(
                stream_events(reply, events, requests, include_usage), media_type="text/event-stream"
            )
        try:
            while reply.open:
                reply.add(*await events.get())
        finally:
            cancel_all(requests)  # the client went away before the end: free the rows
        return reply.whole()

    async def stream_events(reply, events: asyncio.Queue, requests, include_usage: bool):
        try:
            for chunk in reply.first_chunks(include_usage):
                yield sse(chunk)
            while reply.open:
                for chunk in reply.add(*await events.get(), include_usage=include_usage):
                    yield sse(chunk)
            if include_usage:
                yield sse(reply.chunk([], include_usage, usage=True))
            yield "data: [DONE]\n\n"
        finally:
            cancel_all(requests)

    def cancel_all(requests) -> None:
        for r in requests:
            if not r.cancelled:
                served.scheduler.cancel(r)

    return app


class RequireKey:
    """Answer 401 to a ``/v1/`` request without ``Authorization: Bearer KEY``.

    A plain ASGI middleware rather than ``@app.middleware("http")``: starlette's ``BaseHTTPMiddleware`` runs
    every response through a task and a memory stream of its own, each stream chunk included, on the event loop
    that reads the other requests (benchmarks/README.md)."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, f"Bearer {key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            if dict(scope["headers"]).get(b"authorization") != self.expected:
                error = APIError(
                    401,
                    "missing or wrong API key; send 'Authorization: Bearer KEY' with the key given to --api-key",
                    code="invalid_api_key",
                )
                await JSONResponse(error.body(), status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def sse(chunk: dict) -> str:
    return f"data: {json.dumps(chunk)}\n\n"


def encode_vector(vector, encoding: str):
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
    return [float(x) for x in vector]


class Reply:
    """One response being put together from the scheduler's events: the whole body, or stream chunks."""

    def __init__(self, kind: str, model: str, n: int, logprobs: bool, tokenizer):
        self.kind, self.model, self.n, self.want_logprobs, self.tokenizer = (
            kind,
            model,
            n,
            logprobs,
            tokenizer,
        )
        self.chat = kind == "chat.completion"
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.texts = [""] * n
        self.logprobs: list[list] = [[] for _ in range(n)]
        self.finish: list[str | None] = [None] * n
        self.prompt_tokens = self.completion_tokens = 0
        self.pending = n
        self.error: str | None = None

    @property
    def open(self) -> bool:
        return self.pending > 0

    def add(self, index: int, event, include_usage: bool = False) -> list[dict]:
        """Record one event; returns the stream chunks it makes."""
        if isinstance(event, Token):
            self.texts[index] += event.text
            entry = self.logprob_entry(event) if self.want_logprobs else None
            if entry is not None:
                self.logprobs[index].append(entry)
            if not event.text and entry is None:
                return []
            return [self.chunk([self.choice_delta(index, event.text, entry)], include_usage)]
        assert isinstance(event, Finished)
        self.pending -= 1
        self.prompt_tokens = event.prompt_tokens
        self.completion_tokens += event.completion_tokens
        if event.reason == "error":
            self.error = event.error
        self.finish[index] = "stop" if event.reason in ("stop", "cancelled") else event.reason
        self.texts[index] += event.text
        chunks = (
            [self.chunk([self.choice_delta(index, event.text, None)], include_usage)] if event.text else []
        )
        return chunks + [
            self.chunk([self.choice_delta(index, None, None, self.finish[index])], include_usage)
        ]

    def logprob_entry(self, event: Token) -> dict:
        def item(token_id: int, logprob: float) -> dict:
            text = self.tokenizer.decode([token_id])
            return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

        entry = item(event.token_id, event.logprob)
        entry["top_logprobs"] = [item(t, lp) for t, lp in event.top_logprobs or []]
        return entry

    def usage(self) -> dict:
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }

    def first_chunks(self, include_usage: bool) -> list[dict]:
        if not self.chat:
            return []
        return [
            self.chunk(
                [
                    {
                        "index": i,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                include_usage,
            )
            for i in range(self.n)
        ]

    def choice_delta(self, index: int, text: str | None, entry, finish: str | None = None) -> dict:
        if self.chat:
            delta = {} if text is None else {"content": text}
            logprobs = {"content": [entry]} if entry is not None else None
            return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return {
            "index": index,
            "text": text or "",
            "logprobs": self.legacy_logprobs([entry] if entry else None),
            "finish_reason": finish,
        }

    def chunk(self, choices: list, include_usage: bool, usage: bool = False) -> dict:
        out = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if include_usage:
            out["usage"] = self.usage() if usage else None
        return out

    def legacy_logprobs(self, entries) -> dict | None:
        """The completions endpoint's older logprobs shape."""
        if not entries:
            return None
        return {
            "tokens": [e["token"] for e in entries],
            "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
            "text_offset": [],
        }

    def whole(self) -> dict:
        if self.error is not None:
            raise APIError(500, f"generation failed: {self.error}", type="server_error")
        choices = []
        for i in range(self.n):
            if self.chat:
                logprobs = {"content": self.logprobs[i]} if self.want_logprobs else None
                message = {"role": "assistant", "content": self.texts[i]}
                choices.append(
                    {"index": i, "message": message, "logprobs": logprobs, "finish_reason": self.finish[i]}
                )
            else:
                logprobs = self.legacy_logprobs(self.logprobs[i]) if self.want_logprobs else None
                choices.append(
                    {"index": i, "text": self.texts[i], "logprobs": logprobs, "finish_reason": self.finish[i]}
                )
        return {
            "id": self.id,
            "object": self.kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage(),
        }
