"""Time to first token from a cold process: start Python, import, load SmolLM2 (the Q4_1 GGUF), prefill, print.

Each sample is a fresh process whose standard output is a pipe; the clock runs from spawning it to the first
byte of the answer it prints. Ours is the command a user types, ``tinyformers chat --prompt ...`` (eager, no
compile). transformers has no chat command: its equivalent is the short script below (AutoTokenizer and
AutoModelForCausalLM, ``apply_chat_template``, ``generate`` with a ``TextStreamer``), timed twice: on the same
GGUF file (``gguf_file=``, which it dequantises on load) and on the same weights saved as a safetensors folder
(``tinyformers convert``), its usual format. Best of ``--runs`` after one warm-up (the OS file cache).

    python benchmarks/bench_cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ASSETS, ROOT, machine

GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "What is the capital of France?"
TRANSFORMERS = """
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer, TextStreamer
path, gguf = sys.argv[1], sys.argv[2] or None
tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf)
model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf, dtype="float32")
messages = [{"role": "user", "content": sys.argv[3]}]
ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
model.generate(**ids, max_new_tokens=8, do_sample=False, streamer=TextStreamer(tokenizer, skip_prompt=True))
"""


def first_output(command: list[str], env: dict) -> float:
    """Seconds from spawning ``command`` to the first byte on its standard output (then it is left to finish)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = process.stdout.read(1)
    elapsed = time.perf_counter() - start
    process.stdout.read()
    if process.wait() != 0 or not first:
        raise RuntimeError(f"{command[:4]} failed (exit {process.returncode})")
    return elapsed


def best(runs: int, command: list[str], env: dict) -> float:
    first_output(command, env)  # warm-up: the files in the OS cache, as on a second run
    return min(first_output(command, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TRANSFORMERS_VERBOSITY": "error"}
    print(machine())
    chat = [sys.executable, "-m", "tinyformers", "chat", "--model", str(GGUF), "--prompt", PROMPT]
    ours = best(args.runs, [*chat, "--max-new-tokens", "8"], env)
    print(f"tinyformers chat --prompt (GGUF, eager): {ours:.2f} s to the first token")
    theirs = [sys.executable, "-c", TRANSFORMERS]
    from_gguf = best(args.runs, [*theirs, str(GGUF.parent), GGUF.name, PROMPT], env)
    print(f"transformers, gguf_file=: {from_gguf:.2f} s ({from_gguf / ours:.1f}x ours)")
    with tempfile.TemporaryDirectory() as folder:
        converted = Path(folder) / "smollm2"
        subprocess.run(
            [sys.executable, "-m", "tinyformers", "convert", str(GGUF), str(converted)], env=env, check=True
        )
        from_folder = best(args.runs, [*theirs, str(converted), "", PROMPT], env)
    print(f"transformers, safetensors folder: {from_folder:.2f} s ({from_folder / ours:.1f}x ours)")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
