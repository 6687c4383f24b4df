"""Data-parallel training with a real ``torchrun``: 2 processes x batch B train exactly as 1 process x batch 2B
(same logged losses within 1e-5, same final weights within 1e-3 of each tensor's scale, same gathered evaluation),
and only rank 0 writes the model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training_fixtures import tiny_bert, tiny_llama

HERE = Path(__file__).parent
SCRIPT = HERE / "ddp_script.py"


def run(command: list[str], tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"), OMP_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_train_like_one_with_twice_the_batch(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    if not Path(torchrun).exists():
        pytest.skip("torchrun not found next to the Python interpreter")
    bert, llama = tiny_bert(tmp_path / "bert"), tiny_llama(tmp_path / "llama")
    run([sys.executable, str(SCRIPT), str(bert), str(llama), str(tmp_path / "one"), "--batch", "4"], tmp_path)
    run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            str(SCRIPT),
            str(bert),
            str(llama),
            str(tmp_path / "two"),
            "--batch",
            "2",
        ],
        tmp_path,
    )
    one = json.loads((tmp_path / "one" / "results-0.json").read_text())
    two = [json.loads((tmp_path / "two" / f"results-{rank}.json").read_text()) for rank in (0, 1)]
    for task in ("classifier", "lm"):
        assert len(one[task]["losses"]) == 20
        for rank in (0, 1):  # every rank logs the global loss and the gathered evaluation
            torch.testing.assert_close(
                torch.tensor(two[rank][task]["losses"]), torch.tensor(one[task]["losses"]), rtol=1e-5, atol=0
            )
            for key, value in one[task]["eval"].items():
                assert two[rank][task]["eval"][key] == pytest.approx(value, rel=1e-5), (task, key)
        single = load_file(tmp_path / "one" / task / "final" / "model.safetensors")
        parallel = load_file(tmp_path / "two" / task / "final" / "model.safetensors")
        for name, reference in single.items():
            if "key.bias" in name:
                continue  # zero true gradient: Adam amplifies round-off there (see test_training_parity.py)
            scale = reference.abs().max().item() or 1.0
            assert (parallel[name] - reference).abs().max().item() <= 1e-3 * scale, (task, name)
        checkpoint = tmp_path / "two" / task / "checkpoint-20"
        files = sorted(p.name for p in checkpoint.iterdir())
        assert "rng_state_0.pth" in files and "rng_state_1.pth" in files and "model.safetensors" in files
        assert not list((tmp_path / "two" / task).glob("tmp-*"))
    for rank in (0, 1):
        assert "41 examples, which do not split evenly over 2 processes" in two[rank]["odd"]
        assert "\n" not in two[rank]["odd"]
    assert one["odd"] is None  # one process takes any size
