"""Shared test plumbing: where the real assets live, the oracle libraries, strict mode and the oracle cache.

Strict mode: with ``CI=true`` in the environment a test that would skip because an asset or an oracle package
is missing fails instead, so that a green CI run is never a mostly-skipped one. ``asset()`` and ``oracle()`` say
so themselves; the hooks below also turn the skips of a bare ``pytest.importorskip`` or ``pytest.skip`` (in a
test, a fixture or at module level) into failures. A skip that is meant to happen is declared on the test with
``@pytest.mark.skipif(condition, reason=...)``: those stay skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("ASSETS_DIR", ROOT / ".assets")).resolve()  # make exports a relative path
STRICT = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
STRICT_NOTE = "strict mode (CI=true): a missing asset or oracle fails instead of skipping"


def missing(reason: str):
    """Skip the test for ``reason`` (an asset or oracle that is not here), or, in strict mode, fail it."""
    if STRICT:
        pytest.fail(f"{reason} [{STRICT_NOTE}]", pytrace=False)
    pytest.skip(reason)


def asset(name: str) -> Path:
    """The folder of one fetched asset; without it, skip (fail in strict mode) saying how to fetch it."""
    path = ASSETS / name
    if not path.exists():
        missing(f"asset '{name}' missing in {ASSETS}: run `make assets` (scripts/fetch_assets.sh)")
    return path


def oracle(name: str):
    """Import one oracle library (``transformers``, ``tokenizers.decoders``, ...) for a parity test; without it,
    skip (fail in strict mode) saying how to install it. Use instead of ``pytest.importorskip``."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing(f"test dependency '{name}' cannot be imported ({error}): pip install -e '.[test]'")


# -- parallel workers (`make test` runs `pytest -n 3`: pytest-xdist) -------------------------------------------------


