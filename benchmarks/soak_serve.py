"""Memory soak of ``tinyformers serve``: does the server's resident memory stay flat under a long, varied load?

The server is started with ``--max-batch 32`` and, by default, SmolLM2's full context (8,192 positions): its
KV cache is allocated once, at start. Then ``--clients`` threads send streaming chat requests back to back for
``--minutes`` (different prompts, 8 to 96 new tokens, some sampled with a seed, every fifth one dropped by the
client after its third chunk, which cancels it on the server). The server's RSS is sampled every
``--every`` seconds from /proc; the script prints the series and the growth after the first minute.

    python benchmarks/soak_serve.py [--minutes 10] [--clients 32] [--context 8192]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

from bench_serve import GGUF, PROMPTS, ROOT, Subprocess, free_port


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def one_request(port: int, rng: random.Random, counts: dict, lock: threading.Lock) -> None:
    body = {
        "model": GGUF.name,
        "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
        "max_tokens": rng.randint(8, 96),
        "stream": True,
    }
    if rng.random() < 0.3:
        body.update(temperature=0.8, seed=rng.randint(0, 2**31))
    else:
        body["temperature"] = 0
    drop = rng.random() < 0.2
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request(
            "POST", "/v1/chat/completions", json.dumps(body), {"content-type": "application/json"}
        )
        response = connection.getresponse()
        chunks = 0
        for line in response:
            if line.startswith(b"data: {"):
                chunks += 1
                if drop and chunks == 3:
                    break  # the client goes away mid-stream: the server cancels the request
        key = "dropped" if drop else f"status {response.status}"
    except OSError as error:
        key = f"error {type(error).__name__}"
    finally:
        connection.close()
    with lock:
        counts[key] = counts.get(key, 0) + 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--every", type=float, default=10, help="seconds between RSS samples")
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "tinyformers.cli", "serve", str(GGUF), "--port", str(port)]
    command += ["--max-batch", "32", "--max-queue", "256", "--max-context", str(args.context)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = Subprocess(command, port, env)
    pid = server.process.pid
    counts: dict[str, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + 60 * args.minutes

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            one_request(port, rng, counts, lock)

    samples = [(0.0, rss_mib(pid))]
    print(f"server pid {pid}, RSS at start (model and cache allocated): {samples[0][1]:.0f} MiB", flush=True)
    threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(args.clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() < stop_at:
            time.sleep(args.every)
            samples.append((time.monotonic() - start, rss_mib(pid)))
            print(
                f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:7.0f} MiB  {dict(sorted(counts.items()))}",
                flush=True,
            )
        for thread in threads:
            thread.join(120)
        metrics = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        metrics.request("GET", "/metrics")
        lines = metrics.getresponse().read().decode().splitlines()
        finished = [
            line
            for line in lines
            if line.startswith(("tinyformers_requests_finished", "tinyformers_generated"))
        ]
    finally:
        server.stop()
    after_minute = [rss for t, rss in samples if t >= 60]
    print(f"\nrequests: {dict(sorted(counts.items()))}")
    print("\n".join(finished))
    print(
        f"RSS: start {samples[0][1]:.0f} MiB, after 1 min {after_minute[0]:.0f} MiB, end {samples[-1][1]:.0f} MiB, "
        f"max {max(r for _, r in samples):.0f} MiB; growth after the first minute "
        f"{after_minute[-1] - after_minute[0]:+.0f} MiB over {samples[-1][0] / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
