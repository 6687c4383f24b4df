"""The command line tells the user's mistakes (one line, exit code 2) from bugs (a traceback), and takes new
commands from one list."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import types

import pytest

from cli_runner import run_cli
from tinyformers.cli import COMMANDS, build_parser, main
from tinyformers.cli.common import CommandError, add_command
from tinyformers.cli.jobs import LineWriter, signals_as_interrupts
from tinyformers.cli.main import is_user_error
from tinyformers.cli.sampling import generation_options


def raised(function, *args):
    try:
        function(*args)
    except Exception as e:
        return e
    raise AssertionError(f"{function.__name__}{args} raised nothing")


def test_user_errors_are_the_ones_a_user_can_fix(tmp_path):
    from tinyformers.hub import resolve_dir
    from tinyformers.pipelines import canonical_task
    from tinyformers.utils import read_json

    (tmp_path / "bad.json").write_text("{not json")
    users = [
        raised(resolve_dir, str(tmp_path / "missing")),  # ModelNotFoundError, an OSError
        raised(open, tmp_path / "missing.jsonl"),  # FileNotFoundError
        raised(read_json, tmp_path / "bad.json"),  # ValueError naming the file
        raised(json.loads, "{not json"),  # JSONDecodeError
        raised(canonical_task, "sentiment-analysiss"),  # UnknownTaskError, a KeyError
        CommandError("--param 'x' is not KEY=VALUE"),
        NotImplementedError("tensor 't' is Q2_K, which tinyformers cannot dequantize"),
    ]
    bugs = [
        raised(lambda: None + 1),  # TypeError
        raised(lambda: {}["key"]),  # KeyError
        raised(lambda: None.attribute),  # AttributeError
        NotImplementedError(),  # an abstract step nobody wrote
    ]
    assert [is_user_error(e) for e in users] == [True] * len(users), users
    assert [is_user_error(e) for e in bugs] == [False] * len(bugs), bugs


def plugin(name: str, handler) -> types.ModuleType:
    """A command module as the CLI package documents them: add_parser(subparsers) and a handler."""
    module = types.ModuleType(name)

    def add_parser(subparsers):
        add_command(subparsers, name, f"the {name} command", f"  tinyformers {name}").set_defaults(
            handler=handler
        )

    module.add_parser = add_parser
    return module


def test_a_new_command_is_one_more_module_in_the_list(capsys):
    hello = plugin("hello", lambda args: print("hello", args.json))
    assert main(["hello", "--json"], commands=(*COMMANDS, hello)) == 0
    assert capsys.readouterr().out == "hello True\n"
    assert "hello" in build_parser((*COMMANDS, hello)).format_help()


def test_a_user_error_is_one_line_and_exit_code_2(capsys, tmp_path):
    assert main(["info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tinyformers: error: ") and "neither a local" in err


def test_a_bug_keeps_its_traceback(tmp_path):
    (tmp_path / "broken.py").write_text(
        textwrap.dedent(
            """
            from tinyformers.cli.common import add_command

            def add_parser(subparsers):
                add_command(subparsers, "broken", "a command with a bug", "").set_defaults(handler=handle)

            def handle(args):
                return {}["missing key"]
            """
        )
    )
    script = (
        "import sys, broken; from tinyformers.cli import COMMANDS, main; "
        "sys.exit(main(['broken'], COMMANDS + (broken,)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=pythonpath(tmp_path)
    )
    assert out.returncode == 1, out.stderr
    assert "Traceback (most recent call last)" in out.stderr and "KeyError: 'missing key'" in out.stderr
    assert "tinyformers: error" not in out.stderr


def pythonpath(folder) -> dict:
    paths = [str(folder), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def test_a_pipeline_option_typo_is_a_user_error(minilm_dir):
    out = run_cli("run", "feature-extraction", "hi", "--model", str(minilm_dir), "-p", "tokenize_kwarg={}")
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "unexpected argument(s) tokenize_kwarg" in out.stderr


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_generate_and_chat_share_their_sampling_flags(command):
    flags = ["--temperature", "0.7", "--top-p", "0.5", "--top-k", "3", "--seed", "1", "--max-new-tokens", "9"]
    args = build_parser().parse_args([command, *flags])
    assert generation_options(args) == {
        "max_new_tokens": 9,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.5,
        "top_k": 3,
    }
    greedy = build_parser().parse_args([command])
    assert generation_options(greedy) == {
        "max_new_tokens": 50 if command == "generate" else 256,
        "do_sample": False,
    }


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_a_batch_is_written_waits_until_its_lines_are_counted(signum):
    """A batch job's lines and their count change together, so that the "holds the first N results" a stopped
    job prints is what its file holds. The signal here comes to another thread, as it can in a real job (torch's
    worker threads, tqdm's monitor): blocking it in the writing thread alone did not hold it."""
    go, sent = threading.Event(), threading.Event()

    def send():
        go.wait(10)
        os.kill(os.getpid(), signum)
        sent.set()

    class Output(io.BytesIO):
        def write(self, data):
            written = super().write(data)
            go.set()
            sent.wait(10)  # the signal is pending for this thread's Python code from here on
            return written

    helper = threading.Thread(target=send)  # started here, it does not block the signal
    helper.start()
    writer = LineWriter(Output(), batch_size=2)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a command
    try:
        with signals_as_interrupts(), pytest.raises(KeyboardInterrupt):
            writer.add({"text": "a", "result": 1})
            writer.add({"text": "b", "result": 2})  # a full batch: written and counted, then the signal acts
            writer.add({"text": "c", "result": 3})
    finally:
        signal.signal(signal.SIGINT, previous)
        helper.join()
    assert writer.written == 2 and writer.stream.getvalue().count(b"\n") == 2
