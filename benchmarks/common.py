"""Timing helpers shared by the benchmark scripts: warm-up first, then the best of N runs."""

from __future__ import annotations

import argparse
import copy
import os
import platform
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("ASSETS_DIR", ROOT / ".assets"))
# Chat prompts for SmolLM2's decoding benchmarks (speed and agreement with float32).
CHAT_QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three primary colors.",
    "What is 2 + 2?",
    "Explain photosynthesis in one sentence.",
    "Name a famous painting by Leonardo da Vinci.",
    "How many legs does a spider have?",
    "Give me a synonym for happy.",
]


def single_threaded_tokenizers() -> None:
    """Call before importing ``tokenizers``: one Rust thread and no fork-time parallelism, for a fair comparison."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def bbc_texts(megabytes: float) -> tuple[list[str], int]:
    """BBC news articles, in a fixed order, until ``megabytes`` of UTF-8; returns (texts, bytes)."""
    texts, size = [], 0
    for path in sorted((ASSETS / "bbcnews").glob("*/*.txt")):
        text = path.read_bytes().decode("utf-8", errors="replace")  # one article is latin-1
        texts.append(text)
        size += len(text.encode("utf-8"))
        if size >= megabytes * 1e6:
            break
    return texts, size


def best_time(runs: int, function) -> float:
    """Seconds of the fastest of ``runs`` calls, after one warm-up call (fills caches, lazy imports)."""
    function()
    best = float("inf")
    for _ in range(runs):
        best = min(best, timed(function))
    return best


def timed(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(ours, theirs, repeat: int = 5, warmup: int = 1) -> tuple[float, float]:
    """Best-of-``repeat`` seconds for each of two callables, run alternately after ``warmup`` untimed rounds.

    Alternating keeps a slow phase of the machine (another process, allocator warm-up) from landing on one side.
    """
    for _ in range(warmup):
        ours(), theirs()
    best_ours = best_theirs = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, timed(ours))
        best_theirs = min(best_theirs, timed(theirs))
    return best_ours, best_theirs


def machine() -> str:
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def report(name: str, ours: float, theirs: float, unit: str = "s") -> None:
    """Print one comparison line; a speed-up above 1 means tinyformers is faster."""
    print(
        f"{name:<40} tinyformers {ours:9.4f} {unit}   transformers {theirs:9.4f} {unit}   speed-up {theirs / ours:5.2f}x"
    )


SPEED_VARIANTS = ("eager", "compile", "int8", "int8+compile")


def names_from(known, what: str = "name"):
    """An argparse ``type`` for a comma-separated list of names from ``known`` (a collection, or a regular
    expression each name must match in full): a wrong name is a one-line usage error before anything loads."""

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        if isinstance(known, str):
            wrong, choices = [n for n in names if not re.fullmatch(known, n)], f"names matching {known}"
        else:
            wrong, choices = [n for n in names if n not in known], ", ".join(known)
        if wrong or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(map(repr, wrong)) or '(none given)'}; choose from {choices}"
            )
        return names

    return parse


def speed_variant(model, name: str):
    """``model`` (float32, eager) itself for ``eager``, else a copy with the speed options ``name`` lists
    (``compile``, ``int8``, ``int8+compile``)."""
    if name not in SPEED_VARIANTS:
        raise ValueError(f"unknown variant '{name}'; choose from {', '.join(SPEED_VARIANTS)}")
    if name == "eager":
        return model
    variant = copy.deepcopy(model)
    if "int8" in name:
        variant.quantize_weights("int8")
    if "compile" in name:
        variant.compile_decoding()
    return variant
