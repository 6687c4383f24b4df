"""Which CPUs decode with oneDNN's inner product (eager) and the matvec loop (compiled): all but Intel's, whose MKL
streams weights faster (benchmarks/README.md); ``TINYFORMERS_ONEDNN`` overrides. Whatever this machine is, the
oneDNN path is tested."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tinyformers.models.inner_product import ONEDNN_INNER_PRODUCT, PREFER_MKL, cpu_vendor, onednn_wanted

HERE = Path(__file__).resolve().parent


def test_the_cpu_vendor_decides_unless_the_environment_does():
    assert onednn_wanted({}, vendor=lambda: "AuthenticAMD")
    assert onednn_wanted({}, vendor=lambda: None)  # not Linux: as before the choice existed
    assert not onednn_wanted({}, vendor=lambda: "GenuineIntel")
    assert onednn_wanted({"TINYFORMERS_ONEDNN": "1"}, vendor=lambda: "GenuineIntel")
    assert not onednn_wanted({"TINYFORMERS_ONEDNN": "0"}, vendor=lambda: "AuthenticAMD")
    assert onednn_wanted({"TINYFORMERS_ONEDNN": ""}, vendor=lambda: "AuthenticAMD")


def test_this_machine_follows_the_rule():
    assert PREFER_MKL is not onednn_wanted()
    if not torch.backends.mkldnn.is_available():
        assert ONEDNN_INNER_PRODUCT is None
    else:
        assert (ONEDNN_INNER_PRODUCT is not None) == onednn_wanted()
    assert cpu_vendor() is None or cpu_vendor().isprintable()


@pytest.mark.skipif(ONEDNN_INNER_PRODUCT is not None, reason="test_inner_product.py runs here as it is")
@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")
def test_the_onednn_path_is_tested_where_it_is_not_chosen():
    env = {**os.environ, "TINYFORMERS_ONEDNN": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_inner_product.py")],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary
