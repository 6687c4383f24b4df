"""OpenAI's request bodies, read and checked: every problem is an ``APIError`` in OpenAI's error shape.

Only what the API defines is read; unknown fields are ignored as OpenAI does. Types are checked strictly
(``"temperature": "hot"`` is a 400 naming the field), as the real API does.
"""

from __future__ import annotations

import json

from .params import SamplingParams


class APIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param=None, code=None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def parse_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise APIError(400, f"the request body is not valid JSON ({error}); send a JSON object") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def field(body: dict, name: str, types, default=None, check=None, expect: str = ""):
    """``body[name]`` if present and not null, checked against ``types`` and ``check``; else ``default``."""
    value = body.get(name)
    if value is None:
        return default
    wrong_type = not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types))
    if wrong_type or (check is not None and not check(value)):
        raise APIError(
            400, f"'{name}' must be {expect}, got {json.dumps(value)[:80]}", param=name, code="invalid_value"
        )
    return value


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


NUMBER = (int, float)


UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "logit_bias", "response_format")


def refuse_unsupported(body: dict) -> None:
    """Options a client relies on, which this server does not implement: refused rather than ignored."""
    for name in UNSUPPORTED:
        value = body.get(name)
        if value in (None, [], {}) or (name == "response_format" and value == {"type": "text"}):
            continue
        raise APIError(400, f"'{name}' is not supported by this server; leave it out", param=name)


def sampling_fields(
    body: dict, max_tokens_name: str, default_max_tokens: int | None
) -> tuple[SamplingParams, int, bool, bool]:
    refuse_unsupported(body)
    max_tokens = field(body, max_tokens_name, int, None, lambda v: v >= 1, "an integer >= 1")
    if max_tokens_name == "max_completion_tokens" and max_tokens is None:
        max_tokens = field(body, "max_tokens", int, None, lambda v: v >= 1, "an integer >= 1")
    stop = field(body, "stop", (str, list), [], None, "a string or a list of up to 4 strings")
    stop = [stop] if isinstance(stop, str) else stop
    if len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise APIError(400, "'stop' must be a string or a list of up to 4 strings", param="stop")
    logprobs = body.get("logprobs")
    if max_tokens_name == "max_tokens":  # completions: logprobs is the number of alternatives (0-5)
        top = field(body, "logprobs", int, None, lambda v: 0 <= v <= 5, "an integer from 0 to 5")
        logprobs, top = top is not None, top or 0
    else:
        logprobs = field(body, "logprobs", bool, False, None, "a boolean")
        top = field(body, "top_logprobs", int, 0, lambda v: 0 <= v <= 20, "an integer from 0 to 20")
        if top and not logprobs:
            raise APIError(400, "'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    params = SamplingParams(
        max_new_tokens=max_tokens if max_tokens is not None else (default_max_tokens or 0),
        temperature=float(
            field(body, "temperature", NUMBER, 1.0, lambda v: 0 <= v <= 2, "a number from 0 to 2")
        ),
        top_p=float(field(body, "top_p", NUMBER, 1.0, lambda v: 0 < v <= 1, "a number in (0, 1]")),
        seed=field(body, "seed", int, None, None, "an integer"),
        stop=stop,
        presence_penalty=float(
            field(body, "presence_penalty", NUMBER, 0.0, lambda v: -2 <= v <= 2, "a number from -2 to 2")
        ),
        frequency_penalty=float(
            field(body, "frequency_penalty", NUMBER, 0.0, lambda v: -2 <= v <= 2, "a number from -2 to 2")
        ),
        logprobs=logprobs,
        top_logprobs=top,
    )
    n = field(body, "n", int, 1, lambda v: 1 <= v <= 16, "an integer from 1 to 16")
    stream = field(body, "stream", bool, False, None, "a boolean")
    options = field(body, "stream_options", dict, {}, None, "an object")
    include_usage = field(options, "include_usage", bool, False, None, "a boolean")
    return params, n, stream, include_usage


def message_text(message, index: int) -> dict:
    """A chat message as the template wants it: ``{"role", "content": str}`` (text parts joined)."""
    where = f"messages[{index}]"
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise APIError(400, f"'{where}' must be an object with a 'role' string", param=where)
    content = message.get("content")
    if isinstance(content, list):
        if not all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in content
        ):
            raise APIError(
                400,
                f"'{where}.content' parts must be text parts ({{'type': 'text', 'text': ...}})",
                param=where,
            )
        content = "".join(p["text"] for p in content)
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise APIError(400, f"'{where}.content' must be a string or a list of text parts", param=where)
    return {"role": message["role"], "content": content}


def chat_messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(
            400, "'messages' must be a non-empty list of {role, content} objects", param="messages"
        )
    return [message_text(m, i) for i, m in enumerate(messages)]


def completion_prompt(body: dict, tokenizer) -> list[int]:
    """``prompt``: a string, a list of token ids, or a list holding one of these."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return tokenizer(prompt)["input_ids"]
    if (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt)
    ):
        return list(prompt)
    raise APIError(
        400, "'prompt' must be a string or a list of token ids (one prompt per request here)", param="prompt"
    )


def embedding_inputs(body: dict) -> tuple[list[str], str]:
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise APIError(400, "'input' must be a string or a non-empty list of strings", param="input")
    encoding = field(
        body, "encoding_format", str, "float", lambda v: v in ("float", "base64"), "'float' or 'base64'"
    )
    return texts, encoding
