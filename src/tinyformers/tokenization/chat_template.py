"""Chat templates: the Jinja programs in tokenizer_config.json / chat_template.jinja / GGUF metadata that turn a
list of messages into the one prompt string a chat model was trained on.

Rendering follows transformers exactly (same sandbox, same helpers, same trimming), so a template gives the same
string here and there: ``raise_exception``, ``strftime_now``, a ``tojson`` filter that does not HTML-escape,
``{% generation %}`` blocks (rendered as plain text), loop controls, and a namespace that refuses dunder names.
Templates come from the internet, so they run in Jinja's immutable sandbox.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

# Names a message's reasoning is passed under; templates read the first one, some read "thinking".
REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
# Appended to the final message to find where it ends in the rendered text (continue_final_message).
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


class ChatTemplateError(ValueError):
    """A chat template that cannot be compiled, raised an exception, or cannot do what was asked."""


@lru_cache(maxsize=16)
def compile_template(template: str):
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):
        """``{% generation %}...{% endgeneration %}`` marks assistant text for training masks; here it just renders."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    class Namespace(jinja2.utils.Namespace):
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                Namespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            Namespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(
                    f"chat templates cannot set underscore attributes ({name!r})"
                )

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.globals["dict"] = dict
    env.globals["namespace"] = Namespace
    try:
        return env.from_string(template)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise ChatTemplateError(
            f"the chat template does not compile (line {e.lineno}: {e.message}); fix the template"
        ) from None


def _plain(value: Any) -> Any:
    """Copy inputs down to plain JSON types, so the template sees no object with methods of its own."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return (
            type(value)(_plain(v) for v in value) if isinstance(value, tuple) else [_plain(v) for v in value]
        )
    for base in (str, bool, int, float):
        if isinstance(value, base):
            return base(value)
    return f"<{type(value).__name__}>"


def _normalize(chat: list) -> list[dict]:
    messages = []
    for message in _plain(list(chat)):
        if not isinstance(message, dict):
            raise ChatTemplateError(f"chat messages must be dicts with 'role' and 'content', got {message!r}")
        message = {
            k: v for k, v in message.items() if v is not None
        }  # content=None renders as missing, not "None"
        reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
        if reasoning is not None:
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        messages.append(message)
    return messages


def render(
    template: str,
    chat: list[dict],
    add_generation_prompt: bool = False,
    continue_final_message: bool | str = False,
    tools: list[dict] | None = None,
    documents: list[dict] | None = None,
    **variables: Any,
) -> str:
    """Render one conversation; ``variables`` (e.g. ``bos_token``) are visible to the template by name."""
    import jinja2

    if continue_final_message and add_generation_prompt:
        raise ChatTemplateError(
            "continue_final_message and add_generation_prompt cannot both be set: continue the last message, "
            "or open a new assistant turn"
        )
    if not chat:
        raise ChatTemplateError(
            "cannot apply a chat template to an empty conversation; pass at least one message"
        )
    compiled = compile_template(template)
    messages = _normalize(chat)
    field = final = None
    if continue_final_message:
        field = continue_final_message if isinstance(continue_final_message, str) else "content"
        final = messages[-1].get(field)
        if not isinstance(final, str):
            raise ChatTemplateError(
                f"continue_final_message is set but the final message has no text '{field}'"
            )
        messages[-1][field] = final + _CONTINUE_TAG
    try:
        text = compiled.render(
            messages=messages,
            tools=_plain(tools),
            documents=_plain(documents),
            add_generation_prompt=add_generation_prompt,
            **_plain(variables),
        )
    except jinja2.exceptions.TemplateError as e:
        raise ChatTemplateError(f"the chat template raised an error: {e}") from None
    if continue_final_message:
        if final.strip() not in text or _CONTINUE_TAG.strip() not in text:
            raise ChatTemplateError(
                "continue_final_message is set but the template dropped part of the final message; "
                "check that the template renders the message text unchanged"
            )
        at = text.rindex(_CONTINUE_TAG.strip())
        # Templates that keep spacing leave the tag intact; ones that strip whitespace need the text rstripped.
        text = text[:at] if text[at : at + len(_CONTINUE_TAG)] == _CONTINUE_TAG else text[:at].rstrip()
    return text
