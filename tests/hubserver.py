"""A real ``tinyformers hub serve`` process on a free 127.0.0.1 port, and plain HTTP calls to it.

Shared by the hub tests and benchmarks: start it with ``HubServer(root).start()``, stop it with ``stop()``
(by its own pid). ``request`` uses only the standard library, so a test can send exactly the bytes it means.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# One access-log line per request, as uvicorn writes it: `... "GET /path HTTP/1.1" 200 ...`.
REQUEST_LINE = re.compile(r'"(GET|HEAD|POST|PUT|DELETE|PATCH) (\S+) HTTP/[\d.]+" (\d{3})')
SRC = Path(__file__).resolve().parent.parent / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def tinyformers_cli(*args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinyformers.cli", *args],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        return self.headers.get("x-error-code")


class HubServer:
    def __init__(self, root: Path, *flags: str):
        self.root, self.flags, self.port, self.process = Path(root), flags, free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root.parent / f"hub-{self.port}.log"

    def start(self, timeout: float = 30.0) -> HubServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tinyformers.cli",
                "hub",
                "serve",
                "--root",
                str(self.root),
                "--port",
                str(self.port),
            ]
            + list(self.flags),
            env=cli_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub server exited: {self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"hub server did not open port {self.port}: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()

    def token(self, user: str, role: str) -> str:
        """A new token through the CLI, while the server runs: its last output line."""
        done = tinyformers_cli(
            "hub", "token", "create", "--root", str(self.root), "--user", user, "--role", role
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def access_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def requests(self) -> list[str]:
        """The requests the access log shows so far, as 'METHOD /path STATUS'."""
        return [" ".join(m.groups()) for m in REQUEST_LINE.finditer(self.access_log())]

    def mark(self) -> int:
        time.sleep(0.2)  # lines of requests already answered reach the log
        return len(self.requests())

    def requests_since(self, mark: int) -> list[str]:
        time.sleep(0.2)
        return self.requests()[mark:]

    def request(self, method: str, path: str, body=None, token: str | None = None, headers=None) -> Response:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return Response(
                    answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
                )
        except urllib.error.HTTPError as error:
            return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@contextlib.contextmanager
def hub_with_write_token(root, user: str = "alice", timeout: float = 120):
    """A running hub whose ``write_token`` belongs to ``user``; stopped by its pid on exit."""
    server = HubServer(root).start(timeout=timeout)
    try:
        server.write_token = server.token(user, "write")
        yield server
    finally:
        server.stop()


class FlakyProxy:
    """A real HTTP server on 127.0.0.1 (stdlib, in a thread) in front of a hub, failing on cue.

    ``plan`` maps a path fragment to the faults the next requests whose path contains it get, one each:
    an HTTP status (500, 503: answered by the proxy), ``"drop"`` (the upstream answer's headers and half its
    body, then the connection closes) or ``"stall"`` (half the body, then silence for ``stall`` seconds).
    ``log`` holds ``(method, path, Range header, fault, upstream status)`` per request.
    """

    def __init__(self, upstream: str, stall: float = 20.0):
        self.upstream, self.stall = upstream, stall
        self.plan: dict[str, list] = {}
        self.log: list[tuple] = []
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_fault(self, path: str):
        with self.lock:
            for fragment, faults in self.plan.items():
                if fragment in path and faults:
                    return faults.pop(0)
        return None

    def _handler(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # the log list is the record
                pass

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                fault = proxy._next_fault(self.path)
                entry = [self.command, self.path, self.headers.get("Range"), fault, None]
                proxy.log.append(entry)
                if isinstance(fault, int):
                    body = json.dumps({"error": f"flaky proxy: {fault}"}).encode()
                    self.send_response(fault)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                forwarded = {k: v for k, v in self.headers.items() if k.lower() in ("range", "authorization")}
                request = urllib.request.Request(
                    proxy.upstream + self.path, headers=forwarded, method=self.command
                )
                try:
                    answer = urllib.request.urlopen(request, timeout=60)
                except urllib.error.HTTPError as error:
                    answer = error
                with answer:
                    body = answer.read()
                    entry[4] = answer.status
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        if key.lower() not in ("connection", "transfer-encoding", "date", "server"):
                            self.send_header(key, value)
                    self.end_headers()
                if self.command == "HEAD":
                    return
                if fault in ("drop", "stall"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if fault == "stall":
                        time.sleep(proxy.stall)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler
