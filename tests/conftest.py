"""Shared test fixtures, one section per concern. Keep each section small.

Tests never write into the working directory: use pytest's tmp_path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import json
import os
import random
import tempfile
from pathlib import Path
from unittest import mock

import pytest
import websockets.asyncio.connection as websockets_connection
import websockets.client as websockets_client
from hypothesis import settings as hypothesis_settings

from redress.policy import DEFAULT_POLICY, Policy, load_policy

# A test still going after this long has hung (found by the mutation review: a rule's
# loop that never ends stalled `make test` until CI's own limit, failing nothing). The
# worker then prints every thread's stack and exits, which fails the run at once. The
# slowest test takes about two minutes.
HUNG_TEST_SECONDS = 600


@pytest.fixture(autouse=True)
def _a_hung_test_fails():
    faulthandler.dump_traceback_later(HUNG_TEST_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()

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
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    # No flow-run heartbeats in this process: they are Prefect's crash detection for a
    # server that watches runs, which no test here checks, and their thread sleeps in
    # one-second steps that the end of every flow run waited out (0 to 1 s a run, some
    # three hundred runs). A command started as a process has none either when it starts
    # its own temporary server (redress/runtime/prefect_server.py).
    with contextlib.ExitStack() as stack:
        # The test server keeps no event feed and fires no automations (its event
        # persister, triggers and actions are off): no test here reads events or needs an
        # automation to fire (test_approval_served creates one and reads it back through
        # the API), and they took about 2 of the server's 7 CPU seconds over six
        # 600-customer runs, on the cores the tests run on. Task runs are still recorded
        # (tests/prefect_records.py). Set only while the server process starts: the
        # temporary servers of the commands tests start keep every service, as a user's do.
        with mock.patch.dict(os.environ, SERVER_SERVICES_OFF):
            stack.enter_context(prefect_test_harness(server_startup_timeout=180))
        stack.enter_context(prefect.settings.temporary_settings(
            updates={prefect.settings.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                     prefect.settings.PREFECT_LOGGING_TO_API_ENABLED: False}))
        # Logs are not sent to the test server, by the flow runs of this process nor by
        # the commands the tests start from it (tests/forked.py takes this environment):
        # each record was serialised, queued, posted and stored, about 13% of the CPU of
        # a 600-customer run and its rerun, the test server's included (2026-12-06).
        # The modules that read logs back turn them on (`logs_to_prefect`).
        stack.enter_context(mock.patch.dict(os.environ, LOGS_OFF))
        yield


LOGS_OFF = {"PREFECT_LOGGING_TO_API_ENABLED": "false"}


@pytest.fixture(scope="module")
def logs_to_prefect(prefect_server):
    """Logs sent to the session's test server again, for a module whose tests read them
    back (tests/prefect_records.py `flow_run_logs` refuses to read them otherwise): the
    flow runs of this process and the commands started from it, as a user's are."""
    import prefect.settings

    with mock.patch.dict(os.environ, {"PREFECT_LOGGING_TO_API_ENABLED": "true"}), \
            prefect.settings.temporary_settings(updates={prefect.settings.PREFECT_LOGGING_TO_API_ENABLED: True}):
        yield


SERVER_SERVICES_OFF = {"PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
                       "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false"}


# --------------------------------------------------------------------------- temporary files


def pytest_configure(config):
    """Every test's temporary files live under folders named like Hive partitions
    (`customer_id=...`, `amount=...`): DuckDB's readers take such a folder in a path as
    a column and put its value in place of the file's own column, unless told
    `hive_partitioning = false` (redress/sql.py). Data folders do get such names, so
    every reader the suite exercises is tried against the trap
    (tests/redress/test_sql.py checks that it is set). The folders go under the root
    pytest would use: `--basetemp` if given, else PYTEST_DEBUG_TEMPROOT (pytest's own
    switch for the root of its numbered folders, which it still numbers per run and
    keeps the last three of), else the system's temporary folder."""
    given = config.option.basetemp
    if given:
        if HIVE_LIKE.parts[0] not in Path(given).parts:  # an xdist worker's is set already
            config.option.basetemp = str(Path(given) / HIVE_LIKE)
            Path(config.option.basetemp).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    root = os.environ.get("PYTEST_DEBUG_TEMPROOT") or Path(tempfile.gettempdir()) / f"redress-tests-{os.getuid()}"
    if HIVE_LIKE.parts[0] not in Path(root).parts:
        root = Path(root) / HIVE_LIKE
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(root)


