"""Streamers: receive token ids as ``generate`` produces them and turn them into text as soon as it is final.

Text is released only up to a safe point: a word boundary, a CJK character, or a newline. A token that ends in
the middle of a multi-byte character decodes to "\\ufffd" (not a letter), so it is held back until the next
token completes it. The rules are transformers' own, so the same chunks come out.
"""

from __future__ import annotations

import unicodedata
from queue import Queue
from typing import Any


class BaseStreamer:
    def put(self, value) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


def _is_cjk(cp: int) -> bool:
    # transformers' streamer table (0x2B820..), not the tokenizers BertNormalizer one (0x2B920..): each matches its oracle
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class TextStreamer(BaseStreamer):
    """Print text to stdout as it is generated (batch size 1). Needs only ``tokenizer.decode(ids, **kwargs)``."""

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, **decode_kwargs: Any):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids, **self.decode_kwargs)

    def put(self, value) -> None:
        if value.dim() > 1 and value.shape[0] > 1:
            raise ValueError("TextStreamer streams one sequence; generate with batch size 1 (or no streamer)")
        if value.dim() > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(value.tolist())
        text = self._decode(self.token_cache)
        pending = text[self.print_len :]
        if text.endswith("\n"):  # a line is complete: restart the window from its last token
            printable = pending
            self.token_cache = self.token_cache[-1:]
            self.print_len = len(self._decode(self.token_cache[-1:]))
        elif text and _is_cjk(ord(text[-1])):
            printable = pending
            self.print_len += len(printable)
        elif all(ch.isspace() or unicodedata.category(ch)[0] in "LMN" for ch in pending):
            printable = pending
            self.print_len += len(printable)
        else:  # ends inside a word or a partial character ("\ufffd"): release only up to the last space
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        printable = self._decode(self.token_cache)[self.print_len :] if self.token_cache else ""
        self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        print(text, flush=True, end=None if stream_end else "")


class TextIteratorStreamer(TextStreamer):
    """Queue the text for another thread: run ``generate`` in a thread and iterate over this object.

    ``timeout`` (seconds) bounds each wait, so a consumer is not stuck forever if generation fails.
    """

    def __init__(
        self, tokenizer: Any, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs: Any
    ):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: Queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self.stop_signal:
            raise StopIteration
        return value
