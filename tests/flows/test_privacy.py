"""What a run keeps, and who can read it (issue 9, items 8 and 9), end to end.

Files holding personal data are their owner's only (or a chosen group's); the customer
master keeps no name; quarantine masks bank accounts; no staged customer data is left
in work/ after a run, whether it succeeded or failed.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.remediation import remediation
from redress.errors import RedressError
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from share_group import other_group

CUSTOMERS = """customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account
B1,Kim Minji,b1@example.com,010-2000-0001,active,2020-01-01,,false,bank_transfer,004,1234567890
B2,Lee Jun,b2@example.com,010-2000-0002,active,2020-01-01,,false,bank_transfer,088,2234567891
V1,Park Seo,v1@example.com,010-2000-0003,active,2020-01-01,,false,,,
"""
# Rejected whole: B9's status is not one the SPEC knows.
BAD_CUSTOMERS = CUSTOMERS + "B9,Choi Hana,b9@example.com,010-2000-0009,zombie,2020-01-01,,false,bank_transfer,004,9876543210\n"
SCOPE = """customer_id,email,phone,data_category,accessed_at,confidence,source
B1,,,name,2025-07-01,,log
B2,,,name,2025-07-01,,log
V1,,,name,2025-07-01,,log
"""
NAMES = ("Kim Minji", "Lee Jun", "Park Seo", "Choi Hana")
ACCOUNTS = ("1234567890", "2234567891", "9876543210")


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def inbox(root: Path) -> Path:
    data = root / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    return data


def written(data: Path) -> list[Path]:
    """Every file and folder redress wrote: all of the data folder but the inbox."""
    return sorted(p for p in data.rglob("*") if "inbox" not in p.relative_to(data).parts)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A breach paid by bank transfer, then a snapshot rejected for one bad row."""
    data = inbox(tmp_path_factory.mktemp("privacy"))
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    (data / "inbox" / "scope" / "scope.csv").write_text(SCOPE)
    before = os.umask(0o022)
    os.umask(before)
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    (data / "inbox" / "customers" / "customers_v2.csv").write_text(BAD_CUSTOMERS)
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    after = os.umask(0o022)
    os.umask(after)
    return data, before, after


def test_nothing_written_is_readable_by_group_or_others(two_runs):
    data, _, _ = two_runs
    paths = written(data)
    assert len(paths) > 20
    loose = [(str(p.relative_to(data)), oct(stat.S_IMODE(p.stat().st_mode))) for p in paths
             if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []


def test_files_with_personal_data_are_0600(two_runs):
    data, _, _ = two_runs
    personal = [data / "warehouse.duckdb", *data.glob("outbox/batches/*/payments.csv"),
                *data.glob("outbox/batches/*/payments.xlsx"),
                *data.glob("outbox/batches/*/pain.001.xml"),
                *(p for p in data.glob("outbox/notifications/**/*") if p.is_file()),
                *data.glob("quarantine/*/quarantine.*")]
    names = {p.name for p in personal}
    assert {"warehouse.duckdb", "payments.csv", "payments.xlsx", "pain.001.xml", "quarantine.csv", "quarantine.parquet"} <= names
    assert any(p.suffix == ".parquet" for p in data.glob("outbox/notifications/*"))
    assert any(p.parent.name == "index" for p in personal)  # person keys and codes, for recover-ledger
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in personal} == {p.name: "0o600" for p in personal}
    exported = [p for p in (data / "exports").rglob("*")]  # the analysts' copy of the warehouse
    assert any(p.name == "customers.parquet" for p in exported)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in exported if p.is_file()} == {"0o600"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in [data / "exports", *exported] if p.is_dir()} == {"0o700"}


def test_the_run_gives_back_the_umask_it_found(two_runs):
    _, before, after = two_runs
    assert before == after


