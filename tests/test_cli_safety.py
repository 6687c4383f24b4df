"""The command line does not lose the user's work: ``convert`` writes only its own files, batch jobs keep what
they finished when stopped and resume from there, numeric flags are checked, and inputs come from files of
JSON lines or plain text or from stdin. Every test runs ``tinyformers`` (in this process, ``cli_runner``, or as
a subprocess where a signal or the umask is the point) and looks at the files it leaves, its exit code and its
one-line error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_runner import run_cli
from fixtures import bert_with_minilm_tokenizer

# One thread: the batches of a tiny model are fast and steady even on a busy machine (and every run here uses
# the same setting, so the files they write can be compared byte for byte).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
UMASK = 0o027  # not the usual 022, so that files that ignore the umask stand out


def tinyformers(*args: str, cwd=None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, input=stdin, text=False, threads=1)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    """The error of a failed command, checked to be exactly one line with exit code 2."""
    stderr = out.stderr.decode()
    assert out.returncode == 2, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    return stderr


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, minilm_dir) -> Path:
    """A one-layer random BERT with the real MiniLM tokenizer: sentence embeddings in a few milliseconds."""
    folder = tmp_path_factory.mktemp("encoder") / "bert"
    bert_with_minilm_tokenizer(folder, minilm_dir, "BertModel", num_hidden_layers=1)
    return folder


# -- 1. convert never deletes what it did not write, and writes with the user's umask --------------------------


def test_convert_refuses_a_destination_that_is_or_holds_the_source(encoder, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(encoder, models / "minilm")
    (models / "other").mkdir()
    (models / "other" / "notes.txt").write_text("an unrelated folder beside the model")
    before = tree(models)
    cases = [
        (models, "contains the source"),  # once deleted models/other
        (models / "minilm", "is the source itself"),
        (models / "minilm" / "as-bin", "is inside the source folder"),
    ]
    for destination, message in cases:
        out = tinyformers("convert", str(models / "minilm"), str(destination), "--force")
        assert message in one_line_error(out)
    assert tree(models) == before


def test_convert_writes_its_files_with_the_umask_and_keeps_the_others(encoder, tmp_path):
    def convert(*args):
        previous = os.umask(UMASK)
        try:
            out = tinyformers("--json", "convert", *args)
        finally:
            os.umask(previous)
        assert out.returncode == 0, out.stderr.decode()
        return json.loads(out.stdout)

    as_bin = tmp_path / "as-bin"
    convert(str(encoder), str(as_bin))  # a new folder: model.safetensors -> pytorch_model.bin
    assert (as_bin / "pytorch_model.bin").is_file() and not (as_bin / "model.safetensors").exists()
    assert as_bin.stat().st_mode & 0o777 == 0o777 & ~UMASK
    written = set(tree(encoder)) - {"model.safetensors"} | {"pytorch_model.bin"}
    modes = {str(p.relative_to(as_bin)): p.stat().st_mode & 0o777 for p in as_bin.rglob("*")}
    assert modes == dict.fromkeys(written, 0o666 & ~UMASK)  # were 0600 and 0700 (mkstemp, mkdtemp)

    # Into a folder that holds other things: they stay; files of the same name are replaced, and the old weights
    # in the other format go (a loader would pick them before the new ones).
    target = tmp_path / "target"
    (target / "data").mkdir(parents=True)
    keep = {".keep": b"", ".env": b"SECRET=1\n", "notes.txt": b"mine\n", "data/train.csv": b"text,label\n"}
    for name, content in keep.items():
        (target / name).write_bytes(content)
    (target / "pytorch_model.bin").write_bytes(b"old weights")
    (target / "config.json").write_text("{}")
    data = convert(str(as_bin), str(target), "--to", "safetensors", "--force")
    assert data["removed"] == ["pytorch_model.bin"]
    assert sorted(data["files"]) == sorted(set(tree(as_bin)) - {"pytorch_model.bin"} | {"model.safetensors"})
    files = tree(target)
    assert {name: files[name] for name in keep} == keep
    assert files["config.json"] == (encoder / "config.json").read_bytes()
    assert "pytorch_model.bin" not in files  # the old weights are gone; the new ones are model.safetensors
    assert (target / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~UMASK
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder is left"


# -- 2. batch jobs write as they go, keep their work when stopped, and resume ----------------------------------

TEXTS = [f"sentence number {i}: {'many words ' * (i % 7)}" for i in range(300)]


@pytest.fixture(scope="module")
def job(encoder, tmp_path_factory) -> dict:
    """The input of a long job (plain text, one text per line) and its output from one uninterrupted run."""
    folder = tmp_path_factory.mktemp("job")
    source = folder / "texts.txt"
    source.write_text("".join(text + "\n" for text in TEXTS))
    out = tinyformers("embed", "--model", str(encoder), "--input", str(source), "--output", "all.jsonl",
                      "--batch-size", "4", cwd=folder)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    return {"source": source, "complete": (folder / "all.jsonl").read_bytes()}


def complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_job_keeps_its_finished_lines_and_resumes(encoder, job, tmp_path, stop):
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "tinyformers.cli", "embed", "--model", str(encoder), "--input",
               str(job["source"]), "--output", str(output), "--batch-size", "4"]  # fmt: skip
    # SIG_DFL: Python turns SIGINT into KeyboardInterrupt only if its parent did not ignore it.
    process = subprocess.Popen(
        command,
        env=ENV,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while complete_lines(output) < 8 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(stop)
    stderr = process.communicate(timeout=60)[1].decode()
    assert process.returncode == 128 + stop, stderr

    kept = [json.loads(line) for line in output.read_text().splitlines()]
    assert 8 <= len(kept) < len(TEXTS)
    assert [record["text"] for record in kept] == TEXTS[: len(kept)]
    assert output.read_bytes() == job["complete"][: len(output.read_bytes())]
    # one line says what was kept (the progress bar, on its own line, may be drawn once more after it)
    assert (
        f"tinyformers: stopped by {stop.name}: '{output}' holds the first {len(kept)} of {len(TEXTS)} results; "
        "run the same command with --resume to finish"
    ) in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"], "no temporary file is left"

    resumed = tinyformers(*command[3:], "--resume")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert output.read_bytes() == job["complete"]
    assert f"({len(kept)} were there already)" in resumed.stdout.decode()


@pytest.mark.parametrize("kept", [5, 130])
def test_a_resumed_job_writes_what_an_uninterrupted_one_does(encoder, job, tmp_path, kept):
    """Inputs are batched by length within groups, and a result depends (to float rounding) on the rows padded
    beside it: resuming in the middle of a group must not change which inputs are batched together."""
    output = tmp_path / "out.jsonl"
    output.write_bytes(b"".join(job["complete"].splitlines(keepends=True)[:kept]))
    resumed = tinyformers("embed", "--model", str(encoder), "--input", str(job["source"]), "--output",
                          str(output), "--batch-size", "4", "--resume")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert output.read_bytes() == job["complete"]


def test_resume_refuses_the_output_of_another_input(encoder, job, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps({"text": "something else", "result": [0.5]}) + "\n")
    out = tinyformers("embed", "--model", str(encoder), "--input", str(job["source"]), "--output",
                      str(output), "--resume")  # fmt: skip
    error = one_line_error(out)
    assert f"line 1 of '{output}' is not the result for text 1 of '{job['source']}'" in error
    assert "--force" in error
    assert output.read_text() == json.dumps({"text": "something else", "result": [0.5]}) + "\n"


def test_an_existing_output_needs_resume_or_force(encoder, tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"id": 7, "text": "hello"}\n')
    output.write_text("precious\n")
    out = tinyformers("embed", "--model", str(encoder), "--input", str(source), "--output", str(output))
    assert "pass --resume to continue it, --force to replace it" in one_line_error(out)
    assert output.read_text() == "precious\n"
    out = tinyformers(
        "embed", "--model", str(encoder), "--input", str(source), "--output", str(output), "--force"
    )
    assert out.returncode == 0, out.stderr.decode()
    [record] = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["id"] == 7 and record["text"] == "hello" and len(record["result"]) == 32


# -- 3. numeric flags are checked before anything runs ---------------------------------------------------------

TRAIN = ("train", "model", "--data", "data.csv", "--output-dir", "out")


@pytest.mark.parametrize(
    ("args", "flag", "allowed"),
    [
        (("embed", "x", "--batch-size", "0"), "--batch-size", "a whole number >= 1"),  # was: nothing, exit 0
        (
            ("run", "fill-mask", "x", "--batch-size", "-2"),
            "--batch-size",
            "a whole number >= 1",
        ),  # was: islice
        (("classify", "x", "--top-k", "0"), "--top-k", "a whole number >= 1"),
        (("generate", "x", "--max-new-tokens", "0"), "--max-new-tokens", "a whole number >= 1"),
        (("generate", "x", "--top-k", "-1"), "--top-k", "a whole number >= 0"),
        (("generate", "x", "--top-p", "1.5"), "--top-p", "a number in (0, 1]"),
        (("chat", "--temperature", "-0.5"), "--temperature", "a number >= 0"),
        (("chat", "--seed", "-1"), "--seed", "a whole number from 0 to 4294967295"),
        (("serve", "model", "--port", "70000"), "--port", "a whole number from 1 to 65535"),
        (("serve", "model", "--max-batch", "0"), "--max-batch", "a whole number >= 1"),
        (("hub", "serve", "--port", "0"), "--port", "a whole number from 1 to 65535"),
        (("hub", "search", "--limit", "ten"), "--limit", "a whole number >= 1"),
        ((*TRAIN, "--learning-rate", "nan"), "--learning-rate", "a number > 0"),
        ((*TRAIN, "--warmup-ratio", "1.5"), "--warmup-ratio", "a number in [0, 1]"),
    ],
)
def test_numeric_flags_out_of_range_are_one_line_errors(tmp_path, args, flag, allowed):
    out = tinyformers(*args, cwd=tmp_path)
    value = args[args.index(flag) + 1]
    assert f"argument {flag}: must be {allowed}, got '{value}'" in one_line_error(out)
    assert out.stdout == b"" and not list(tmp_path.iterdir())


# -- 8. inputs: JSON lines or plain text, from a file or stdin; errors name the file, line or folder -----------


def output_records(stdout: bytes) -> list[dict]:
    return [json.loads(line) for line in stdout.decode().splitlines()]


def test_stdin_and_text_files_are_inputs_like_json_lines(encoder, tmp_path):
    texts = ["The first text.", "Ünïcode and a tab\there.", "  spaces kept  "]
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"n": i, "text": t}) + "\n" for i, t in enumerate(texts))
    )
    (tmp_path / "in.txt").write_text(texts[0] + "\r\n\n" + texts[1] + "\n" + texts[2])  # blank lines skipped
    model = ("embed", "--model", str(encoder), "--input")
    from_jsonl = output_records(tinyformers(*model, "in.jsonl", cwd=tmp_path).stdout)
    assert [r["text"] for r in from_jsonl] == texts and [r["n"] for r in from_jsonl] == [0, 1, 2]
    vectors = [r["result"] for r in from_jsonl]
    for args, stdin in [
        (("-",), (tmp_path / "in.txt").read_bytes()),
        (("-",), (tmp_path / "in.jsonl").read_bytes()),  # stdin: JSON lines when its first line is an object
    ]:
        out = tinyformers(*model, *args, cwd=tmp_path, stdin=stdin)
        assert out.returncode == 0, out.stderr.decode()
        records = output_records(out.stdout)
        assert [r["text"] for r in records] == texts and [r["result"] for r in records] == vectors


def test_bad_utf8_names_the_file_and_the_line(encoder, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"text": "fine"}\n{"text": "fine"}\n{"text": "caf\xe9"}\n')
    out = tinyformers(
        "embed", "--model", str(encoder), "--input", "in.jsonl", "--output", "o.jsonl", cwd=tmp_path
    )
    assert "'in.jsonl' line 3 is not UTF-8 text (byte 0xe9 at column 14)" in one_line_error(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    out = tinyformers("embed", "--model", str(encoder), "--input", "-", stdin=b"fine\nna\xefve\xff\n")
    assert "standard input line 2 is not UTF-8 text" in one_line_error(out)


def test_a_missing_output_folder_is_named(encoder, tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    out = tinyformers("embed", "--model", str(encoder), "--input", "in.txt", "--output", "results/out.jsonl",
                      cwd=tmp_path)  # fmt: skip
    error = one_line_error(out)
    assert "the --output folder 'results' does not exist" in error and ".tmp" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
