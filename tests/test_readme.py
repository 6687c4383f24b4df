"""The README tour runs: every ```python block between the tour markers, in order, in one namespace."""

from __future__ import annotations

import re

import pytest

from conftest import ASSETS, ROOT


def tour_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("<!-- tour:start -->", 1)[1].split("<!-- tour:end -->", 1)[0]
    return re.findall(r"```python\n(.*?)```", tour, flags=re.DOTALL)


def test_tour_has_code():
    assert len(tour_blocks()) >= 5


@pytest.mark.slow  # step 4 loads SmolLM2 from its GGUF file
def test_tour_runs(minilm_dir, smollm2_dir, spm_dir, tmp_path, monkeypatch):
    (tmp_path / ".assets").symlink_to(ASSETS, target_is_directory=True)
    monkeypatch.chdir(tmp_path)  # the README's paths are .assets/..., wherever $ASSETS_DIR is
    namespace: dict = {}
    for number, block in enumerate(tour_blocks(), start=1):
        try:
            exec(compile(block, f"README.md tour block {number}", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"README tour block {number} failed: {e!r}\n{block}") from e
