"""The ``tinyformers`` command, run as a user runs it: a subprocess, checking exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys


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
