"""Incremental detokenizing for the server: generated ids in, text deltas out.

The text comes from the same streamer ``generate`` uses (``TextStreamer``: released at word boundaries, never half
a character), so a streamed answer is the local streamer's chunks. On top, OpenAI's ``stop`` semantics: the
answer ends before the first stop string and the stop string itself is not returned, so while stop strings are
set, the last ``len(longest) - 1`` characters are held back (they may be the start of one).
"""

from __future__ import annotations

import torch

from ..generation import TextStreamer


class _Collector(TextStreamer):
    def __init__(self, tokenizer):
        super().__init__(tokenizer, skip_special_tokens=True)
        self.parts: list[str] = []

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.parts.append(text)


class IncrementalText:
    def __init__(self, tokenizer, stop: list[str] | None = None):
        self.streamer = _Collector(tokenizer)
        self.stop = [s for s in (stop or []) if s]
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.text = ""  # what the streamer released so far
        self.sent = 0  # how much of it went out
        self.stopped = False  # a stop string was found: nothing after it goes out

    def add(self, token: int) -> str:
        """The text that became final with ``token`` ("" while a word or character is incomplete)."""
        self.streamer.put(torch.tensor([token]))
        return self._release(final=False)

    def finish(self) -> str:
        """The rest of the text, once generation ended."""
        self.streamer.end()
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.stopped:
            return ""
        self.text += "".join(self.streamer.parts)
        self.streamer.parts.clear()
        end = len(self.text) if final else max(self.sent, len(self.text) - self.hold)
        if self.stop:
            found = [
                i for i in (self.text.find(s, max(0, self.sent - self.hold)) for s in self.stop) if i >= 0
            ]
            if found:
                end, self.stopped = min(found), True
        chunk = self.text[self.sent : end]
        self.sent = max(self.sent, end)
        return chunk
