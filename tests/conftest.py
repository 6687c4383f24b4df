"""Shared fixtures: where the real assets live, and skipping with a reason when they or an oracle are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("ASSETS_DIR", ROOT / ".assets"))


def asset(name: str) -> Path:
    """The folder of one fetched asset, or skip the test saying how to fetch it."""
    path = ASSETS / name
    if not path.exists():
        pytest.skip(f"asset '{name}' missing in {ASSETS}: run `make assets` (scripts/fetch_assets.sh)")
    return path


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
    """A folder with only ``spiece.model``: the botchan unigram model in T5's layout (see t5_fixtures.py)."""
    from t5_fixtures import write_t5_spiece

    folder = tmp_path_factory.mktemp("t5tok")
    write_t5_spiece(spm_dir / "botchan_en_unigram_1000.model", folder)
    return folder
