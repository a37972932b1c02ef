"""A customers snapshot holding one value an output cannot carry (issue 8): rejected
whole at the door with the row's reason, while the previous snapshot keeps paying on
every rail, the bank file included."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.remediation import remediation
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

HEADER = "customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account\n"
GOOD = (
    "B1,Kim,b1@example.com,010-4000-0001,active,2020-01-01,,false,bank_transfer,004,1234567890\n"
    "B2,Lee,b2@example.com,010-4000-0002,active,2020-01-01,,false,bank_transfer,088,2234567890\n"
    "V1,Park,v1@example.com,010-4000-0003,active,2020-01-01,,false,,,\n"
)
BAD = (  # the rows of the revised snapshot after the good ones, with their reasons
    ("B3\x01,Choi,b3@example.com,,active,2020-01-01,,false,bank_transfer,004,3234567890\n", "unprintable_customer_id"),
    ("B" * 141 + ",Jung,b4@example.com,,active,2020-01-01,,false,bank_transfer,004,4234567890\n",
     "customer_id_too_long"),
    ("V2,Kang,v2\u202e@example.com,,active,2020-01-01,,false,,,\n", "unprintable_email"),
)
SCOPE = "customer_id,email,phone,data_category,accessed_at,confidence,source\n"


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def new_folder(tmp_path: Path) -> Path:
    """A data folder with empty customers and scope inboxes."""
    data = tmp_path / "data"
    for kind in ("customers", "scope"):
        (data / "inbox" / kind).mkdir(parents=True)
    return data


def drop(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    later = time.time() + len(list(path.parent.iterdir()))  # read after what came before
    os.utime(path, (later, later))


@pytest.fixture(scope="module")
def revised(tmp_path_factory):
    data = tmp_path_factory.mktemp("snapshot") / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    drop(data / "inbox" / "customers" / "customers_1.csv", HEADER + GOOD)
    drop(data / "inbox" / "scope" / "scope_1.csv", SCOPE + "B1,,,name,2025-07-01,,log\n")
    first = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    drop(data / "inbox" / "customers" / "customers_2.csv", HEADER + GOOD + "".join(row for row, _ in BAD))
    # the bad rows are exposed too: accepted, their bank transfers would break the bank file
    exposed = "".join(f"{row.split(',')[0]},,,name,2025-07-01,,log\n" for row, _ in BAD)
    drop(data / "inbox" / "scope" / "scope_2.csv",
         SCOPE + "B2,,,name,2025-07-01,,log\nV1,,,name,2025-07-01,,log\n" + exposed)
    second = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    return data, first, second


def test_the_snapshot_is_rejected_whole_with_each_rows_reason(revised):
    data, _, _ = revised
    assert q(data, "SELECT file_name, status FROM ingested_files WHERE kind = 'customers' ORDER BY file_name") == [
        ("customers_1.csv", "accepted"), ("customers_2.csv", "rejected")]
    rows = q(data, "SELECT row_number, reason FROM quarantine WHERE kind = 'customers' ORDER BY row_number")
    assert rows == [(len(GOOD.splitlines()) + n, reason) for n, (_, reason) in enumerate(BAD, start=1)] + [
        (None, "rejected_file")]


def test_the_previous_snapshot_stays_current_and_keeps_paying(revised):
    data, first, second = revised
    assert q(data, "SELECT count(*), count(DISTINCT file_sha256) FROM customers") == [(3, 1)]
    assert q(data, "SELECT customer_id, amount, rail FROM ledger ORDER BY customer_id") == [
        ("B1", 50000, "bank_transfer"), ("B2", 50000, "bank_transfer"), ("V1", 50000, "voucher")]
    assert second["disburse"]["payments"] == 2
    # the bank file of the second run was written, with B2 as the creditor
    [(batch,)] = q(data, "SELECT DISTINCT batch_id FROM ledger WHERE customer_id = 'B2'")
    xml = (data / "outbox" / "batches" / batch / "pain.001.xml").read_text(encoding="utf-8")
    assert "<Nm>B2</Nm>" in xml and "B3" not in xml
    # their exposures name customers the current snapshot does not have
    assert q(data, "SELECT reason, count(*) FROM quarantine WHERE kind = 'scope' GROUP BY ALL") == [
        ("unknown_customer_id", len(BAD))]


def test_an_earlier_snapshot_dropped_again_says_how_to_make_it_current(tmp_path):
    """Found by review: a bad snapshot (B1 marked a test account) undone by dropping the
    one before it again was a duplicate_file (SPEC: content seen before is skipped), the
    bad one staying current with no word why. The reason names the earlier file and how
    to make it current again; a copy saved anew (a line added at its end) is read and
    becomes the master."""
    data = new_folder(tmp_path)
    drop(data / "inbox" / "customers" / "snap-a.csv", HEADER + GOOD)
    drop(data / "inbox" / "scope" / "scope_1.csv", SCOPE + "B1,,,name,2025-07-01,,log\n")
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    drop(data / "inbox" / "customers" / "snap-b.csv",
         HEADER + GOOD.replace(",false,bank_transfer,004,", ",true,bank_transfer,004,"))
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    drop(data / "inbox" / "customers" / "snap-revert.csv", HEADER + GOOD)
    drop(data / "inbox" / "customers" / "snap-revert-too.csv", HEADER + GOOD)
    drop(data / "inbox" / "customers" / "snap-bad.csv", HEADER + GOOD + GOOD)  # B1 twice: rejected
    drop(data / "inbox" / "customers" / "snap-bad-again.csv", HEADER + GOOD + GOOD)
    third = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 3))
    hint = ("same content as snap-a.csv (accepted), seen before; a snapshot is read once, so to make it current "
            "again drop a copy saved anew (any change of its bytes: a re-export, a line added at the end)")
    assert q(data, "SELECT file_name, status, reason FROM ingested_files WHERE run_id = ? ORDER BY file_name",
             [third["run_id"]]) == [
        ("snap-bad-again.csv", "duplicate_file", "same content as snap-bad.csv (rejected), seen before"),
        ("snap-bad.csv", "rejected", "6 failure(s): duplicate_customer_id"),
        ("snap-revert-too.csv", "duplicate_file", hint),
        ("snap-revert.csv", "duplicate_file", hint)]
    # said where the person who dropped it looks: the run's summary
    summary = (data / "reports" / third["run_id"] / "summary.md").read_text(encoding="utf-8")
    assert "| customers | snap-revert.csv | duplicate_file: same content as snap-a.csv (accepted)" in summary
    assert q(data, "SELECT is_test FROM customers WHERE customer_id = 'B1'") == [(True,)]
    drop(data / "inbox" / "customers" / "snap-revert-2.csv", HEADER + GOOD + "\n")
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 4))
    assert q(data, "SELECT status FROM ingested_files WHERE file_name = 'snap-revert-2.csv'") == [("accepted",)]
    assert q(data, "SELECT is_test FROM customers WHERE customer_id = 'B1'") == [(False,)]


def test_transfers_to_an_account_a_later_snapshot_changed_are_shown_to_finance(tmp_path):
    """Found by the security review: the ledger keeps no account, so a snapshot giving
    B2, not yet paid, another account (what a master changed by someone other than the
    customer looks like) was paid with nothing said. The run says how many transfers
    and how much go to an account that replaced an earlier one, with no person or
    account named; a transfer to an account the customer had all along is not counted."""
    data = new_folder(tmp_path)
    drop(data / "inbox" / "customers" / "customers_1.csv", HEADER + GOOD)
    drop(data / "inbox" / "scope" / "scope_1.csv", SCOPE + "V1,,,name,2025-07-01,,log\n")
    first = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    assert (first["disburse"]["changed_payees"], first["disburse"]["changed_krw"]) == (0, 0)
    drop(data / "inbox" / "customers" / "customers_2.csv", HEADER + GOOD.replace(",088,2234567890", ",020,9999999999"))
    drop(data / "inbox" / "scope" / "scope_2.csv",
         SCOPE + "B2,,,name,2025-07-01,,log\nB1,,,name,2025-07-01,,log\n")
    second = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert q(data, "SELECT customer_id, bank_code, bank_account FROM former_bank_accounts") == [
        ("B2", "088", "2234567890")]
    # B1 is paid too, to the account it has had all along: not counted
    assert q(data, "SELECT customer_id, amount, rail FROM ledger WHERE run_id = ? ORDER BY 1", [second["run_id"]]) == [
        ("B1", 50000, "bank_transfer"), ("B2", 50000, "bank_transfer")]
    assert (second["disburse"]["changed_payees"], second["disburse"]["changed_krw"]) == (1, 50000)
    page = (data / "reports" / second["run_id"] / "summary.md").read_text(encoding="utf-8")
    assert ("**Bank accounts changed since an earlier customers snapshot**: 1 of this run's bank transfers, "
            "50,000 KRW, go to customers whose bank account in the customer master replaced another") in page
    assert "B2" not in page and "9999999999" not in page and "2234567890" not in page


def test_a_later_run_on_the_same_day_counts_the_bank_cash_earlier_runs_released(tmp_path):
    """Found by the mutation review: nothing failed when disburse ignored the bank cash
    earlier runs had released on a value date (tasks/disburse.py `released`); the gate
    then stopped the run at day_over_cash_cap and nobody was paid. Under a cap of 80,000
    a day, B1's 50,000 goes out on 2025-12-01; B2, found later that day, is dated the 2nd."""
    policy = tmp_path / "capped.toml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("daily_cash_cap   = 20000000000") == 1
    policy.write_text(text.replace("daily_cash_cap   = 20000000000", "daily_cash_cap   = 80000")
                      .replace('id = "coupang-2025-v1"', 'id = "capped-test"'), encoding="utf-8")
    data = new_folder(tmp_path)
    drop(data / "inbox" / "customers" / "customers_1.csv", HEADER + GOOD)
    drop(data / "inbox" / "scope" / "scope_1.csv", SCOPE + "B1,,,name,2025-07-01,,log\n")
    remediation(data_dir=data, policy_path=policy, run_date=date(2025, 12, 1))
    drop(data / "inbox" / "scope" / "scope_2.csv", SCOPE + "B2,,,name,2025-07-01,,log\n")
    remediation(data_dir=data, policy_path=policy, run_date=date(2025, 12, 1))
    assert q(data, "SELECT l.customer_id, b.value_date FROM ledger l JOIN batches b USING (batch_id) ORDER BY 1") == [
        ("B1", date(2025, 12, 1)), ("B2", date(2025, 12, 2))]
