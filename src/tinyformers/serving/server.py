"""``tinyformers serve``: load one model, start the scheduler, run the API under uvicorn until SIGTERM/SIGINT.

Shutdown: uvicorn stops accepting connections and waits for the open ones (running streams finish, as the
scheduler keeps decoding), then the scheduler drains what is left and the process exits.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..auto import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
from ..pipelines import check_fits, pipeline
from .app import Served, build_app
from .defaults import GATHER_GAP, MAX_BATCH, MAX_QUEUE, PROMPT_CACHE_MIB
from .scheduler import Scheduler

log = logging.getLogger("tinyformers.serve")
T = TypeVar("T")


def served_name(model: str, gguf_file: str | None) -> tuple[str, tuple[str, ...]]:
    """The id clients pass as ``model``: a hub id as given, a path by its last part; the argument as typed is
    accepted too."""
    source = gguf_file or model
    name = Path(source).name if os.path.exists(source) else source
    return name, tuple({model, source} - {name})


def load(
    model: str,
    gguf_file: str | None = None,
    max_batch: int = MAX_BATCH,
    max_queue: int = MAX_QUEUE,
    max_context: int | None = None,
    api_key: str | None = None,
    compile: bool = False,
    quantize: str | None = None,
    prompt_cache_mib: int = PROMPT_CACHE_MIB,
    gather_seconds: float = GATHER_GAP,
) -> Served:
    """Load ``model`` as a causal LM or an encoder-decoder LM (both served through the scheduler), or an encoder
    (served for embeddings)."""
    config = AutoConfig.from_pretrained(model, gguf_file=gguf_file)
    name, aliases = served_name(model, gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
    served = Served(name, tokenizer, api_key=api_key, aliases=aliases, created=int(time.time()))
    task = "text2text-generation" if getattr(config, "is_encoder_decoder", False) else "text-generation"
    try:
        check_fits(task, config.model_type, f"'{model}'")
    except ValueError:
        check_fits(
            "sentence-embedding", config.model_type, f"'{model}'"
        )  # neither: this error says what fits
        served.embedder = pipeline("sentence-embedding", model=model, gguf_file=gguf_file)
        return served
    speed = {"compile": compile, "quantize": quantize} if (compile or quantize) else {}
    auto = AutoModelForSeq2SeqLM if task == "text2text-generation" else AutoModelForCausalLM

    def scheduler() -> Scheduler:
        try:
            lm = auto.from_pretrained(model, gguf_file=gguf_file, **speed).eval()
        except TypeError as error:  # a model class that does not take the speed options
            if not speed:
                raise
            raise ValueError(f"{error}: serve '{model}' without --compile and --quantize") from None
        scheduler = Scheduler(
            lm,
            tokenizer,
            max_batch,
            max_queue,
            max_context,
            prompt_cache_bytes=prompt_cache_mib << 20,
            gather_gap=gather_seconds,
        )
        scheduler.slots.warm_up(lm)  # here, in the passing thread, before /health answers
        return scheduler

    served.scheduler = in_passing_thread(scheduler).start()
    return served


def in_passing_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run in a thread that ends when it returns (its result returned, its exception raised here).

    Every thread that runs torch's parallel ops keeps a pool of OpenMP threads until it ends. With more of those
    than CPUs, libgomp stops letting them spin between parallel regions, and each op then waits for its threads
    to wake: the scheduler's decoding steps ran markedly slower beside the pool that loading the model had left in
    the main thread (benchmarks/README.md). Loaded in a passing thread, the model leaves no pool behind.
    """
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as error:  # noqa: BLE001 - handed to the caller as it is
            box["error"] = error

    thread = threading.Thread(target=run, name="tinyformers-load", daemon=True)  # Ctrl-C need not wait for it
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def serve(host: str = "127.0.0.1", port: int = 8000, **load_options) -> None:
    import uvicorn

    served = load(**load_options)
    kind = (
        "embeddings" if served.embedder is not None else f"generation, batch of {served.scheduler.slots.rows}"
    )
    log.warning("serving %s (%s) on http://%s:%d", served.name, kind, host, port)
    # Two threads share the GIL: the event loop (reading requests, sending tokens) and the model thread, which
    # holds it between torch ops. At Python's default 5 ms switch interval a request that arrives during a step
    # waits up to 5 ms at a time for the loop to read it, enough to miss a gathered burst (benchmarks/README.md).
    sys.setswitchinterval(0.001)
    # What loading made (the model's modules, the tokenizer's tables, the libraries: ~200,000 objects for SmolLM2)
    # lives as long as the process. A full collection walks all of it, ~80 ms with the GIL held, so both threads
    # stop; frozen out of the collector's sight, it leaves collections well under 1 ms (benchmarks/README.md).
    gc.collect()
    gc.freeze()
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: exit 0 then, not "killed".
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            build_app(served), host=host, port=port, log_level="warning", timeout_graceful_shutdown=30
        )
    finally:
        if served.scheduler is not None:
            served.scheduler.stop(drain=True, timeout=30)
