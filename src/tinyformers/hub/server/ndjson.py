"""A commit's NDJSON body, one line at a time, with a file's long base64 content streamed into a blob.

huggingface_hub sends a regular file as one line, ``{"key": "file", "value": {"content": "<base64>", "path":
..., "encoding": "base64"}}``, and that line can be 130 MiB long. A line up to ``LINE_LIMIT`` is parsed whole.
A longer one is scanned in chunks: any string value longer than ``LONG_STRING`` leaves the line (a placeholder
takes its place) and is decoded from base64 into a blob writer, hashed as it goes; the rest of the line, small
by then, is parsed with ``json.loads``. Only then is it known where the long string was: it must be the file's
``value.content`` with base64 encoding, whatever the order of the keys. Memory stays at a few chunks.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import bad_request, too_large
from .storage import BlobWriter

LINE_LIMIT = 1 << 20  # a line without a long file content is small
LONG_STRING = 64 << 10  # a string longer than this is streamed out of the line
CHUNK = 1 << 20


class Budget:
    """The regular (base64) bytes a commit may carry; the next byte past the limit is a 413."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise too_large(
                f"regular (base64) content above {self.limit:,} bytes in one commit: send large files through "
                "LFS (set HF_HUB_DISABLE_XET=1 before importing huggingface_hub) or split the commit"
            )


class Base64Sink:
    """Decodes base64 arriving in pieces (JSON-escaped: ``\\/`` is ``/``) into a blob writer."""

    def __init__(self, writer: BlobWriter, budget: Budget):
        self.writer, self.budget = writer, budget
        self.pending = b""  # base64 past the last whole 4-character group, or a trailing backslash

    def feed(self, text: bytes) -> None:
        data = self.pending + text
        cut = len(data) - 1 if data.endswith(b"\\") and not data.endswith(b"\\\\") else len(data)
        data, tail = data[:cut].replace(b"\\/", b"/"), data[cut:]
        whole = len(data) // 4 * 4
        self.pending = data[whole:] + tail
        if whole:
            self._write(data[:whole])

    def _write(self, encoded: bytes) -> None:
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise bad_request("a file's content is not valid base64", "MalformedCommit") from None
        self.budget.spend(len(decoded))
        self.writer.write(decoded)

    def close(self) -> None:
        if self.pending:
            raise bad_request("a file's content is not valid base64 (truncated)", "MalformedCommit")


@dataclass
class Line:
    number: int
    item: dict  # {"key": ..., "value": {...}}
    content: BlobWriter | None = None  # a long line's file content, already decoded into a blob being written


def loads(line: bytes | bytearray, number: int) -> dict:
    try:
        item = json.loads(line)
    except ValueError as e:
        raise bad_request(f"malformed NDJSON at line {number}: {e}", "MalformedCommit") from None
    if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
        raise bad_request(f'line {number} must be {{"key": ..., "value": {{...}}}}', "MalformedCommit")
    return item


def read_lines(spool, new_writer: Callable[[], BlobWriter], budget: Budget) -> Iterator[Line]:
    """Every non-blank line of ``spool`` (a seekable binary file), long ones streamed."""
    number = 0
    while True:
        head = spool.readline(LINE_LIMIT)
        if not head:
            return
        number += 1
        if len(head) == LINE_LIMIT and not head.endswith(b"\n"):
            spool.seek(-len(head), 1)
            yield _LongLine(spool, number, new_writer, budget).read()
        elif head.strip():
            yield Line(number, loads(head, number))


def _backslashes_before(data: bytes, end: int, start: int) -> int:
    """How many backslashes run back from ``data[end - 1]`` (not before ``start``)."""
    i = end
    while i > start and data[i - 1] == 0x5C:
        i -= 1
    return end - i


