"""A real `tinyformers hub serve` subprocess on a free 127.0.0.1 port, for the hub client's tests."""

from __future__ import annotations

import os
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


SERVE = [
    sys.executable, "-c",
    "import sys; from pathlib import Path; from tinyformers.hub.server.app import serve; "
    "from tinyformers.hub.server.service import Settings; "
    "serve(Settings.from_env(Path(sys.argv[1])), '127.0.0.1', int(sys.argv[2]))",
]  # fmt: skip
TOKEN = [
    sys.executable, "-c",
    "import sys; from pathlib import Path; from tinyformers.hub.server.auth import create_token; "
    "from tinyformers.hub.server.sqlite import SQLiteStore; "
    "print(create_token(SQLiteStore(Path(sys.argv[1]) / 'hub.sqlite'), sys.argv[2], sys.argv[3]))",
]  # fmt: skip


class HubServer:
    """Start on enter, stop (by its own pid) on exit; the access log counts the requests clients make."""

    def __init__(self, root: Path, **env: str):
        self.root = Path(root)
        self.env = {**os.environ, **env}
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root.parent / f"{self.root.name}-server.log"

    def __enter__(self) -> HubServer:
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            SERVE + [str(self.root), str(self.port)], stdout=self.log, stderr=subprocess.STDOUT, env=self.env
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
        result = subprocess.run(
            TOKEN + [str(self.root), user, role], capture_output=True, text=True, timeout=120
        )
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
