"""End-to-end tier: every test under the session's one Prefect test server and test
settings (tests/conftest.py `prefect_server`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _prefect(prefect_server):
    """Every test of this tier runs under the session's Prefect test server (tests/conftest.py)."""
    yield
