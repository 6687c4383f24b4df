"""Strict mode: under CI (CI=true) a missing asset or oracle fails a test instead of skipping it. Checked by
running pytest, with this folder's conftest.py, on a small test file in a fresh folder."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = """
import pytest

from conftest import asset, oracle


def test_present_asset_passes():
    assert asset("present").is_dir()


def test_missing_asset():
    asset("absent")


def test_missing_oracle():
    oracle("no_such_oracle_library")


def test_bare_importorskip():
    pytest.importorskip("no_such_oracle_library")


@pytest.fixture
def needs_an_asset():
    return asset("absent")


def test_missing_asset_in_a_fixture(needs_an_asset):
    pass


@pytest.mark.skipif(True, reason="declared on the test: stays a skip")
def test_declared_skip():
    pass
"""

MODULE_LEVEL = """
import pytest

tokenizers_of_the_future = pytest.importorskip("no_such_oracle_library")


def test_never_runs():
    pass
"""


@pytest.fixture
def sample(pytester, tmp_path, monkeypatch):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_sample=TESTS, test_module_level=MODULE_LEVEL)
    assets = tmp_path / "assets"
    (assets / "present").mkdir(parents=True)
    monkeypatch.setenv("ASSETS_DIR", str(assets))
    return pytester


def test_without_ci_missing_assets_and_oracles_skip(sample, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = sample.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=6)
    result.stdout.fnmatch_lines(["*strict mode off*"])


def test_under_ci_they_fail(sample, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = sample.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, failed=3, errors=2, skipped=1)
    result.stdout.fnmatch_lines_random(
        [
            "*strict mode (CI=true)*",
            "FAILED test_sample.py::test_missing_asset*asset 'absent' missing*",
            "FAILED test_sample.py::test_missing_oracle*no_such_oracle_library*",
            "FAILED test_sample.py::test_bare_importorskip*could not import*",
            "ERROR test_sample.py::test_missing_asset_in_a_fixture*asset 'absent' missing*",
            "ERROR test_module_level.py*could not import*",
            "SKIPPED*declared on the test: stays a skip*",
        ]
    )
