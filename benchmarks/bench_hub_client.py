"""The hub client against `tinyformers hub serve` on loopback, side by side with huggingface_hub and transformers.

1. A cold download of MiniLM into a fresh cache: tinyformers' snapshot_download (parallel, verified) vs
   huggingface_hub's, best of N, alternating.
2. HTTP requests (counted in the server's access log) and time of a *cached* load of model + tokenizer:
   tinyformers (revision = commit sha, and "main"), transformers (the same two, in a subprocess so that it
   reads HF_ENDPOINT), and huggingface_hub's snapshot_download (the same two).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ASSETS, ROOT, compare

sys.path.insert(0, str(ROOT / "tests"))  # the same server launcher the tests use
from hubserver import HubServer, cli_env  # noqa: E402

REQUEST = re.compile(r'"(GET|HEAD|POST|PUT) (\S+) HTTP/[\d.]+" (\d{3})')

TRANSFORMERS_LOAD = """
import sys, time, transformers
start = time.perf_counter()
transformers.AutoModel.from_pretrained(sys.argv[1], revision=sys.argv[2])
transformers.AutoTokenizer.from_pretrained(sys.argv[1], revision=sys.argv[2])
print(time.perf_counter() - start)
"""


def count_requests(server: HubServer, action) -> tuple[list[str], float]:
    """(the requests the server saw, seconds) for one call of ``action``."""
    time.sleep(0.3)
    before = len(REQUEST.findall(server.access_log()))
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    time.sleep(0.3)
    return [" ".join(m) for m in REQUEST.findall(server.access_log())[before:]], seconds


def show(label: str, requests: list[str], seconds: float) -> None:
    print(f"{label}: {len(requests)} requests, {seconds:.3f} s")
    for line in requests:
        print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="timed cold downloads per client (best of)")
    args = parser.parse_args()
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-hub-client-") as tmp:
        work = Path(tmp)
        server = HubServer(work / "root").start()
        try:
            run(server, work, args.runs)
        finally:
            server.stop()
    print(json.dumps({"load_after": os.getloadavg()[0]}))


def run(server: HubServer, work: Path, runs: int) -> None:
    import huggingface_hub

    from tinyformers import AutoModel, AutoTokenizer
    from tinyformers.hub.download import snapshot_download

    token = server.token("bench", "write")
    api = huggingface_hub.HfApi(endpoint=server.url, token=token)
    api.create_repo("bench/minilm")
    commit = api.upload_folder(
        folder_path=ASSETS / "minilm", repo_id="bench/minilm", ignore_patterns=[".fetched"]
    ).oid
    os.environ["HF_ENDPOINT"] = server.url
    ours_cache, theirs_cache = work / "ours", work / "theirs"

    def ours():
        shutil.rmtree(ours_cache, ignore_errors=True)
        os.environ["HF_HUB_CACHE"] = str(ours_cache)
        snapshot_download("bench/minilm")

    def theirs():
        shutil.rmtree(theirs_cache, ignore_errors=True)
        huggingface_hub.snapshot_download(
            "bench/minilm", endpoint=server.url, cache_dir=theirs_cache, token=False
        )

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    t_ours, t_theirs = compare(ours, theirs, repeat=runs)
    print(f"cold download of MiniLM: tinyformers {t_ours:.3f} s   huggingface_hub {t_theirs:.3f} s   "
          f"speed-up {t_theirs / t_ours:.2f}x")  # fmt: skip

    os.environ["HF_HUB_CACHE"] = str(ours_cache)

    def load(revision):
        return lambda: (
            AutoModel.from_pretrained("bench/minilm", revision=revision),
            AutoTokenizer.from_pretrained("bench/minilm", revision=revision),
        )

    for revision, label in ((commit, "commit sha"), ("main", "main")):
        load(revision)()  # warm: cached, imports done
        show(f"cached tinyformers load (revision {label})", *count_requests(server, load(revision)))

    env = cli_env(HF_ENDPOINT=server.url, HF_HUB_CACHE=str(theirs_cache), HF_HUB_DISABLE_TELEMETRY="1")
    for revision, label in ((commit, "commit sha"), ("main", "main")):
        script = [sys.executable, "-c", TRANSFORMERS_LOAD, "bench/minilm", revision]
        subprocess.run(script, env=env, check=True, capture_output=True)  # fills its cache
        out = {}

        def load_in_subprocess(script=script, out=out):
            out["run"] = subprocess.run(script, env=env, check=True, capture_output=True, text=True)

        requests, _ = count_requests(server, load_in_subprocess)
        show(
            f"cached transformers load (revision {label}), in from_pretrained",
            requests,
            float(out["run"].stdout.split()[-1]),
        )

    for revision, label in ((commit, "commit sha"), ("main", "main")):

        def snapshot(revision=revision):
            huggingface_hub.snapshot_download(
                "bench/minilm", revision=revision, endpoint=server.url, cache_dir=theirs_cache, token=False
            )

        show(
            f"cached huggingface_hub snapshot_download (revision {label})", *count_requests(server, snapshot)
        )


if __name__ == "__main__":
    main()
