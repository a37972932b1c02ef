"""Benchmark tier: the reference against real flow runs, under one Prefect test server
for the session (tests/conftest.py), shared with the end-to-end tier."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # reference.py, run_benchmark.py


@pytest.fixture(scope="session", autouse=True)
def _prefect(prefect_server):
    """Every test of this tier runs under the session's Prefect test server."""
    yield
