"""Shared test fixtures, one section per concern. Keep each section small.

Tests never write into the working directory: use pytest's tmp_path.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import settings as hypothesis_settings

from redress.policy import DEFAULT_POLICY, Policy, load_policy

# --------------------------------------------------------------------------- policies


@pytest.fixture(scope="session")
def policy():
    """policy(**changes): the shipped default policy with some fields replaced.

    Session-scoped so hypothesis tests may use it; the factory never changes the loaded
    policy, it returns a new frozen copy (pass new dicts for categories/tiers).
    """
    base = load_policy(DEFAULT_POLICY)

    def make(**changes) -> Policy:
        return dataclasses.replace(base, **changes)

    return make


# --------------------------------------------------------------------------- prefect


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One Prefect test server for the whole session (starting one costs seconds), a
    temporary PREFECT_HOME, no analytics, generous startup time, and the settings a run
    needs. Tiers that run the flow use it through an autouse fixture of their own
    (tests/flows, tests/benchmarks); one place, so the tiers cannot disagree on them."""
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


# --------------------------------------------------------------------------- hypothesis

# No timed tests: how long an example takes on a shared machine, or beside a second
# pytest worker, says nothing about the code, so hypothesis's per-example deadline is off.
hypothesis_settings.register_profile("redress", deadline=None)
hypothesis_settings.load_profile("redress")
