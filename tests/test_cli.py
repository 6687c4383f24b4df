"""The ``tinyformers`` command, run as a user runs it: a subprocess, checking exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyformers.cli", *args], capture_output=True, text=True)


def test_env_json():
    out = run("--json", "env")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["torch"].startswith("2.13") and data["threads"] >= 1


def test_info_on_real_model(minilm_dir):
    out = run("--json", "info", str(minilm_dir))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model_type"] == "bert" and data["architectures"] == ["BertModel"]
    assert data["parameters"] == 22_713_216  # 103 real tensors of all-MiniLM-L6-v2 (position_ids excluded)
    assert data["files"]["model.safetensors"] == 90_868_376


def test_info_bad_path_is_one_line_error(tmp_path):
    out = run("info", str(tmp_path / "missing"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "neither a local directory nor a hub id" in out.stderr


@pytest.mark.slow
def test_chat_one_shot_answers_paris(smollm2_dir):
    out = run(
        "--json",
        "chat",
        "--model",
        str(smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf"),
        "--prompt",
        "What is the capital of France?",
        "--max-new-tokens",
        "12",
    )
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)["reply"]
    assert reply.startswith("The capital of France is Paris.")


@pytest.mark.slow
def test_chat_repl_commands_from_stdin(smollm2_dir):
    model = str(smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf")
    script = "What is the capital of France?\n/reset\n/system Answer in one word.\n/help\n"
    out = subprocess.run(
        [sys.executable, "-m", "tinyformers.cli", "chat", "--model", model, "--max-new-tokens", "10"],
        input=script,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert "(conversation forgotten)" in out.stdout and "(system prompt set" in out.stdout
    assert "commands: /reset" in out.stdout


def test_chat_bad_model_path(tmp_path):
    out = run("chat", "--model", str(tmp_path / "nope.gguf"), "--prompt", "hi")
    assert out.returncode == 2 and "neither a local directory nor a hub id" in out.stderr
