"""Timing helpers shared by the benchmark scripts: warm-up first, then the best of N runs."""

from __future__ import annotations

import os
import platform
import time


def _timed(fn) -> float:
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
        best_ours = min(best_ours, _timed(ours))
        best_theirs = min(best_theirs, _timed(theirs))
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