@pytest.fixture(scope="session")
def scratch_root(tmp_path_factory):
    """A folder for tests that make a temporary folder per hypothesis example
    (`tempfile.TemporaryDirectory(dir=scratch_root)`: function-scoped tmp_path is one
    folder for all examples), under the same Hive-like folders as tmp_path."""
    return tmp_path_factory.mktemp("scratch")


# Folder names DuckDB would read as partition columns of the files under them; the
# values differ from any the generator writes, so a reader that took them would be seen.
HIVE_LIKE = Path("customer_id=C0000000000", "amount=7", "payment_id=P-hive", "run_id=hive")


# --------------------------------------------------------------------------- the two workers

# `make test` runs two xdist workers, a module per worker at a time (`--dist loadscope`),
# handing modules out in collection order (`--no-loadscope-reorder`): xdist's own order,
# most tests first, left single-test modules of 10 to 20 s for the end, where one worker
# waited for the other (a simulation over the measured times: 15 s apart in half the
# orderings, 37 s in one of ten). Longest first leaves the two ending together. The
# seconds are each module's measured time (setup, call and teardown of its tests):
# `make test-seconds` measures them again; a module not listed counts 0.3 s a test.
# Only the order depends on them, never a test's outcome.
MODULE_SECONDS_FILE = Path(__file__).with_name("module_seconds.json")
MODULE_SECONDS = json.loads(MODULE_SECONDS_FILE.read_text(encoding="utf-8"))
_measured: dict[str, float] = {}


def pytest_collection_modifyitems(config, items):
    """The collected tests, module by module, the longest module first (ties by name);
    each module's tests in their own order."""
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)

    def seconds(module: str) -> float:
        return MODULE_SECONDS.get(module, 0.3 * len(modules[module]))

    items[:] = [item for module in sorted(modules, key=lambda m: (-seconds(m), m)) for item in modules[module]]


def pytest_runtest_logreport(report):
    """With REDRESS_MEASURE_MODULE_SECONDS set, the main process adds up each module's time."""
    if os.environ.get("REDRESS_MEASURE_MODULE_SECONDS") and not os.environ.get("PYTEST_XDIST_WORKER"):
        module = report.nodeid.split("::")[0]
        _measured[module] = _measured.get(module, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    """With REDRESS_MEASURE_MODULE_SECONDS set, the main process writes the modules' times
    over their earlier figures (a run of some modules keeps the others')."""
    if _measured and exitstatus == 0:
        seconds = MODULE_SECONDS | {m: round(s, 1) for m, s in _measured.items()}
        MODULE_SECONDS_FILE.write_text(json.dumps(dict(sorted(seconds.items())), indent=0) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- hypothesis

# No timed tests: how long an example takes on a shared machine, or beside a second
# pytest worker, says nothing about the code, so hypothesis's per-example deadline is off.
hypothesis_settings.register_profile("redress", deadline=None)
hypothesis_settings.load_profile("redress")

# websockets draws each keepalive ping's payload, and its reconnection delays, from the
# global `random`, in the thread where Prefect's events client keeps its connection to
# the test server open once a flow has run. Hypothesis compares the global generator's
# state before and after it draws an example, and warned "Do not use the `random` module
# inside strategies" whenever a ping fell inside a draw: on a test whose strategies use
# no `random` (tests/redress/test_escape.py, tests/tasks/test_conservation.py), on some
# runs only. websockets gets a generator of its own.
websockets_connection.random = websockets_client.random = random.Random()
