"""Expected failures of the machine and its settings are one line, change nothing or are
recorded as a failed run, and a rerun after the fix pays exactly once (issue 9, items 2-4).

Tests run as root, where chmod 0o500 does not stop a write; a read-only or forbidden
outbox is simulated by the error the kernel gives there (EROFS, EACCES), raised by the
outbox writer itself, exactly where the real error would come from.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

import redress.outbox.files
import redress.warehouse
import tasks.disburse
from flows.remediation import remediation
from flows.cli import main
from redress.errors import RedressError
from redress.generate import generate
from redress.policy import Policy, load_policy
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

GOOD_KEY = "a-long-enough-test-secret-0123456789"


def q(data: Path, sql: str):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def run(data: Path, day: int = 1) -> dict:
    return remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, day))


def files(data: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data)): p.read_bytes()
            for p in sorted(data.rglob("*")) if p.is_file() and p.name != ".redress.lock"}


def assert_paid_exactly_once(data: Path) -> None:
    wrong = q(data, """
        WITH paid AS (SELECT customer_id, sum(amount) FILTER (status IN ('issued', 'settled')) AS paid,
                             count(*) AS n FROM ledger GROUP BY ALL)
        SELECT count(*) FROM entitlements e LEFT JOIN paid p USING (customer_id)
        WHERE (e.reason = 'ELIGIBLE' AND (coalesce(p.paid, 0) <> e.amount OR p.n <> 1))
           OR (e.reason <> 'ELIGIBLE' AND p.n IS NOT NULL)""")
    assert wrong == [(0,)]
    batches = data / "outbox" / "batches"
    assert not list(batches.glob(".tmp-*"))
    assert {p.name for p in batches.iterdir()} == {r[0] for r in q(data, "SELECT DISTINCT batch_id FROM ledger")}
    assert q(data, "SELECT count(*) > 0 AND count(*) = count(DISTINCT person_key) FROM notifications") == [(True,)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    data = tmp_path_factory.mktemp("machine") / "data"
    generate(data, 300, seed=5)
    return data


@pytest.fixture
def fresh(generated, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(generated, data)
    return data


@pytest.fixture(scope="module")
def paid(generated, tmp_path_factory):
    data = tmp_path_factory.mktemp("machine-paid") / "data"
    shutil.copytree(generated, data)
    run(data)
    return data


@pytest.fixture
def paid_copy(paid, tmp_path):
    data = tmp_path / "paid" / "data"
    shutil.copytree(paid, data)
    return data


@pytest.fixture
def cli(monkeypatch, capsys):
    for name in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL",
                 "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"):
        monkeypatch.setenv(name, "CRITICAL")

    def call(*args: str) -> tuple[int, list[str]]:
        capsys.readouterr()
        code = main(list(args))
        return code, capsys.readouterr().err.strip().splitlines()

    return call


# ------------------------------------------------------------------ item 2: settings


@pytest.mark.parametrize("key, words", [("", "empty"), ("short-secret", "too short"),
                                        (GOOD_KEY + "\n", "whitespace"), ("  " + GOOD_KEY, "whitespace")])
def test_a_bad_hmac_key_is_refused_before_anything_is_written(paid_copy, fresh, cli, monkeypatch, key, words):
    monkeypatch.setenv("REDRESS_HMAC_KEY", key)
    for data in (paid_copy, fresh):
        before = files(data)
        code, err = cli("--data-dir", str(data), "run", "--run-date", "2025-12-02")
        assert code == 1 and len(err) == 1 and "REDRESS_HMAC_KEY" in err[0] and words in err[0]
        with pytest.raises(RedressError, match="REDRESS_HMAC_KEY"):  # the flow itself, as served runs call it
            run(data, 2)
        assert files(data) == before  # no warehouse row (not even a new warehouse), no outbox file
    assert not (fresh / "warehouse.duckdb").exists() and not (fresh / "outbox").exists()
    assert q(paid_copy, "SELECT run_id, outcome FROM runs") == [("R20251201-001", "succeeded")]


def test_a_malformed_debtor_setting_is_refused_by_name(fresh, monkeypatch):
    monkeypatch.setenv("REDRESS_DEBTOR_BANK_CODE", "20")
    with pytest.raises(RedressError, match="REDRESS_DEBTOR_BANK_CODE"):
        run(fresh)
    assert not (fresh / "warehouse.duckdb").exists()


# ------------------------------------------------------------------ item 3: the warehouse lock


def hold_warehouse(data: Path) -> subprocess.Popen:
    """Another process with an analyst's read-only connection, until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\n"
         "con = duckdb.connect(sys.argv[1], read_only=True)\nprint('ready', flush=True)\ntime.sleep(600)",
         str(data / "warehouse.duckdb")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.wait(timeout=60)