def share_the_cores_between_workers(environ=os.environ) -> None:
    """Set up one pytest-xdist worker before anything imports torch: ``cores / workers`` threads, at least one
    (an explicit ``OMP_NUM_THREADS`` wins). The environment carries it to the CLI and server subprocesses the
    tests start.

    All workers keep compiling into torch's one inductor cache folder: torch takes a file lock per kernel while
    it builds one and writes cache entries atomically, and a shared folder stays warm from run to run whichever
    worker a compiling test file lands on (one folder per worker would compile cold whenever it moved)."""
    worker = environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ...: set in xdist's workers only
    if not worker:
        return
    # Two workers with two threads each oversubscribe two cores, and OpenMP's spinning threads then slow every
    # process down many times over.
    threads = max(1, (os.cpu_count() or 1) // int(environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environ.setdefault(name, str(threads))


share_the_cores_between_workers()


# The files that take longest with cold caches (a clean CI machine), longest first: 100-130 s each for the first
# two beside the other workers, 40-75 s for the rest.
LONGEST_FILES = (
    "test_lora_facts.py",
    "test_smollm2.py",
    "test_gguf_blocks.py",
    "test_llama_speed_options.py",
    "test_cli.py",
    "test_training_examples.py",
    "test_t5_speed_options.py",
)


def pytest_collection_modifyitems(session, config, items):
    """Files with ``slow`` tests first, the longest ones (``LONGEST_FILES``) in front: with workers each taking
    whole files (``--dist loadfile``), a long file started last would leave the others idle until it ends. xdist
    keeps this order only with ``--no-loadscope-reorder`` (as `make test` runs it); by default it hands out the
    files with the most tests first."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    longest = {name: rank for rank, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: (item.path not in slow_files, longest.get(item.path.name, len(longest))))


# -- strict mode for skips that do not come through missing() ------------------------------------------------------


def _declared_skip(item) -> bool:
    return any(mark.name in ("skip", "skipif") for mark in item.iter_markers())


def _fail_instead(report) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{reason} [{STRICT_NOTE}]"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if STRICT and report.skipped and not hasattr(report, "wasxfail") and not _declared_skip(item):
        _fail_instead(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if STRICT and report.skipped:  # a module-level importorskip or skip(allow_module_level=True)
        _fail_instead(report)
    return report


def pytest_report_header(config):
    return STRICT_NOTE if STRICT else "strict mode off (CI is not true): a missing asset or oracle skips"


# -- slow oracle results, computed once per library versions and inputs ------------------------------------------

# Outside the checkout, like torch's compiled-kernel cache: a fresh clone on the same machine (as CI makes) reuses
# what an earlier run computed. Inputs are keyed by content, so freshly fetched copies of the same files hit.
ORACLE_CACHE = Path(
    os.environ.get("ORACLE_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyformers-tests" / "oracles"
)
ORACLE_PACKAGES = ("torch", "transformers", "tokenizers", "sentencepiece", "gguf", "numpy", "safetensors")


def library_versions() -> dict[str, str | None]:
    versions = {"python": sys.version.split()[0]}
    for package in ORACLE_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


@functools.cache
def _content_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_key(path: Path) -> dict:
    """What identifies an input file in a cache key: its name and the sha256 of its bytes (hashed once per
    process, size and modification time telling when to hash again)."""
    stat = Path(path).stat()
    return {"name": Path(path).name, "sha256": _content_sha256(str(path), stat.st_size, stat.st_mtime_ns)}


def cached_oracle(name: str, inputs, compute):
    """``compute()`` (an oracle's slow result: tensors, lists, dicts, numbers, strings) kept on disk in
    ``$ORACLE_CACHE_DIR`` (default ``~/.cache/tinyformers-tests/oracles``), keyed by ``name``, ``inputs``
    (JSON-able, e.g. with ``file_key``) and the versions of python, torch and the oracle libraries. Where that
    folder cannot be written the result is computed each time. The key does not see ``compute``'s code: a change
    to what it returns needs a new ``name``.

    One process computes an entry at a time: a pytest-xdist worker asking for an entry another worker is
    computing waits for it instead of computing it again (transformers takes ~30 s over SmolLM2's)."""
    import torch  # the cache files are torch.save archives; conftest itself stays importable without torch

    key = json.dumps({"name": name, "inputs": inputs, "versions": library_versions()}, sort_keys=True)
    path = ORACLE_CACHE / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    with _computing(path):
        if path.is_file():  # computed by the worker that held the lock
            return torch.load(path, weights_only=True)
        value = compute()
        try:
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            torch.save(value, partial)
            os.replace(partial, path)  # whole or absent: a run stopped half way leaves no broken entry
        except OSError:
            pass  # a read-only cache folder: the result is still right, only not kept
    return value


@contextlib.contextmanager
def _computing(path: Path):
    """Hold an exclusive lock on ``path``'s lock file; without a writable cache folder, go on unlocked. The
    operating system releases the lock of a process that dies holding it."""
    try:
        ORACLE_CACHE.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(f".{path.name}.lock"), "w")
    except OSError:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def tensor_digest(tensor) -> str:
    """dtype, shape and sha256 of the bytes: equal digests mean equal tensors, element for element (the form in
    which large oracle tensors are cached)."""
    import torch

    data = tensor.detach().contiguous().cpu()
    digest = hashlib.sha256(data.reshape(-1).view(torch.uint8).numpy()).hexdigest()
    return f"{data.dtype}{list(data.shape)}:{digest}"


# -- asset folders -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return asset("minilm")


@pytest.fixture(scope="session")
def gpt2_tokenizer_dir() -> Path:
    return asset("gpt2-tokenizer")


@pytest.fixture(scope="session")
def spm_dir() -> Path:
    return asset("sentencepiece")


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    return asset("smollm2")


@pytest.fixture(scope="session")
def bbc_dir() -> Path:
    return asset("bbcnews")


@pytest.fixture(scope="session")
def t5_tokenizer_dir(spm_dir, tmp_path_factory) -> Path:
    """A folder with only ``spiece.model``: the botchan unigram model in T5's layout (see fixtures.py)."""
    from fixtures import write_t5_spiece

    folder = tmp_path_factory.mktemp("t5tok")
    write_t5_spiece(spm_dir / "botchan_en_unigram_1000.model", folder)
    return folder


# -- oracle objects several test files compare against (read-only: a test that changes one makes its own) ----------


@pytest.fixture(scope="session")
def hf_minilm(minilm_dir):
    """transformers' all-MiniLM-L6-v2 model, in eval mode."""
    return oracle("transformers").AutoModel.from_pretrained(str(minilm_dir)).eval()


@pytest.fixture(scope="session")
def hf_minilm_tokenizer(minilm_dir):
    """transformers' tokenizer of all-MiniLM-L6-v2 (a BertTokenizer on the tokenizers backend)."""
    return oracle("transformers").AutoTokenizer.from_pretrained(str(minilm_dir))


@pytest.fixture(scope="session")
def hf_gpt2_tokenizer(gpt2_tokenizer_dir):
    """transformers' GPT2Tokenizer on the real vocab.json + merges.txt."""
    return oracle("transformers").AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir))
