"""Load benchmark of ``tinyformers serve`` (and the anchors) on SmolLM2: a bounded loop over 127.0.0.1.

For each server and each concurrency (1, 8, 32 by default), ``--requests-per-client`` × concurrency (at least
``--min-requests``) streaming chat requests are sent, ``concurrency`` at a time, each asking for ``--tokens`` new
tokens (or, ``--mixed``, 1/2, 1 and 3/2 of it in turn) at temperature 0; the level stops after its requests or
``--seconds``, whichever comes first. Requests of one length run in lock-step: each wave arrives at once. Reported: generated tokens/s over the level's wall time, and
p50/p95 time to first token and per-token latency (first to last token over tokens - 1), measured by the client.

Servers, each started as a subprocess on a free port and stopped by its pid:
* tinyformers, fp32 (eager), fp32 ``--compile``, ``--quantize int8 --compile`` and ``--quantize gguf --compile``
  (the file's Q4_1 blocks);
* ``transformers serve --continuous-batching`` on the same weights (the GGUF converted to a safetensors folder
  by ``tinyformers convert``), when transformers' serving extras are installed;
* llama-cpp-python's server on the same GGUF file, when ``llama_cpp`` is installed (skipped otherwise, said so).

    python benchmarks/bench_serve.py [--concurrency 1 8 32] [--tokens 32] [--seconds 120] [--mixed]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("ASSETS_DIR", ROOT / ".assets"))
GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    "Tell me a story about a cat.",
    "Explain why the sky is blue.",
    "Write a short poem about the sea.",
    "What should I cook tonight?",
    "Describe a walk in the forest.",
    "Give me three tips for learning Python.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Subprocess:
    def __init__(self, command: list[str], port: int, env: dict | None = None, timeout: float = 900):
        self.port = port
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read on failure
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{command[0]} exited: {self.log.read()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{command} did not open port {port} in {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def stream_one(port: int, model: str, prompt: str, tokens: int) -> dict:
    """One streaming chat request; client-side timings."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", json.dumps(body), {"content-type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
    first = last = None
    chunks = usage = 0
    for line in response:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        event = json.loads(line[6:])
        if event.get("usage"):
            usage = event["usage"]["completion_tokens"]
        for choice in event.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                chunks += 1
    connection.close()
    generated = usage or chunks
    return {
        "ttft": (first or time.perf_counter()) - start,
        "per_token": (last - first) / (generated - 1) if first and generated > 1 else None,
        "tokens": generated,
    }


def load_level(
    port: int, model: str, concurrency: int, requests: int, tokens: int, seconds: float, mixed: bool = False
) -> dict:
    results: list[dict] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                # mixed: 1/2, 1 and 3/2 of ``tokens`` in turn, so that requests do not all end at one step
                asked = tokens * (1 + i % 3) // 2 if mixed else tokens
                result = stream_one(port, model, PROMPTS[i % len(PROMPTS)], asked)
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors.append(str(error))
                continue
            with lock:
                results.append(result)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ttft = sorted(r["ttft"] for r in results)
    per_token = sorted(r["per_token"] for r in results if r["per_token"] is not None)
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "tokens_per_s": sum(r["tokens"] for r in results) / wall,
        "ttft_p50": percentile(ttft, 50),
        "ttft_p95": percentile(ttft, 95),
        "token_p50": percentile(per_token, 50),
        "token_p95": percentile(per_token, 95),
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_server(name: str, command: list[str], port: int, model: str, args, env=None) -> list[dict]:
    print(f"\n== {name}: starting", flush=True)
    try:
        server = Subprocess(command, port, env)
    except RuntimeError as error:
        print(f"== {name}: could not start ({' '.join(str(error).split())[:400]})")
        return []
    rows = []
    try:
        for concurrency in args.concurrency:
            # Every prompt once, so that each level starts from the same prompt cache (servers that keep one
            # answer a prompt seen before without its prefill; without this the first level would pay the
            # prefills the later ones skip), and (compiled) the first graph.
            for prompt in PROMPTS:
                stream_one(port, model, prompt, 4)
            if concurrency > 1:  # a warm-up at this batch size: a compiled step traces it once
                load_level(port, model, concurrency, concurrency, 4, args.seconds)
            requests = max(args.min_requests, args.requests_per_client * concurrency)
            row = load_level(port, model, concurrency, requests, args.tokens, args.seconds, args.mixed)
            row["server"] = name
            rows.append(row)
            print(format_row(row), flush=True)
    finally:
        server.stop()
    return rows


def format_row(row: dict) -> str:
    def ms(value):
        return "-" if value is None else f"{1000 * value:.0f} ms"

    return (
        f"{row['server']:<34} c={row['concurrency']:<3} {row['tokens_per_s']:7.1f} tok/s  "
        f"TTFT p50 {ms(row['ttft_p50'])} p95 {ms(row['ttft_p95'])}  "
        f"per token p50 {ms(row['token_p50'])} p95 {ms(row['token_p95'])}  "
        f"({row['requests']} requests, {row['errors']} errors{': ' + row['first_error'][:80] if row['errors'] else ''})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per request")
    parser.add_argument("--min-requests", type=int, default=8, help="requests per level, at least")
    parser.add_argument(
        "--requests-per-client",
        type=int,
        default=2,
        help="requests per level: this many per concurrent client",
    )
    parser.add_argument("--seconds", type=float, default=180, help="time bound per level")
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="ask for 1/2, 1 and 3/2 of --tokens in turn (default: every request asks for --tokens)",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=["fp32", "compile", "int8-compile", "gguf-compile", "transformers", "llama-cpp"],
        default=["fp32", "compile", "int8-compile", "gguf-compile", "transformers", "llama-cpp"],
    )
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    batch = str(max(args.concurrency))
    context = str(512)
    rows: list[dict] = []
    ours = [sys.executable, "-m", "tinyformers.cli", "serve", str(GGUF), "--max-batch", batch]
    ours += ["--max-queue", "256", "--max-context", context]
    if "fp32" in args.servers:
        port = free_port()
        rows += run_server("tinyformers fp32", [*ours, "--port", str(port)], port, GGUF.name, args, env)
    if "compile" in args.servers:
        port = free_port()
        command = [*ours, "--compile", "--port", str(port)]
        rows += run_server("tinyformers fp32 + compile", command, port, GGUF.name, args, env)
    if "int8-compile" in args.servers:
        port = free_port()
        command = [*ours, "--quantize", "int8", "--compile", "--port", str(port)]
        rows += run_server("tinyformers int8 + compile", command, port, GGUF.name, args, env)
    if "gguf-compile" in args.servers:
        port = free_port()
        command = [*ours, "--quantize", "gguf", "--compile", "--port", str(port)]
        rows += run_server("tinyformers gguf + compile", command, port, GGUF.name, args, env)
    if "transformers" in args.servers:
        if importlib.util.find_spec("transformers") is None:
            print("\n== transformers serve: transformers is not installed, skipped")
        else:
            with tempfile.TemporaryDirectory() as folder:
                converted = Path(folder) / "smollm2"
                subprocess.run(
                    [sys.executable, "-m", "tinyformers.cli", "convert", str(GGUF), str(converted)],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                port = free_port()
                cli = str(Path(sys.executable).parent / "transformers")
                command = [cli, "serve", str(converted), "--continuous-batching", "--port", str(port)]
                command += ["--host", "127.0.0.1", "--dtype", "float32"]
                # Bound its paged KV cache (8192 positions, ours: max-batch x 512): left to size itself on a
                # CPU it grew past 13 GB of RSS before serving.
                command += ["--cb-block-size", "32", "--cb-num-blocks", "256"]
                rows += run_server("transformers serve (CB, fp32)", command, port, str(converted), args)
    if "llama-cpp" in args.servers:
        if importlib.util.find_spec("llama_cpp") is None:
            print("\n== llama-cpp-python server: llama_cpp is not installed here, skipped")
        elif importlib.util.find_spec("sse_starlette") is None:
            print(
                "\n== llama-cpp-python server: its server extras are not installed here, skipped "
                "(pip install 'llama-cpp-python[server]')"
            )
        else:
            port = free_port()
            command = [sys.executable, "-m", "llama_cpp.server", "--model", str(GGUF), "--port", str(port)]
            command += ["--host", "127.0.0.1", "--n_threads", "2", "--n_ctx", context]
            # Its default ends a running stream when another request arrives; serve requests one after another.
            command += ["--interrupt_requests", "False"]
            rows += run_server("llama-cpp-python server", command, port, GGUF.name, args)
    load = os.getloadavg()[0]
    print(f"\nload average (1 min) at the end: {load:.1f}")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
