"""A run killed at any step and run again pays everyone exactly what is owed (issue 4).

The second run of a scenario is a real process, killed by REDRESS_FAIL_AT at one step
(os._exit: no clean-up, as with kill -9), pointed at the session's Prefect test server;
then the pipeline runs again to the end and the invariants are checked:
every eligible customer's issued + settled payments equal the entitlement, no batch
folder without ledger rows, no ledger row without its folder, no half-written file,
every person notified exactly once across the published notification files.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.remediation import remediation
from redress.runtime.faults import KILLED_EXIT_CODE
from redress.generate import generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from paid_once import assert_paid_exactly_once, redress_killed_at

RUN = ("run", "--run-date", "2025-12-02", "--policy", str(DEFAULT_POLICY))
STEPS = [
    "ingest:before-commit",
    "returns:before-commit",
    "validate:before-commit",  # the new file's rows appended (incremental), with their record
    "entitle:before-commit",  # its customers re-entitled, with the record that they are
    "disburse:planned",
    "disburse:folder-written",
    "disburse:folders-written",
    "disburse:committed",
    "disburse:published-one",
    "notify:files-written",
    "notify:committed",
]


def q(data: Path, sql: str):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A breach paid once, then a new scope file and a returns file dropped in."""
    data = tmp_path_factory.mktemp("crash") / "data"
    generate(data, 600, seed=21)
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    unexposed = [r[0] for r in q(data, """
        SELECT customer_id FROM customers WHERE NOT is_test AND status <> 'closed'
        AND customer_id NOT IN (SELECT customer_id FROM entitlements) ORDER BY 1 LIMIT 5""")]
    assert unexposed, "the generated breach leaves some customers unexposed"
    rows = "".join(f"{c},,,name,2025-08-01T12:00:00+09:00,,late\n" for c in unexposed)
    (data / "inbox" / "scope" / "scope_09_late.csv").write_text(
        "customer_id,email,phone,data_category,accessed_at,confidence,source\n" + rows)
    returned = [r[0] for r in q(data, "SELECT payment_id FROM ledger ORDER BY payment_id LIMIT 3")]
    settled = [r[0] for r in q(data, "SELECT payment_id FROM ledger ORDER BY payment_id DESC LIMIT 2")]
    (data / "inbox" / "returns" / "returns_day2.csv").write_text(
        "payment_id,status,reason\n"
        + "".join(f"{p},returned,account closed\n" for p in returned)
        + "".join(f"{p},settled,\n" for p in settled))
    return data


