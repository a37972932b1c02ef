"""Benchmark tier: the reference against real flow runs, under one Prefect test server
for the session (as tests/flows/conftest.py sets it up; conftest files of sibling
folders are not shared, so the few lines are repeated here)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # reference.py, run_benchmark.py


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("REDRESS_HMAC_KEY", "test-key-not-a-secret-0123456789abcdef")
    os.environ.setdefault("REDRESS_DEBTOR_NAME", "Test Payer Corp.")
    os.environ.setdefault("REDRESS_DEBTOR_ACCOUNT", "1002003004005")
    os.environ.setdefault("REDRESS_DEBTOR_BANK_CODE", "020")
    os.environ.setdefault("REDRESS_INBOX_QUIET_SECONDS", "0")
    os.environ.setdefault("REDRESS_INBOX_WAIT_SECONDS", "0")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
