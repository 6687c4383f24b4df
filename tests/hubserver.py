"""A real ``tinyformers hub serve`` process on a free 127.0.0.1 port, and plain HTTP calls to it.

Shared by the hub tests and benchmarks: start it with ``HubServer(root).start()``, stop it with ``stop()``
(by its own pid). ``request`` uses only the standard library, so a test can send exactly the bytes it means.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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