def test_an_analysts_connection_is_named_at_once_and_nothing_changes(paid_copy, cli):
    before = files(paid_copy)
    holder = hold_warehouse(paid_copy)
    try:
        code, err = cli("--data-dir", str(paid_copy), "run", "--run-date", "2025-12-02")
    finally:
        release(holder)
    assert code == 1 and len(err) == 1
    assert f"PID {holder.pid}" in err[0] and "exports" in err[0]
    assert files(paid_copy) == before
    assert q(paid_copy, "SELECT count(*) FROM runs") == [(1,)]


def test_a_lock_taken_mid_run_fails_the_run_in_one_line_and_a_rerun_pays_once(fresh, monkeypatch):
    """A warehouse past HOLD_MAX_BYTES is opened at each step of a run, so an analyst can
    open it between two steps (a small one the run holds open: the next test)."""
    monkeypatch.setattr(redress.warehouse, "HOLD_MAX_BYTES", -1)
    holders = []
    real = tasks.disburse.checkpoint

    def analyst_arrives(step: str, settings) -> None:
        if step == "disburse:planned":
            holders.append(hold_warehouse(fresh))
        real(step, settings)

    monkeypatch.setattr(tasks.disburse, "checkpoint", analyst_arrives)
    try:
        with pytest.raises(RedressError) as failed:
            run(fresh)
    finally:
        for holder in holders:
            release(holder)
    assert len(holders) == 1
    assert f"PID {holders[0].pid}" in str(failed.value) and "\n" not in str(failed.value)
    assert [p.name for p in (fresh / "outbox" / "batches").iterdir() if not p.name.startswith(".")] == []
    assert q(fresh, "SELECT count(*) FROM ledger") == [(0,)]
    monkeypatch.undo()
    second = run(fresh, 1)
    assert second["disburse"]["payments"] > 0
    assert_paid_exactly_once(fresh)
    # the lock also stopped the failed run from recording itself: the next run did
    assert [r[0] for r in q(fresh, "SELECT outcome FROM runs ORDER BY run_id")] == ["failed", "succeeded"]


def test_midnight_passing_while_a_plan_is_checked_releases_nothing_and_a_run_after_it_dates_from_the_new_day(
        fresh, monkeypatch):
    """Found by the time review: a run without approval started at 23:50 released bank
    files dated the day before (the run date, fixed at its start), which a bank refuses
    or moves to a day whose cash cap never counted them. Midnight passing between the
    plan and its release now releases nothing, in one line; a run started before midnight
    and planned after it dates its bank files from the new day, its vouchers the run
    date (redress/rules/plans.py bank_days_from)."""
    policy = load_policy(DEFAULT_POLICY)
    today = policy.today()
    clock = {"ahead": 0}
    monkeypatch.setattr(Policy, "today", lambda self: today + timedelta(days=clock["ahead"]))
    real = tasks.disburse.checkpoint

    def midnight(step: str, settings) -> None:
        if step == "disburse:planned":
            clock["ahead"] = 1
        real(step, settings)

    monkeypatch.setattr(tasks.disburse, "checkpoint", midnight)
    with pytest.raises(RedressError) as failed:
        remediation(data_dir=fresh, policy_path=DEFAULT_POLICY, run_date=today)
    assert str(failed.value).startswith("cannot release the plan of run ")
    assert (f"its bank transfers are dated from {today.isoformat()}, and today is "
            f"{(today + timedelta(days=1)).isoformat()} in Asia/Seoul") in str(failed.value)
    assert "\n" not in str(failed.value) and "run again to plan afresh" in str(failed.value)
    assert not (fresh / "outbox" / "batches").exists()
    assert q(fresh, "SELECT count(*) FROM ledger") == [(0,)]

    monkeypatch.setattr(tasks.disburse, "checkpoint", real)  # the same day's run again, planned after midnight
    # no run date (redress run without --run-date): the day of the instant its start is
    # recorded, never a date read earlier (found by the fix review: a date read before
    # Prefect's server started, then midnight, made the run a catch-up)
    second = remediation(data_dir=fresh, policy_path=DEFAULT_POLICY)
    assert q(fresh, f"SELECT run_date, parameters->>'run_date' FROM runs WHERE run_id = '{second['run_id']}'") == [
        (today, today.isoformat())]
    assert second["disburse"]["payments"] > 0
    assert_paid_exactly_once(fresh)
    assert dict(q(fresh, "SELECT rail, list(DISTINCT value_date) FROM batches GROUP BY rail")) == {
        "bank_transfer": [today + timedelta(days=1)], "voucher": [today], "claim": [today]}
    assert "dated before today" not in (fresh / "reports" / second["run_id"] / "summary.md").read_text("utf-8")


