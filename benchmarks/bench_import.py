"""Import overhead beyond torch: `from X import AutoModel, AutoTokenizer` for tinyformers and transformers.

Each sample is a fresh interpreter that imports torch first, then times only the library import.
"""

from __future__ import annotations

import subprocess
import sys

from common import report

CODE = (
    "import time, torch; t = time.perf_counter(); "
    "from {lib} import AutoModel, AutoTokenizer; AutoModel, AutoTokenizer; "
    "print(time.perf_counter() - t)"
)


def sample(lib: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(lib=lib)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip())


def main(repeat: int = 7) -> None:
    ours = min(sample("tinyformers") for _ in range(repeat))
    theirs = min(sample("transformers") for _ in range(repeat))
    report("import overhead beyond torch", ours, theirs)


if __name__ == "__main__":
    main()
