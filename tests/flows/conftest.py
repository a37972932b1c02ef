"""End-to-end tier: one Prefect test server for the whole session (starting one costs
seconds), a temporary PREFECT_HOME, no analytics, generous startup time."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("REDRESS_HMAC_KEY", "test-key-not-a-secret-0123456789abcdef")
    os.environ.setdefault("REDRESS_DEBTOR_NAME", "Test Payer Corp.")
    os.environ.setdefault("REDRESS_DEBTOR_ACCOUNT", "1002003004005")
    os.environ.setdefault("REDRESS_DEBTOR_BANK_CODE", "020")
    # Files written by a test are complete at once; tests of files still being copied
    # in set their own values (monkeypatch.setenv).
    os.environ.setdefault("REDRESS_INBOX_QUIET_SECONDS", "0")
    os.environ.setdefault("REDRESS_INBOX_WAIT_SECONDS", "0")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