def test_a_catch_up_run_says_what_it_dated_before_today(paid):
    """A run given a past --run-date plans for that date (SPEC: value dates start at the
    run date); found by the time review: its bank files, which a bank refuses or moves to
    a day whose cash cap never counted them, went out with nothing said."""
    (payments, amount, first, last), = q(paid, "SELECT count(*), sum(amount), min(value_date), max(value_date) "
                                                "FROM ledger l JOIN batches b USING (batch_id) WHERE b.rail = 'bank_transfer'")
    assert payments > 0 and last < load_policy(DEFAULT_POLICY).today()
    (run_id,), = q(paid, "SELECT run_id FROM runs")
    summary = (paid / "reports" / run_id / "summary.md").read_text("utf-8")
    assert (f"**Bank transfers dated before today**: {payments:,} of this run's bank transfers, {amount:,} KRW, are "
            f"dated {first.isoformat()} to {last.isoformat()}, before today ({load_policy(DEFAULT_POLICY).today()}") \
        in summary


ANALYST = """
import duckdb, sys
try:
    duckdb.connect(sys.argv[1], read_only=True).close()
    print("opened")
except duckdb.Error as exc:
    print(str(exc).splitlines()[0])
"""


def test_an_analyst_arriving_mid_run_at_a_warehouse_the_run_holds_open_is_refused_and_the_run_pays(
        fresh, monkeypatch):
    """A run holds a small warehouse open from start to end (redress.warehouse.held_open):
    an analyst's connection mid-run is refused by DuckDB's lock, the run goes on."""
    tried = []
    real = tasks.disburse.checkpoint

    def analyst_arrives(step: str, settings) -> None:
        if step == "disburse:planned":
            tried.append(subprocess.run([sys.executable, "-c", ANALYST, str(fresh / "warehouse.duckdb")],
                                        capture_output=True, text=True, check=True).stdout.strip())
        real(step, settings)

    monkeypatch.setattr(tasks.disburse, "checkpoint", analyst_arrives)
    summary = run(fresh)
    assert len(tried) == 1 and "Conflicting lock is held" in tried[0] and f"PID {os.getpid()}" in tried[0]
    assert summary["disburse"]["payments"] > 0
    assert_paid_exactly_once(fresh)


# ------------------------------------------------------------------ item 4: disk full, read-only, corrupt


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "permission denied")])
def test_a_failing_outbox_write_is_one_line_a_failed_run_and_a_rerun_pays_once(fresh, cli, monkeypatch, code, words):
    def failing(frame, folder, stem, **kw):
        raise OSError(code, os.strerror(code), str(folder / f"{stem}.parquet"))

    monkeypatch.setattr(redress.outbox.files, "write_table", failing)
    exit_code, err = cli("--data-dir", str(fresh), "run", "--run-date", "2025-12-01",
                         "--policy", str(DEFAULT_POLICY))
    assert exit_code == 1 and len(err) == 1 and words in err[0] and "payments.parquet" in err[0]
    (outcome, error), = q(fresh, "SELECT outcome, error FROM runs")
    assert outcome == "failed" and words in error
    assert q(fresh, "SELECT count(*) FROM ledger") == [(0,)]
    monkeypatch.undo()
    run(fresh, 1)
    assert_paid_exactly_once(fresh)
    assert [r[0] for r in q(fresh, "SELECT outcome FROM runs ORDER BY run_id")] == ["failed", "succeeded"]


@pytest.mark.parametrize("content", [os.urandom(64 * 1024), b"customer_id,name\nC1,Kim\n"])
def test_a_warehouse_that_is_not_duckdb_is_one_line_and_left_alone(fresh, cli, content):
    (fresh / "warehouse.duckdb").write_bytes(content)
    before = files(fresh)
    for command in ("run", "recover-ledger"):
        (fresh / "outbox" / "batches").mkdir(parents=True, exist_ok=True)  # recover-ledger needs an outbox
        code, err = cli("--data-dir", str(fresh), command)
        assert code == 1 and len(err) == 1 and "not a DuckDB warehouse" in err[0], (command, err)
    assert files(fresh) == before


