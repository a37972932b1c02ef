"""A file dropped in the wrong inbox folder, refused there, then moved to the right one
(SPEC "File rules", "Nothing is lost"): a file is its content within its folder, so the
move is read like any new file, under its own name or another, and its people are paid;
within one folder the same content is still a duplicate. The watch's side of the same
rule is in tests/tasks/test_watch.py."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.remediation import remediation
from redress.customer_service.explain import explain
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

CUSTOMERS = """customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account
B1,Kim,b1@example.com,010-2000-0001,active,2020-01-01,,false,bank_transfer,004,1234567890
V1,Lee,v1@example.com,010-2000-0002,active,2020-01-01,,false,,,
"""
# The next snapshot: V2 joins (a scope row names it from the first run on).
CUSTOMERS_V2 = CUSTOMERS + "V2,Park,v2@example.com,010-2000-0003,active,2020-01-01,,false,,,\n"
SCOPE = """customer_id,email,phone,data_category,accessed_at,confidence,source
B1,,,name,2025-07-01,,log
"""
REVISION = """customer_id,email,phone,data_category,accessed_at,confidence,source
V1,,,email,2025-07-01,,log
V2,,,email,2025-07-01,,log
"""


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def run(data: Path, day: int) -> dict:
    return remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, day))


def paid(data: Path) -> dict[str, int]:
    return dict(q(data, "SELECT customer_id, sum(amount) FROM ledger WHERE status IN ('issued', 'settled') "
                        "GROUP BY ALL ORDER BY ALL"))


def recorded(data: Path, name: str) -> list[tuple]:
    return q(data, "SELECT kind, status FROM ingested_files WHERE file_name = ? ORDER BY run_id", [name])


@pytest.fixture()
def data(tmp_path):
    data = tmp_path / "data"
    for kind in ("customers", "scope", "returns", "claims"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    (data / "inbox" / "scope" / "scope.csv").write_text(SCOPE)
    return data


def move(data: Path, kind: str, name: str, to_kind: str, to_name: str | None = None) -> None:
    """As a person moves a file: the same bytes and modification time (mv)."""
    os.replace(data / "inbox" / kind / name, data / "inbox" / to_kind / (to_name or name))


@pytest.mark.parametrize("to_name", [None, "scope_revision_fixed.csv"], ids=["same name", "renamed"])
def test_a_scope_file_refused_among_the_customers_is_read_once_moved_to_scope(data, to_name):
    (data / "inbox" / "customers" / "scope_revision.csv").write_text(REVISION)
    run(data, 1)
    assert recorded(data, "scope_revision.csv") == [("customers", "missing_column")]
    assert paid(data) == {"B1": 50_000}  # V1's exposure is not evidence yet
    move(data, "customers", "scope_revision.csv", "scope", to_name)
    second = run(data, 2)
    name = to_name or "scope_revision.csv"
    assert q(data, "SELECT status, rows_read FROM ingested_files WHERE kind = 'scope' AND file_name = ?",
             [name]) == [("accepted", 2)]
    # V1 is paid; V2 is in no snapshot yet: an unknown customer id, quarantined, not dropped
    assert paid(data) == {"B1": 50_000, "V1": 50_000}
    assert q(data, "SELECT json_extract_string(row_json, '$.customer_id'), reason FROM quarantine "
                   "WHERE kind = 'scope' AND file_name = ?", [name]) == [("V2", "unknown_customer_id")]
    assert [(f["kind"], f["file_name"], f["status"]) for f in second["ingest"]["files"]] == [
        ("scope", name, "accepted")]
    # within the scope folder the same content is still a duplicate, under any name
    shutil.copy2(data / "inbox" / "scope" / name, data / "inbox" / "scope" / "again.csv")
    run(data, 3)
    assert recorded(data, "again.csv") == [("scope", "duplicate_file")]
    assert paid(data) == {"B1": 50_000, "V1": 50_000}


def test_a_snapshot_refused_among_the_scope_files_becomes_the_master_once_moved(data):
    (data / "inbox" / "scope" / "scope_revision.csv").write_text(REVISION)
    (data / "inbox" / "scope" / "customers_v2.csv").write_text(CUSTOMERS_V2)
    run(data, 1)
    assert recorded(data, "customers_v2.csv") == [("scope", "missing_column")]
    assert paid(data) == {"B1": 50_000, "V1": 50_000}  # V2 unknown to the master
    unread = "1 scope file could not be read at all (customers_v2.csv)"
    assert unread in explain(data, "V1")  # for all the forensics lead knows, it may be scope evidence
    move(data, "scope", "customers_v2.csv", "customers")
    run(data, 2)
    assert recorded(data, "customers_v2.csv") == [("scope", "missing_column"), ("customers", "accepted")]
    assert q(data, "SELECT count(*) FROM customers") == [(3,)]
    assert paid(data) == {"B1": 50_000, "V1": 50_000, "V2": 50_000}
    # found by review: explain still listed it as scope evidence refused whole
    assert "could not be read at all" not in explain(data, "V1")


def test_a_returns_file_refused_among_the_claims_is_applied_once_moved_to_returns(data):
    run(data, 1)
    payment = q(data, "SELECT payment_id FROM ledger WHERE customer_id = 'B1'")[0][0]
    (data / "inbox" / "claims" / "bank_results.csv").write_text(f"payment_id,status,reason\n{payment},returned,closed\n")
    run(data, 2)
    assert recorded(data, "bank_results.csv") == [("claims", "missing_column")]
    assert q(data, "SELECT status FROM ledger WHERE payment_id = ?", [payment]) == [("issued",)]
    move(data, "claims", "bank_results.csv", "returns")
    third = run(data, 3)
    assert recorded(data, "bank_results.csv") == [("claims", "missing_column"), ("returns", "accepted")]
    assert third["returns"]["files"][0]["payments_applied"] == 1
    # returned, and reissued once with the next attempt
    assert q(data, "SELECT attempt, rail, status, amount FROM ledger WHERE customer_id = 'B1' ORDER BY attempt") == [
        (1, "bank_transfer", "returned", 50_000), (2, "bank_transfer", "issued", 50_000)]


def test_a_file_refused_for_its_name_is_read_once_renamed_as_the_refusal_says(data):
    """Found by review: a scope file named `.parq` (or `.txt`, or with no suffix) is
    refused for its name, its content never read; renamed `.csv` as the refusal asks, it
    was passed over as a duplicate for ever, its people unpaid. Content met only under a
    name no format reads does not count as seen (redress/inbox/new_files.py): the
    renamed file is read, once; the same bytes under a third name are then a duplicate.
    `.txt` and no suffix are the same case: tests/inbox/test_ingest_reading.py format_of."""
    refused_as = "scope_revision.parq"
    (data / "inbox" / "scope" / refused_as).write_text(REVISION)
    run(data, 1)
    assert recorded(data, refused_as) == [("scope", "unreadable_file")]
    (reason,), = q(data, "SELECT reason FROM ingested_files WHERE file_name = ?", [refused_as])
    assert reason.startswith("unknown file type")
    assert paid(data) == {"B1": 50_000}
    assert "could not be read at all" in explain(data, "V1")
    move(data, "scope", refused_as, "scope", "scope_revision.csv")
    second = run(data, 2)
    assert [(f["file_name"], f["status"], f["rows_read"]) for f in second["ingest"]["files"]] == [
        ("scope_revision.csv", "accepted", 2)]
    assert paid(data) == {"B1": 50_000, "V1": 50_000}
    assert "could not be read at all" not in explain(data, "V1")  # read after all
    # now read, the content is seen: under another name, readable or not, a duplicate
    for again in ("again.csv", "again.parq"):
        shutil.copy2(data / "inbox" / "scope" / "scope_revision.csv", data / "inbox" / "scope" / again)
    run(data, 3)
    assert recorded(data, "again.csv") == recorded(data, "again.parq") == [("scope", "duplicate_file")]
    assert paid(data) == {"B1": 50_000, "V1": 50_000}


def test_the_same_bytes_under_a_bad_and_a_good_name_in_one_run_are_read_once(data):
    """Both names dropped together, the bad one read first (older): it is refused for its
    name, and the other is read, not taken for its duplicate. Read in the other order,
    the bad name is the duplicate of what was read."""
    for name, age in (("a_revision.cvs", 60), ("a_revision.csv", 0), ("z_revision.csv.bak", 0)):
        (data / "inbox" / "scope" / name).write_text(REVISION)
        os.utime(data / "inbox" / "scope" / name, (1_700_000_000 - age, 1_700_000_000 - age))
    run(data, 1)
    assert q(data, "SELECT file_name, status, rows_read FROM ingested_files WHERE file_name LIKE '%revision%' "
                   "ORDER BY file_name") == [("a_revision.csv", "accepted", 2), ("a_revision.cvs", "unreadable_file", None),
                                             ("z_revision.csv.bak", "duplicate_file", None)]
    assert paid(data) == {"B1": 50_000, "V1": 50_000}


def test_a_file_refused_as_the_wrong_format_is_read_once_renamed_to_its_own(data, tmp_path):
    """Found by the next review: a Parquet file named `.csv` is refused as no UTF-8 text;
    renamed `.parquet` it was passed over as a duplicate for ever. Content refused as
    unreadable under one format's name is read under another's; under a name of the
    same format again it is a duplicate."""
    import polars as pl

    pl.read_csv(REVISION.encode(), infer_schema=False).write_parquet(tmp_path / "revision.parquet")
    parquet = (tmp_path / "revision.parquet").read_bytes()
    (data / "inbox" / "scope" / "scope_revision.csv").write_bytes(parquet)
    run(data, 1)
    assert recorded(data, "scope_revision.csv") == [("scope", "unreadable_file")]
    (data / "inbox" / "scope" / "scope_revision_copy.csv").write_bytes(parquet)  # the same format again
    move(data, "scope", "scope_revision.csv", "scope", "scope_revision.parquet")
    second = run(data, 2)
    assert sorted((f["file_name"], f["status"], f["rows_read"]) for f in second["ingest"]["files"]) == [
        ("scope_revision.parquet", "accepted", 2), ("scope_revision_copy.csv", "duplicate_file", None)]
    assert paid(data) == {"B1": 50_000, "V1": 50_000}
