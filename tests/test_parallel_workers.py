"""How `make test`'s pytest-xdist workers share the machine (tests/conftest.py)."""

from __future__ import annotations

import os

from conftest import share_the_cores_between_workers


def test_each_worker_gets_its_share_of_the_threads():
    environ = {"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2"}
    share_the_cores_between_workers(environ)
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert environ["OMP_NUM_THREADS"] == environ["MKL_NUM_THREADS"] == threads


def test_an_explicit_thread_count_wins_and_a_plain_run_is_left_alone():
    environ = {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2", "OMP_NUM_THREADS": "3"}
    share_the_cores_between_workers(environ)
    assert environ["OMP_NUM_THREADS"] == "3"
    plain = {"OMP_NUM_THREADS": "2"}
    share_the_cores_between_workers(plain)
    assert plain == {"OMP_NUM_THREADS": "2"}
