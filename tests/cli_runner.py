"""Run the ``tinyformers`` command inside the test process: ``main(argv)`` with its own stdin, stdout, stderr,
environment and working directory, answered as the ``subprocess.CompletedProcess`` a real process would give.

Why: a new Python process spends ~2.5 s importing torch before the command starts, and the CLI tests run well
over a hundred commands. What only a real process shows stays in subprocess tests: the ``python -m tinyformers``
entry point, signals (Ctrl-C, SIGTERM), pipes closed by the reader, what ``import`` pulls in, compiled models.

The differences from a process, and how they are closed:
* exit codes: ``SystemExit`` (argparse) becomes its code, an uncaught exception a traceback on stderr and 1;
* warnings go to stderr as Python's defaults print them, and log records at WARNING and above as the
  ``logging`` module's last-resort handler prints them (pytest's own handlers would otherwise take them);
* ``os.environ``, the working directory, torch's random state and its thread count are restored afterwards, so
  a ``--seed`` or a changed variable cannot leak into the next test.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import traceback
import warnings

import torch

from tinyformers.cli import main

# Python's default warning filters, as a fresh interpreter has them (pytest changes them in its own process).
DEFAULT_FILTERS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, None),
    ("ignore", PendingDeprecationWarning, None),
    ("ignore", ImportWarning, None),
    ("ignore", ResourceWarning, None),
)


class _Stream(io.TextIOWrapper):
    """A text stream over a temporary file, with ``.buffer`` and ``.fileno()`` like sys.stdout's (a command may
    hand its stdout to a child process); never a terminal."""

    def __init__(self, data: bytes = b""):
        super().__init__(
            tempfile.TemporaryFile(), encoding="utf-8", errors="backslashreplace", write_through=True
        )
        self.buffer.write(data)
        self.buffer.seek(0)

    def value(self) -> bytes:
        self.flush()
        self.buffer.seek(0)
        data = self.buffer.read()
        self.close()
        return data


@contextlib.contextmanager
def _environment(env: dict | None, extra: dict, cwd):
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update({k: str(v) for k, v in env.items()})
        os.environ.update({k: str(v) for k, v in extra.items()})
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _exit_code(exit: SystemExit, stderr) -> int:
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    print(exit.code, file=stderr)
    return 1


def run_cli(
    *args: str,
    input: str | bytes | None = None,
    text: bool = True,
    env: dict | None = None,
    cwd: str | os.PathLike | None = None,
    threads: int | None = None,
    **extra_env,
) -> subprocess.CompletedProcess:
    """``tinyformers ARGS`` in this process. ``env`` replaces the environment (as subprocess's does) and
    ``extra_env`` adds to it; ``input`` is the command's stdin; ``text=False`` gives stdout and stderr as bytes;
    ``threads`` sets torch's thread count for the call (what OMP_NUM_THREADS does for a process)."""
    stdin = _Stream(input.encode() if isinstance(input, str) else (input or b""))
    stdout, stderr = _Stream(), _Stream()
    log = logging.StreamHandler(stderr)
    log.setLevel(logging.WARNING)
    rng, saved_threads = torch.get_rng_state(), torch.get_num_threads()
    saved = sys.stdin, sys.stdout, sys.stderr
    with _environment(env, extra_env, cwd), warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in DEFAULT_FILTERS:
            warnings.filterwarnings(action, category=category, module=module or "")
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: stderr.write(
            warnings.formatwarning(message, category, filename, lineno, line)
        )
        logging.getLogger().addHandler(log)
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
        torch.set_num_threads(threads or saved_threads)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:
            code = _exit_code(exit, stderr)
        except Exception:
            traceback.print_exc(file=stderr)
            code = 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
            logging.getLogger().removeHandler(log)
            torch.set_rng_state(rng)
            torch.set_num_threads(saved_threads)
    out, err = stdout.value(), stderr.value()
    stdin.close()
    if text:
        out, err = out.decode(), err.decode()
    return subprocess.CompletedProcess(["tinyformers", *map(str, args)], code, out, err)
