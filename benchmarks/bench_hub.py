"""The hub server on loopback: snapshot_download vs cp, a large LFS upload, list_models over 10,000 repos.

Each part starts its own ``tinyformers hub serve`` process (on 127.0.0.1, data in a temp folder) and drives it
with the real huggingface_hub client:
  1. snapshot_download of the MiniLM folder into a fresh cache vs ``cp -r`` of the same folder, best of N,
     alternating; then how many requests a second, cached snapshot_download makes (from the access log).
  2. one --lfs-size file (default 1 GiB) through LFS (a client process with HF_HUB_DISABLE_XET=1): the
     server's peak RSS (VmHWM) and the throughput, end to end and for the PUT alone.
  3. list_models(search=...) over --repos repos (default 10,000): p50 and p90 of the client call.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ASSETS, ROOT, compare

sys.path.insert(0, str(ROOT / "tests"))  # the same server launcher the tests use
from hubserver import HubServer, cli_env  # noqa: E402
from tinyformers.hub.download import snapshot_download as tinyformers_snapshot  # noqa: E402

MiB = 1 << 20
TASKS = ["text-classification", "fill-mask", "text-generation", "feature-extraction", "sentence-similarity"]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: what the server itself spent, whatever else loads the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_snapshot(work: Path, runs: int) -> None:
    from huggingface_hub import HfApi, snapshot_download

    folder = ASSETS / "minilm"
    server = HubServer(work / "snapshot" / "root").start()
    try:
        token = server.token("bench", "write")
        HfApi(endpoint=server.url, token=token).create_repo("bench/minilm")
        HfApi(endpoint=server.url, token=token).upload_folder(
            folder_path=folder, repo_id="bench/minilm", ignore_patterns=[".fetched"]
        )
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != ".fetched")
        target = work / "snapshot" / "out"

        def download():
            shutil.rmtree(target, ignore_errors=True)
            snapshot_download("bench/minilm", endpoint=server.url, cache_dir=target, token=False)

        def copy():
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run(["cp", "-r", str(folder), str(target)], check=True)

        names = [
            str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".fetched"
        ]

        def fetch():
            # The server's side alone: every file with plain GETs on one keep-alive connection, written to disk.
            shutil.rmtree(target, ignore_errors=True)
            conn = http.client.HTTPConnection("127.0.0.1", server.port)
            for name in names:
                conn.request("GET", f"/bench/minilm/resolve/main/{name}")
                answer = conn.getresponse()
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                with open(target / name, "wb") as out:
                    shutil.copyfileobj(answer, out, 1 << 20)
            conn.close()

        raw, cp = compare(fetch, copy, repeat=runs)
        print(f"plain GETs of the same files: {raw:.3f} s   cp -r: {cp:.3f} s   ratio {raw / cp:.2f}x")
        ours, cp = compare(download, copy, repeat=runs)
        print(
            f"snapshot_download MiniLM ({size / 1e6:.1f} MB): {ours:.3f} s   cp -r: {cp:.3f} s   ratio {ours / cp:.2f}x"
        )

        def tinyformers_download():
            # tinyformers' own client: parallel, and every byte hashed against the file's id
            shutil.rmtree(target, ignore_errors=True)
            os.environ.update(
                HF_ENDPOINT=server.url, HF_HUB_CACHE=str(target), HF_HUB_DISABLE_PROGRESS_BARS="1"
            )
            tinyformers_snapshot("bench/minilm")

        client, cp = compare(tinyformers_download, copy, repeat=runs)
        print(f"tinyformers snapshot_download: {client:.3f} s   cp -r: {cp:.3f} s   ratio {client / cp:.2f}x")
        before = cpu_seconds(server.process.pid)
        download()
        print(f"  server CPU per snapshot_download: {cpu_seconds(server.process.pid) - before:.3f} s")
        before = len(server.access_log().splitlines())
        snapshot_download("bench/minilm", endpoint=server.url, cache_dir=target, token=False)
        requests = [line for line in server.access_log().splitlines()[before:] if '"' in line]
        print(f"cached snapshot_download (revision main): {len(requests)} HTTP requests")
        sha = HfApi(endpoint=server.url, token=False).model_info("bench/minilm").sha
        snapshot_download("bench/minilm", revision=sha, endpoint=server.url, cache_dir=target, token=False)
        before = len(server.access_log().splitlines())
        snapshot_download("bench/minilm", revision=sha, endpoint=server.url, cache_dir=target, token=False)
        requests = [line for line in server.access_log().splitlines()[before:] if '"' in line]
        print(f"cached snapshot_download (revision = commit sha): {len(requests)} HTTP requests")
        shutil.rmtree(target, ignore_errors=True)
    finally:
        server.stop()


LFS_CLIENT = """
import os, sys, time
from huggingface_hub import HfApi
api = HfApi(endpoint=sys.argv[1], token=sys.argv[2])
api.create_repo("bench/big", exist_ok=True)
start = time.perf_counter()
api.upload_file(path_or_fileobj=sys.argv[3], path_in_repo="big.bin", repo_id="bench/big")
print(time.perf_counter() - start)
"""


def _write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(16 * MiB)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            # A rolling prefix keeps blocks distinct without paying for os.urandom on every byte.
            chunk = (written.to_bytes(8, "little") + block)[: min(16 * MiB, size - written)]
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def _raw_put(server: HubServer, token: str, path: Path, oid: str, size: int) -> float:
    body = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]}
    batch = server.request("POST", "/bench/raw.git/info/lfs/objects/batch", body, token).json()
    href = batch["objects"][0]["actions"]["upload"]["href"].removeprefix(server.url)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    start = time.perf_counter()
    with open(path, "rb") as f:
        conn.request("PUT", href, body=f, headers={"Content-Length": str(size)})
        answer = conn.getresponse()
        answer.read()
    assert answer.status == 200, answer.status
    return time.perf_counter() - start


def bench_lfs_upload(work: Path, size: int) -> None:
    server = HubServer(work / "lfs" / "root").start()
    try:
        token = server.token("bench", "write")
        data = work / "lfs" / "big.bin"
        oid = _write_random(data, size)
        at_start, cpu_start = peak_rss_mib(server.process.pid), cpu_seconds(server.process.pid)
        env = cli_env(HF_HUB_DISABLE_XET=1, HF_HUB_DISABLE_TELEMETRY=1, HF_HOME=work / "lfs" / "hf")
        done = subprocess.run(
            [sys.executable, "-c", LFS_CLIENT, server.url, token, str(data)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        client = float(done.stdout.strip().splitlines()[-1])
        assert (server.root / "blobs" / oid[:2] / oid).stat().st_size == size
        after_client, cpu_client = (
            peak_rss_mib(server.process.pid),
            cpu_seconds(server.process.pid) - cpu_start,
        )
        (server.root / "blobs" / oid[:2] / oid).unlink()  # so the raw PUT below stores it again
        from huggingface_hub import HfApi

        HfApi(endpoint=server.url, token=token).create_repo("bench/raw")
        cpu_start = cpu_seconds(server.process.pid)
        put = _raw_put(server, token, data, oid, size)
        peak, cpu_put = peak_rss_mib(server.process.pid), cpu_seconds(server.process.pid) - cpu_start
        print(
            f"LFS upload {size / MiB:.0f} MiB: upload_file end to end {size / client / 1e6:.0f} MB/s "
            f"({client:.2f} s, client hashing included); PUT alone {size / put / 1e6:.0f} MB/s ({put:.2f} s)"
        )
        print(
            f"server peak RSS: {at_start:.0f} MiB idle, {after_client:.0f} MiB after upload_file, "
            f"{peak:.0f} MiB after the raw PUT (target < 150 MiB)"
        )
        print(
            f"server CPU: {cpu_client:.2f} s for upload_file, {cpu_put:.2f} s for the PUT "
            f"(the server alone could take {size / cpu_put / 1e6:.0f} MB/s)"
        )
    finally:
        server.stop()


def populate(root: Path, count: int) -> None:
    """``count`` repos written straight through the storage layer (as many commits as repos, no HTTP)."""
    sys.path.insert(0, str(ROOT / "src"))
    from tinyformers.hub.server.service import Hub, Settings

    hub = Hub(Settings(root=root))
    rng = random.Random(0)
    gitattributes = hub.store_bytes(".gitattributes", b"*.bin filter=lfs diff=lfs merge=lfs -text\n")
    words = ["bert", "gpt", "llama", "t5", "minilm", "roberta", "mistral", "phi", "qwen", "gemma"]
    for i in range(count):
        namespace, name = f"org{i % 97}", f"{rng.choice(words)}-{i}-{rng.choice(words)}"
        commit = hub.new_commit(
            name, None, "initial commit", "", namespace, {".gitattributes": gitattributes}
        )
        task = rng.choice(TASKS)
        meta = {"pipeline_tag": task, "tags": [task, "transformers"], "library_name": "transformers"}
        hub.store.create_repo("model", namespace, name, False, commit, [gitattributes], meta)
    db = hub.store._connect()
    db.execute("UPDATE repos SET downloads = abs(random() % 100000), likes = abs(random() % 1000)")


def bench_list_models(work: Path, count: int, queries: int) -> None:
    from huggingface_hub import HfApi

    root = work / "list" / "root"
    start = time.perf_counter()
    populate(root, count)
    print(f"{count} repos written in {time.perf_counter() - start:.1f} s")
    server = HubServer(root).start()
    try:
        api = HfApi(endpoint=server.url, token=False)
        rng = random.Random(1)
        cases = {
            "search=<number prefix> (~10-100 hits), all results": lambda: list(
                api.list_models(search=f"-{rng.randrange(10, 99)}", sort="downloads")
            ),
            "search=<word> (~1/10 of repos), limit=50": lambda: list(
                api.list_models(search=rng.choice(["bert", "llama", "qwen"]), sort="downloads", limit=50)
            ),
        }
        for label, call in cases.items():
            call()
            times = []
            for _ in range(queries):
                begin = time.perf_counter()
                call()
                times.append(time.perf_counter() - begin)
            times.sort()
            p50, p90 = times[len(times) // 2], times[int(len(times) * 0.9)]
            print(f"list_models {label} over {count} repos: p50 {p50 * 1e3:.1f} ms, p90 {p90 * 1e3:.1f} ms")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed snapshot_download / cp rounds (best of)")
    parser.add_argument("--lfs-size", type=int, default=1024, help="LFS upload size in MiB (default 1024)")
    parser.add_argument("--repos", type=int, default=10_000, help="repos for the listing benchmark")
    parser.add_argument("--queries", type=int, default=50, help="list_models calls per case")
    parser.add_argument("--only", choices=("snapshot", "lfs", "list"), help="run one part")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        work = Path(tmp)
        if args.only in (None, "snapshot"):
            bench_snapshot(work, args.runs)
        if args.only in (None, "lfs"):
            bench_lfs_upload(work, args.lfs_size * MiB)
        if args.only in (None, "list"):
            bench_list_models(work, args.repos, args.queries)
    print(json.dumps({"load_after": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
