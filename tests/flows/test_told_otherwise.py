"""A person told once, whose money later comes on another footing (found by the audit
review): K1, a closed account without bank details, was told by the first run that only
suspected exposures name them ("not covered"); a revision confirms the exposure, and
the next run holds 50,000 KRW for K1 on claim, which only a call claims. The SPEC tells
a person once, so K1 is not told again; the run says so and lists K1 for customer
service, where it used to say that everyone had been told."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from flows.remediation import remediation
from paid_once import redress_killed_at
from redress.runtime.faults import KILLED_EXIT_CODE

CUSTOMERS = ("customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account\n"
             "K1,Kim,k1@example.com,010-4000-0001,closed,2020-01-01,2025-10-01,false,,,\n"
             "K2,Lee,k2@example.com,010-4000-0002,active,2020-01-01,,false,,,\n")
SCOPE = "customer_id,email,phone,data_category,accessed_at,confidence,source\n"


def drop(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    later = time.time() + len(list(path.parent.iterdir()))  # read after what came before
    os.utime(path, (later, later))


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_a_person_told_not_covered_then_held_on_claim_is_listed_for_customer_service(tmp_path):
    data = tmp_path / "data"
    for kind in ("customers", "scope"):
        (data / "inbox" / kind).mkdir(parents=True)
    drop(data / "inbox" / "customers" / "customers.csv", CUSTOMERS)
    drop(data / "inbox" / "scope" / "s1.csv", SCOPE + "K1,,,name,2025-07-01T10:00:00+09:00,suspected,log\n"
                                                    "K2,,,name,2025-07-01T10:00:00+09:00,confirmed,log\n")
    first = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    assert first["notify"]["told_otherwise"] == 0
    assert q(data, "SELECT customer_id, template_id FROM notifications ORDER BY 1") == [
        ("K1", "member_not_paid_v2"), ("K2", "member_voucher_v2")]
    drop(data / "inbox" / "scope" / "s2.csv", SCOPE + "K1,,,name,2025-07-01T10:00:00+09:00,confirmed,log\n")
    second = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert q(data, "SELECT customer_id, rail, amount FROM ledger WHERE run_id = ?", [second["run_id"]]) == [
        ("K1", "claim", 50000)]
    assert (second["notify"]["notifications"], second["notify"]["told_otherwise"],
            second["notify"]["told_otherwise_krw"]) == (0, 1, 50000)
    assert second["notify"]["told_otherwise_list"] == f"quarantine/{second['run_id']}/told_otherwise.csv"
    listed = pl.read_csv(data / "quarantine" / second["run_id"] / "told_otherwise.csv")
    (code,), = q(data, "SELECT reference_code FROM notifications WHERE customer_id = 'K1'")
    assert listed.rows() == [("K1", code, "member_not_paid_v2", first["run_id"], "claim", 50000)]
    page = (data / "reports" / second["run_id"] / "summary.md").read_text(encoding="utf-8")
    assert ("Nobody new to tell: everyone this run paid or found was told before, but not all of them what this "
            "run pays them (below).") in page
    assert ("**Paid now, told otherwise before**: 1 customer this run pays or holds 50,000 KRW for (with any a run "
            "stopped before telling people paid) was told by an earlier run that they get nothing, or of another "
            "rail") in page
    # both runs' payees looked at: no later run lists K1 again (runs.told_checked)
    assert q(data, "SELECT run_id, told_checked FROM runs ORDER BY 1") == [(first["run_id"], True),
                                                                          (second["run_id"], True)]
    assert f"`quarantine/{second['run_id']}/told_otherwise.csv` lists them" in page and "K1" not in page and code not in page
    assert oct((data / "quarantine" / second["run_id"] / "told_otherwise.csv").stat().st_mode & 0o777) == "0o600"


@pytest.fixture(scope="module")
def confirmed_after_told(tmp_path_factory):
    """The first run told K1 "not covered"; the confirming revision waits in the inbox."""
    data = tmp_path_factory.mktemp("told") / "data"
    for kind in ("customers", "scope"):
        (data / "inbox" / kind).mkdir(parents=True)
    drop(data / "inbox" / "customers" / "customers.csv", CUSTOMERS)
    drop(data / "inbox" / "scope" / "s1.csv", SCOPE + "K1,,,name,2025-07-01T10:00:00+09:00,suspected,log\n"
                                                    "K2,,,name,2025-07-01T10:00:00+09:00,confirmed,log\n")
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    drop(data / "inbox" / "scope" / "s2.csv", SCOPE + "K1,,,name,2025-07-01T10:00:00+09:00,confirmed,log\n")
    return data


@pytest.mark.parametrize("step", ["notify:files-written", "notify:committed"])
def test_a_run_killed_in_notify_leaves_the_list_to_exactly_one_run(confirmed_after_told, tmp_path, step):
    """Found by review: the list was written before the commit that marks the payees
    looked at, so a run killed in between left a list and the next run wrote it again
    (two lists, one person, two calls). Now the list is published with the
    notifications: killed before the commit, no list, and the next run lists K1; killed
    after it, the next run publishes the killed run's list and lists nobody again."""
    data = tmp_path / "data"
    shutil.copytree(confirmed_after_told, data)
    killed = redress_killed_at(step, data, "run", "--run-date", "2025-12-02", "--policy", str(DEFAULT_POLICY))
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    killed_run = "R20251202-001"
    assert not (data / "quarantine" / killed_run / "told_otherwise.csv").exists()  # nothing published yet
    after = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    (code,), = q(data, "SELECT reference_code FROM notifications WHERE customer_id = 'K1'")
    listed = {run: pl.read_csv(path).rows() for run in (killed_run, after["run_id"])
              if (path := data / "quarantine" / run / "told_otherwise.csv").exists()}
    lister = killed_run if step == "notify:committed" else after["run_id"]
    assert listed == {lister: [("K1", code, "member_not_paid_v2", "R20251201-001", "claim", 50000)]}
    assert after["notify"]["told_otherwise"] == (step != "notify:committed")
    assert not list((data / "outbox" / "notifications").glob(".tmp-*"))
    assert q(data, "SELECT bool_and(told_checked) FROM runs") == [(True,)]
    for suffix in ("csv", "parquet", "xlsx"):
        path = data / "quarantine" / lister / f"told_otherwise.{suffix}"
        assert oct(path.stat().st_mode & 0o777) == "0o600", suffix
