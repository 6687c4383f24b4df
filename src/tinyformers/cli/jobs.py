"""The files of a batch job: the texts it reads (--input: JSON lines or plain text, a file or stdin) and the JSON
lines it writes (--output), a batch at a time as the results come, so that a job stopped by Ctrl-C, SIGTERM or
an error keeps what it finished, and --resume carries on from there."""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from .common import CommandError

STDIN = "-"
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
INPUT_FORMATS = ("jsonl", "text")
INPUT_HELP = (
    'JSON lines (.jsonl, .json: one {"text": ...} object per line, other fields are kept) or plain text (any '
    "other name: one text per line, blank lines skipped); - reads standard input (JSON lines if its first "
    "line is a JSON object)"
)


# -- input -----------------------------------------------------------------------------------------------------


def input_name(path: str) -> str:
    return "standard input" if path == STDIN else f"'{path}'"


def input_lines(path: str):
    """(line number, text without its line ending) for every line, as UTF-8; a bad byte names its line."""
    try:
        stream = sys.stdin.buffer if path == STDIN else open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise CommandError(f"--input '{path}' does not exist") from None
    except IsADirectoryError:
        raise CommandError(f"--input '{path}' is a folder; give a .jsonl or text file") from None
    try:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CommandError(
                    f"{input_name(path)} line {number} is not UTF-8 text (byte 0x{raw[e.start]:02x} at "
                    f"column {e.start + 1}); save the file as UTF-8"
                ) from None
            if number == 1:
                line = line.removeprefix("\ufeff")  # the byte-order mark some editors put first
            yield number, line.rstrip("\r\n")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def input_format(path: str, first_line: str | None) -> str:
    """JSON lines by the file's extension; for standard input, by whether its first line is a JSON object."""
    if path != STDIN:
        return "jsonl" if Path(path).suffix.lower() in JSONL_SUFFIXES else "text"
    return "jsonl" if first_line is not None and first_line.lstrip().startswith("{") else "text"


def read_records(path: str, fmt: str | None = None) -> list[dict]:
    """The job's inputs as records with a "text" field (plain text lines become ``{"text": line}``)."""
    lines = [(number, line) for number, line in input_lines(path) if line.strip()]
    fmt = fmt or input_format(path, lines[0][1] if lines else None)
    if fmt == "text":
        return [{"text": line} for _, line in lines]
    records = []
    for number, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CommandError(
                f"{input_name(path)} line {number} is not JSON ({e.msg}); write one object per line, or pass "
                "--input-format text for plain text"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise CommandError(
                f'{input_name(path)} line {number} has no "text" string; write {{"text": "..."}} per line'
            )
        records.append(record)
    return records


# -- output ----------------------------------------------------------------------------------------------------


def check_output(path: str, input_path: str, resume: bool, force: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would be lost by writing it."""
    target = Path(path)
    if not target.parent.is_dir():
        raise CommandError(f"the --output folder '{target.parent}' does not exist; create it first")
    if target.is_dir():
        raise CommandError(f"--output '{path}' is a folder; give a file name such as results.jsonl")
    if input_path != STDIN and target.exists() and os.path.samefile(target, input_path):
        raise CommandError(f"--output '{path}' is the --input file; write the results to another file")
    if target.exists() and not (resume or force):
        raise CommandError(
            f"--output '{path}' already exists; pass --resume to continue it, --force to replace it, or choose "
            "another file"
        )


def without_result(record: dict) -> dict:
    return {key: value for key, value in record.items() if key != "result"}


def finished(path: str, records: list[dict], input_path: str) -> tuple[int, int]:
    """How many of ``records`` the output at ``path`` already holds, and the size in bytes of those lines (a last
    line without its newline is a write that was cut off: it is done again). Refuses an output that is not the
    start of this input's results."""
    if not os.path.exists(path):
        return 0, 0
    data = Path(path).read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    lines = complete.splitlines()
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        expected = without_result(records[number - 1]) if number <= len(records) else None
        if not isinstance(record, dict) or "result" not in record or without_result(record) != expected:
            raise CommandError(
                f"--resume: line {number} of '{path}' is not the result for text {number} of "
                f"{input_name(input_path)}, so it is not this job's output; pass --force to start it again or "
                "choose another --output"
            )
    return len(lines), len(complete)


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt, so one except clause keeps the work of both."""

    signum = signal.SIGTERM


def _raise_interrupted(signum, frame):
    raise Interrupted()


@contextmanager
def signals_as_interrupts():
    """While a job writes: SIGTERM raises ``Interrupted`` instead of ending the process on the spot."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM for a moment: a batch's lines are written and counted together, or not at all.

    A signal that comes meanwhile is kept and acted on (its handler is called) at the end. Blocking the signals
    with a thread's signal mask would not do: the kernel hands a process's signal to any thread that does not
    block it (torch's worker threads, tqdm's monitor), and Python then runs the handler in the main thread at
    once."""
    caught = []
    previous = {
        signum: signal.signal(signum, lambda n, frame: caught.append(n))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:  # the first signal acts, as it would have without the hold
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


class LineWriter:
    """Records as JSON lines on a binary ``stream``, ``batch_size`` lines per write and flush. A line is written
    whole or not at all, so what the stream holds is valid JSON lines whenever the job stops; ``written`` counts
    them."""

    def __init__(self, stream, batch_size: int):
        self.stream, self.batch_size = stream, batch_size
        self.written, self.pending = 0, []

    def add(self, record: dict) -> None:
        self.pending.append(json.dumps(record, ensure_ascii=False) + "\n")
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        with signals_held():  # the lines and their count change together
            self.stream.write("".join(self.pending).encode("utf-8"))
            self.stream.flush()
            self.written += len(self.pending)
            self.pending = []


def stopped_exit(error: KeyboardInterrupt, message: str) -> SystemExit:
    """What a stopped job exits with: ``message`` on one line, and 128 + the signal's number, as shells do."""
    signum = getattr(error, "signum", signal.SIGINT)
    print(f"tinyformers: stopped by {signal.Signals(signum).name}: {message}", file=sys.stderr)
    return SystemExit(128 + signum)