@pytest.fixture(scope="module")
def from_scratch(first_run, tmp_path_factory):
    """The same inbox run once in a fresh folder: where every killed-then-rerun
    incremental run must end (outcome tables and entitlements, row for row)."""
    fresh = tmp_path_factory.mktemp("crash-scratch") / "data"
    shutil.copytree(first_run / "inbox", fresh / "inbox")
    remediation(data_dir=fresh, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    return fresh


# Outcome tables without run_id (which run wrote a row differs by construction).
OUTCOMES = {
    "scope_exposures": "SELECT * FROM scope_exposures",
    "non_member_exposures": "SELECT * FROM non_member_exposures",
    "review": "SELECT * FROM review",
    "quarantine": "SELECT * EXCLUDE (run_id) FROM quarantine WHERE kind = 'scope'",
    "entitlements": "SELECT * EXCLUDE (run_id) FROM entitlements",
}




@pytest.mark.parametrize("step", STEPS)
def test_killed_at_any_step_then_run_again(first_run, from_scratch, tmp_path, step):
    data = tmp_path / "data"
    shutil.copytree(first_run, data)
    killed = redress_killed_at(step, data, *RUN)
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    summary = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert_paid_exactly_once(data)
    outcomes = q(data, "SELECT outcome, error FROM runs ORDER BY run_id")
    assert [o for o, _ in outcomes] == ["succeeded", "failed", "succeeded"]
    assert "killed" in outcomes[1][1]
    # the returned payments were reissued with attempt 2, once
    assert q(data, "SELECT count(*) FROM ledger WHERE attempt = 2") == [(3,)]
    # every exposed customer has an entitlement computed from all their exposures: the
    # late file's customers too, however far the killed run got
    assert q(data, "SELECT count(DISTINCT customer_id) FROM scope_exposures") == q(
        data, "SELECT count(*) FROM entitlements")
    assert q(data, """SELECT count(*) FROM entitlements WHERE reason = 'ELIGIBLE' AND customer_id IN
                      (SELECT customer_id FROM scope_exposures WHERE source = 'late')""") == [(5,)]
    # and the incremental rerun ends where one run over the same inbox from scratch ends
    for name, sql in OUTCOMES.items():
        assert q(data, f"SELECT * FROM ({sql}) ORDER BY ALL") == q(from_scratch, f"SELECT * FROM ({sql}) ORDER BY ALL"), name
    assert summary["validate"]["destinations"]["rows_read"] == q(
        data, "SELECT sum(rows_read) FROM ingested_files WHERE kind = 'scope' AND status = 'accepted'")[0][0]
    assert_the_killed_run_is_reported(data, step, summary["run_id"])


def assert_the_killed_run_is_reported(data: Path, step: str, rerun: str) -> None:
    """The killed run wrote no report; the rerun wrote it from the warehouse: the files
    the killed run took in and the returns it applied are in exactly one summary, so
    finance can reconcile the bank's file (found by review: "no new files")."""
    killed = "R20251202-001"
    assert rerun == "R20251202-002"
    report = (data / "reports" / killed / "summary.md").read_text(encoding="utf-8")
    assert f"**The run failed**: stopped before the end (killed or crashed): it wrote no report, so run {rerun} " in report
    rerun_report = (data / "reports" / rerun / "summary.md").read_text(encoding="utf-8")
    assert (f"Run {killed} stopped before the end (killed or crashed) and wrote no report."
            f" This run wrote it") in rerun_report
    assert f"[reports/{killed}/summary.md](../{killed}/summary.md)" in rerun_report
    ingested = step != "ingest:before-commit"
    returns_applied = step not in ("ingest:before-commit", "returns:before-commit")
    for name, applied_by_killed in (("scope_09_late.csv", ingested), ("returns_day2.csv", returns_applied)):
        in_killed, in_rerun = f"| {name} |" in report, f"| {name} |" in rerun_report
        assert (in_killed, in_rerun) == (applied_by_killed, not applied_by_killed), (name, step)
    if returns_applied:
        assert "| settled (finance's results) | 2 | 100,000 |" in report
        assert "| returned (finance's results) | 3 | 150,000 |" in report
    else:
        assert "| returned (finance's results) | 0 | 0 |" in report
    (paid, krw, batches), = q(data, f"SELECT count(*), sum(amount), count(DISTINCT batch_id) FROM ledger "
                                    f"WHERE run_id = '{killed}'")
    assert (paid > 0) == (step.startswith("disburse:") and step not in ("disburse:planned", "disburse:folder-written",
                                                                       "disburse:folders-written") or
                          step.startswith("notify:"))
    assert f"| its new payments, in {batches} batch(es) | {paid:,} | {int(krw or 0):,} |" in report
    told = q(data, f"SELECT channel, count(*) FROM notifications WHERE run_id = '{killed}' GROUP BY ALL ORDER BY 1")
    assert bool(told) == (step == "notify:committed")  # only a notify that committed told anyone
    assert ("People notified: " + (", ".join(f"{n:,} by {c}" for c, n in told) or "none") + ".") in report
    # written once: the run after the rerun writes it again no more
    assert q(data, f"SELECT count(*) FROM runs WHERE run_id = '{killed}' AND outcome = 'failed'") == [(1,)]


def test_killed_while_a_new_snapshot_is_promoted_with_a_revision_then_run_again(first_run, tmp_path):
    """A new customers snapshot (renamed into place, not copied) arrives with the late
    scope file; the run is killed inside the promotion's transaction. The rerun promotes
    it, takes the full path, and ends where one run from scratch ends."""
    data = tmp_path / "data"
    shutil.copytree(first_run, data)
    (snapshot,) = sorted((data / "inbox" / "customers").iterdir())
    reordered = tmp_path / f"customers_9_new{snapshot.suffix}"
    if snapshot.suffix == ".parquet":
        pl.read_parquet(snapshot).reverse().write_parquet(reordered)
    else:
        pl.read_csv(snapshot, infer_schema=False).reverse().write_csv(reordered)
    shutil.copy(reordered, data / "inbox" / "customers" / reordered.name)
    killed = redress_killed_at("ingest:customers-before-commit", data, *RUN)
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    assert q(data, "SELECT DISTINCT file_sha256 FROM customers") != q(
        data, f"SELECT file_sha256 FROM ingested_files WHERE file_name = '{reordered.name}'")
    summary = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert summary["validate"]["why"] == "full: new customers snapshot"
    assert_paid_exactly_once(data)
    fresh = tmp_path / "fresh" / "data"
    shutil.copytree(data / "inbox", fresh / "inbox")
    remediation(data_dir=fresh, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    for name, sql in OUTCOMES.items():
        assert q(data, f"SELECT * FROM ({sql}) ORDER BY ALL") == q(fresh, f"SELECT * FROM ({sql}) ORDER BY ALL"), name


def test_a_killed_run_whose_policy_file_is_gone_is_still_reported(first_run, tmp_path):
    """Found by review: a killed run whose policy file was edited, renamed or deleted
    since had its report retried, and failed, on every later run, so the returns file it
    applied was in no summary. It is written, what depends on a policy read under the
    new run's, and says so."""
    data = tmp_path / "data"
    shutil.copytree(first_run, data)
    gone = tmp_path / "policy-of-the-killed-run.toml"
    shutil.copy(DEFAULT_POLICY, gone)
    killed = redress_killed_at("validate:before-commit", data, "run", "--run-date", "2025-12-02", "--policy", str(gone))
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    gone.unlink()
    summary = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    report = (data / "reports" / "R20251202-001" / "summary.md").read_text(encoding="utf-8")
    assert "policy coupang-2025-v1 (file policy-of-the-killed-run.toml)" in report
    assert "its policy file is not as it was" in report and "| returns_day2.csv |" in report
    assert "| returned (finance's results) | 3 | 150,000 |" in report
    assert "[reports/R20251202-001/summary.md]" in (data / "reports" / summary["run_id"] / "summary.md").read_text()