def test_a_warehouse_restored_beside_a_newer_log_is_one_line_saying_what_to_restore(fresh, cli):
    """Found by the recovery review: warehouse.duckdb restored from a backup beside the
    warehouse.duckdb.wal of a later state, and every command gave DuckDB's "Failure
    while replaying WAL" alone."""
    import subprocess
    import sys

    warehouse = fresh / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
    backup = warehouse.read_bytes()
    with duckdb.connect(str(warehouse)) as con:  # a later state, checkpointed on close
        con.execute("INSERT INTO t VALUES (2)")
    subprocess.run([sys.executable, "-c", "import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); "
                    "con.execute(\"SET checkpoint_threshold = '1TB'\"); con.execute('INSERT INTO t VALUES (3)'); "
                    "os._exit(0)", str(warehouse)], check=True)  # killed: its last write only in the log
    assert (fresh / "warehouse.duckdb.wal").is_file()
    warehouse.write_bytes(backup)
    for command in ("run", "recover-ledger", "explain C000001"):
        (fresh / "outbox" / "batches").mkdir(parents=True, exist_ok=True)
        code, err = cli("--data-dir", str(fresh), *command.split())
        assert code == 1 and len(err) == 1, (command, err)
        assert "warehouse.duckdb.wal does not fit" in err[0] and "restore both files of one backup together" in err[0]


# ------------------------------------------------------------------ the kind: a lock at any step

LOCKED = ('IO Error: Could not set lock on file "{}": Conflicting lock is held in /usr/bin/python3 (PID 4242). '
          "See also https://duckdb.org/docs/current/connect/concurrency")


class LockAt:
    """duckdb.connect, except that from the n-th opening of the warehouse on (n=None:
    none) every opening is refused as DuckDB refuses it while an analyst holds the file:
    an analyst who opens it keeps it open, so a retried opening meets the lock too (GX
    retries its own connection once); counts openings."""

    def __init__(self, real, warehouse: Path, n: int | None):
        self.real, self.warehouse, self.n, self.count = real, str(warehouse), n, 0

    def __call__(self, database=":memory:", *args, **kwargs):
        if str(database) == self.warehouse:
            self.count += 1
            if self.n is not None and self.count >= self.n:
                raise duckdb.IOException(LOCKED.format(database))
        return self.real(database, *args, **kwargs)


@pytest.fixture(scope="module")
def openings(generated, tmp_path_factory):
    """How many times one run opens the warehouse."""
    data = tmp_path_factory.mktemp("count") / "data"
    shutil.copytree(generated, data)
    counter = LockAt(duckdb.connect, data / "warehouse.duckdb", None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(duckdb, "connect", counter)
        run(data)
    assert counter.count > 10
    return counter.count


@pytest.mark.parametrize("where", [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0])
def test_a_lock_at_any_opening_is_one_line_and_a_rerun_pays_once(fresh, openings, monkeypatch, where):
    n = max(1, round(where * openings))
    monkeypatch.setattr(duckdb, "connect", LockAt(duckdb.connect, fresh / "warehouse.duckdb", n))
    with pytest.raises(RedressError) as failed:
        run(fresh)
    assert "PID 4242" in str(failed.value) and "\n" not in str(failed.value)
    monkeypatch.undo()
    run(fresh, 2)
    assert_paid_exactly_once(fresh)
    outcomes = [r[0] for r in q(fresh, "SELECT outcome FROM runs ORDER BY run_id")]
    assert outcomes[-1] == "succeeded" and "running" not in outcomes


# ------------------------------------------------------------------ the kind: disk full at any outbox write


@pytest.fixture(scope="module")
def flushes(generated, tmp_path_factory):
    """How many outbox files and folders one run flushes to disk."""
    data = tmp_path_factory.mktemp("flushes") / "data"
    shutil.copytree(generated, data)
    real, calls = redress.outbox.files.fsync, []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(redress.outbox.files, "fsync", lambda path: (calls.append(path), real(path)))
        run(data)
    assert any("notifications" in str(p) for p in calls)
    return len(calls)


@pytest.mark.parametrize("where", [0.0, 0.3, 0.6, 0.9, 1.0])
def test_disk_full_at_any_outbox_write_is_one_line_and_a_rerun_pays_once(fresh, flushes, monkeypatch, where):
    """Every batch and notification file is flushed through outbox.fsync; the disk
    fills up at one of them (batch files first, the notification files last)."""
    n = max(1, round(where * flushes))
    real, calls = redress.outbox.files.fsync, []

    def filling(path):
        calls.append(path)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path)

    monkeypatch.setattr(redress.outbox.files, "fsync", filling)
    with pytest.raises(RedressError, match="no space left") as failed:
        run(fresh)
    assert "\n" not in str(failed.value)
    assert q(fresh, "SELECT outcome FROM runs") == [("failed",)]
    monkeypatch.undo()
    run(fresh, 2)
    assert_paid_exactly_once(fresh)
    assert not list((fresh / "outbox" / "notifications").glob(".tmp-*"))