def test_the_customer_master_keeps_no_name(two_runs):
    data, _, _ = two_runs
    columns = [c for (c,) in q(data, "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'")]
    assert "name" not in columns and "customer_id" in columns
    assert q(data, "SELECT count(*) FROM customers") == [(3,)]
    for name in NAMES:
        assert q(data, "SELECT count(*) FROM quarantine WHERE contains(row_json, ?)", [name]) == [(0,)]


def test_quarantine_masks_bank_accounts_and_keeps_what_finds_the_row(two_runs):
    data, _, _ = two_runs
    rows = q(data, "SELECT row_number, reason, row_json FROM quarantine WHERE kind = 'customers' AND row_number IS NOT NULL")
    assert len(rows) >= 1
    by_customer = {json.loads(j)["customer_id"]: (n, r, json.loads(j)) for n, r, j in rows}
    n, reason, row = by_customer["B9"]
    assert n == 4 and reason
    assert row["bank_account"] == "******3210"
    assert row["name_given"] is True and "name" not in row
    assert row["status"] == "zombie" and row["email"] == "b9@example.com"
    exported = b"".join(p.read_bytes() for p in data.glob("quarantine/*/quarantine.*"))
    assert b"B9" in exported
    for secret in (*ACCOUNTS, *NAMES):
        assert secret.encode() not in exported
        assert q(data, "SELECT count(*) FROM quarantine WHERE contains(row_json, ?)", [secret]) == [(0,)]


def test_no_scratch_files_outlive_a_run(two_runs):
    data, _, _ = two_runs
    assert not (data / "work").exists()


def test_a_failed_run_leaves_no_staged_customer_data(tmp_path):
    data = inbox(tmp_path)
    (data / "inbox" / "customers" / "customers.csv").write_text(BAD_CUSTOMERS)
    with pytest.raises(RedressError, match="no valid customers snapshot"):
        remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    assert q(data, "SELECT outcome FROM runs") == [("failed",)]
    assert not (data / "work").exists()


def test_a_share_group_may_read_but_no_one_else(tmp_path, monkeypatch):
    group = other_group()
    monkeypatch.setenv("REDRESS_SHARE_GROUP", group.gr_name)
    data = inbox(tmp_path)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    (data / "inbox" / "scope" / "scope.csv").write_text(SCOPE)
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    modes = {str(p.relative_to(data)): stat.S_IMODE(p.stat().st_mode) for p in written(data)}
    assert [p for p, m in modes.items() if m & 0o027] == []
    assert modes["warehouse.duckdb"] == 0o640
    for payments in data.glob("outbox/batches/*/payments.csv"):
        assert stat.S_IMODE(payments.stat().st_mode) == 0o640
    assert {p.stat().st_gid for p in written(data)} == {group.gr_gid}
    assert data.stat().st_mode & stat.S_ISGID and (data / "outbox").stat().st_mode & stat.S_ISGID
    # exports/, the analysts' copy, as the other outputs (it was 0600 in a 0700 folder)
    exported = [data / "exports", *(data / "exports").rglob("*")]
    assert any(p.name == "customers.parquet" for p in exported)
    assert {modes[str(p.relative_to(data))] for p in exported if p.is_file()} == {0o640}
    assert {modes[str(p.relative_to(data))] for p in exported if p.is_dir()} == {0o750 | stat.S_ISGID}


def test_an_unknown_share_group_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("REDRESS_SHARE_GROUP", "no-such-group-redress")
    data = inbox(tmp_path)
    with pytest.raises(RedressError, match="REDRESS_SHARE_GROUP names no group"):
        remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    assert not (data / "warehouse.duckdb").exists()


def test_payments_still_name_the_customer_by_id(two_runs):
    data, _, _ = two_runs
    paid = [c for p in data.glob("outbox/batches/*/payments.csv")
            for c in pl.read_csv(p, infer_schema=False)["customer_id"].to_list()]
    assert sorted(paid) == ["B1", "B2", "V1"]
    pain = b"".join(p.read_bytes() for p in data.glob("outbox/batches/*/pain.001.xml"))
    assert b"<Nm>B1</Nm>" in pain and not any(n.encode() in pain for n in NAMES)
