"""What the serving tests share: ``tinyformers serve`` started as a real subprocess on a free 127.0.0.1 port and
stopped by its pid, an ``openai`` client for it, requests run from threads at once, and a sink that collects a
scheduler's events (for tests that drive ``Scheduler`` without HTTP)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tinyformers.serving.scheduler import Finished, Token

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args: str, startup_timeout: float = 240):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        command = [sys.executable, "-m", "tinyformers.cli", "serve", *args, "--port", str(self.port)]
        # A file, not a pipe: a pipe nobody reads blocks the server once it is full.
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the server did not open port {self.port} within {startup_timeout} s")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM by pid, then wait; returns the exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """``(status, headers, parsed JSON or text)`` of one plain HTTP request."""
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=120) as response:
                status, head, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, head, raw = error.code, dict(error.headers), error.read()
        text = raw.decode()
        is_json = head.get("content-type", "").startswith("application/json")
        return status, head, json.loads(text) if is_json else text

    def metric(self, name: str) -> float:
        """One sample of /metrics (``name`` with its labels, as printed)."""
        _, _, text = self.request("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0


def openai_client(server: Server, api_key: str = "unused"):
    """The real ``openai`` client for ``server``: no retries, a long timeout (a loaded machine)."""
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key=api_key, max_retries=0, timeout=300)


def at_once(call, count: int, timeout: float = 300) -> list:
    """``call(i)`` for i in range(count), each from its own thread, all started together; the results in order
    (None where a call raised or did not finish)."""
    results: dict[int, object] = {}

    def one(i: int) -> None:
        results[i] = call(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return [results.get(i) for i in range(count)]


class Collected:
    """A scheduler request's sink: its token ids, its text and how it finished."""

    def __init__(self):
        self.tokens: list[int] = []
        self.text = ""
        self.finished: Finished | None = None
        self.done = threading.Event()

    def __call__(self, event) -> None:
        if isinstance(event, Token):
            self.tokens.append(event.token_id)
            self.text += event.text
        else:
            self.finished = event
            self.text += event.text
            self.done.set()


def run_requests(scheduler, requests, start: bool = False) -> list[Collected]:
    """Submit ``(prompt ids, params)`` all at once to ``scheduler``; the results in order. ``start``: the
    scheduler is not started yet; it starts once all are queued, so the first ones join in one step."""
    sinks = [Collected() for _ in requests]
    for (ids, params), sink in zip(requests, sinks):
        scheduler.submit(ids, params, sink)
    if start:
        scheduler.start()
    for sink in sinks:
        assert sink.done.wait(120)
    return sinks


def run_and_count_shifts(
    scheduler, requests, queue_first: bool = False
) -> tuple[list[Collected], list[tuple[int, int]]]:
    """Start ``scheduler`` (after queueing ``requests`` when ``queue_first``), run them as ``run_requests`` does
    and stop it; also the moves of its cache rows along the timeline (``SlotCache._shift``: > 0 right, < 0
    left), in order, each with the timeline's length before it."""
    shifts: list[tuple[int, int]] = []
    slots = scheduler.slots
    shift = slots._shift
    slots._shift = lambda by: (shifts.append((by, slots.length)), shift(by))[1]  # count, then shift as before
    try:
        if not queue_first:
            scheduler.start()
        return run_requests(scheduler, requests, start=queue_first), shifts
    finally:
        scheduler.stop()
