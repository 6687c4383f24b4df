"""A real `tinyformers hub serve` subprocess on a free 127.0.0.1 port, for the hub client's tests."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

# One access-log line per request, as uvicorn writes it: `... "GET /path HTTP/1.1" 200 ...`.
REQUEST_LINE = re.compile(r'"(GET|HEAD|POST|PUT|DELETE|PATCH) (\S+) HTTP/[\d.]+" (\d{3})')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinyformers.cli", *args], capture_output=True, text=True, timeout=120
    )


class HubServer:
    """Start on enter, stop (by its own pid) on exit; the access log counts the requests clients make."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root.parent / f"{self.root.name}-server.log"

    def __enter__(self) -> HubServer:
        self.log = open(self.log_path, "w")
        args = ["hub", "serve", "--root", str(self.root), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tinyformers.cli", *args], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub server exited: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("hub server did not open its port within 60 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def create_token(self, user: str, role: str) -> str:
        result = cli("hub", "token", "create", "--root", str(self.root), "--user", user, "--role", role)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def requests(self) -> list[str]:
        """Every request so far, as 'METHOD /path STATUS'."""
        self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return [" ".join(m.groups()) for m in REQUEST_LINE.finditer(text)]

    def mark(self) -> int:
        time.sleep(0.2)  # let the server flush the log lines of requests already answered
        return len(self.requests())

    def requests_since(self, mark: int) -> list[str]:
        time.sleep(0.2)
        return self.requests()[mark:]