def _closing_quote(data: bytes, start: int, escaped: bool) -> tuple[int, bool]:
    """Index of the quote that ends the string ``data[start:]`` is inside (or -1), and whether ``data``
    ends in the middle of an escape (a lone backslash). ``escaped``: ``data[start]`` is escaped.

    One ``find`` per quote, so a long string costs C speed however many escapes (``\\/``) it holds."""
    i = start + 1 if escaped else start
    if i > len(data):
        return -1, True
    while True:
        quote = data.find(b'"', i)
        if quote < 0:
            return -1, _backslashes_before(data, len(data), i) % 2 == 1
        if _backslashes_before(data, quote, i) % 2 == 0:
            return quote, False
        i = quote + 1


class _LongLine:
    """One line longer than LINE_LIMIT, read from the spool's current position up to its newline."""

    def __init__(self, spool, number: int, new_writer, budget: Budget):
        self.spool, self.number, self.new_writer, self.budget = spool, number, new_writer, budget
        self.skeleton = bytearray()  # the line with its long string replaced by the placeholder
        self.placeholder = f"<streamed content {secrets.token_hex(16)}>"
        self.writer: BlobWriter | None = None
        self.sink: Base64Sink | None = None

    def read(self) -> Line:
        try:
            self._scan()
            item = loads(self.skeleton, self.number)
            self._check_content(item)
        except BaseException:
            if self.writer is not None:
                self.writer.abort()
            raise
        item["value"]["content"] = ""
        return Line(self.number, item, self.writer)

    def _error(self, problem: str):
        return bad_request(f"line {self.number} {problem}", "MalformedCommit")

    def _scan(self) -> None:
        in_string, escaped, string_start = False, False, 0
        while chunk := self.spool.read(CHUNK):
            pos = 0
            while pos < len(chunk):
                if in_string:
                    end, escaped = _closing_quote(chunk, pos, escaped)
                    piece = chunk[pos : end if end >= 0 else len(chunk)]
                    if b"\n" in piece:
                        raise self._error("ends inside a string")
                    self._string_piece(piece, string_start)
                    if end < 0:
                        break
                    if self.sink is not None:
                        self.sink.close()
                        self.sink = None
                    self.skeleton += b'"'
                    in_string, pos = False, end + 1
                    continue
                quote, newline = chunk.find(b'"', pos), chunk.find(b"\n", pos)
                if 0 <= newline and (quote < 0 or newline < quote):
                    self.skeleton += chunk[pos:newline]
                    self.spool.seek(newline + 1 - len(chunk), 1)  # the next lines are read again
                    return
                stop = len(chunk) if quote < 0 else quote + 1
                self.skeleton += chunk[pos:stop]
                self._check_length()
                if quote >= 0:
                    in_string, escaped, string_start = True, False, len(self.skeleton)
                pos = stop
        if in_string:
            raise self._error("ends inside a string: the body was cut short")

    def _string_piece(self, piece: bytes, start: int) -> None:
        if self.sink is not None:
            self.sink.feed(piece)
            return
        self.skeleton += piece
        if len(self.skeleton) - start <= LONG_STRING:
            self._check_length()
            return
        if self.writer is not None:
            raise self._error(
                f"has two strings longer than {LONG_STRING:,} bytes: only a file's content may be"
            )
        self.writer = self.new_writer()
        self.sink = Base64Sink(self.writer, self.budget)
        self.sink.feed(bytes(self.skeleton[start:]))
        del self.skeleton[start:]
        self.skeleton += self.placeholder.encode()

    def _check_length(self) -> None:
        if len(self.skeleton) > LINE_LIMIT:
            raise self._error(f"is longer than {LINE_LIMIT:,} bytes without the file content that may be")

    def _check_content(self, item: dict) -> None:
        """The streamed string must be the base64 content of a file line."""
        if self.writer is None:
            return
        value = item["value"]
        if item.get("key") != "file" or value.get("content") != self.placeholder:
            raise self._error(f"has a string longer than {LONG_STRING:,} bytes that is not a file's content")
        if value.get("encoding", "base64") != "base64":
            raise self._error(
                f"has a {value.get('encoding')!r} file content longer than {LONG_STRING:,} bytes: "
                "send it base64-encoded"
            )
