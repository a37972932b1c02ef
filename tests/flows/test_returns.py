"""Returns from finance, reissue, claim after max_attempts, and spreadsheet-safe files
(issue 4)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.remediation import remediation
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

CUSTOMERS = """customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account
B1,=HYPERLINK("x"),b1@example.com,010-2000-0001,active,2020-01-01,,false,bank_transfer,004,1234567890
B2,+Plus,b2@example.com,010-2000-0002,active,2020-01-01,,false,bank_transfer,088,2234567890
V1,-Minus,v1@example.com,010-2000-0003,active,2020-01-01,,false,,,
=V2,@At,v2@example.com,010-2000-0004,active,2020-01-01,,false,,,
"""
SCOPE = """customer_id,email,phone,data_category,accessed_at,confidence,source
B1,,,name,2025-07-01,,log
B2,,,name,2025-07-01,,log
V1,,,name,2025-07-01,,log
=V2,,,name,2025-07-01,,log
"""


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The four customers paid by a first run, once for the module."""
    data = tmp_path_factory.mktemp("returns") / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    (data / "inbox" / "scope" / "scope.csv").write_text(SCOPE)
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    return data


@pytest.fixture()
def paid_once(first_run, tmp_path):
    """A copy of the first run's data folder for one test to change."""
    data = tmp_path / "data"
    shutil.copytree(first_run, data)
    return data


def payment_of(data: Path, customer: str, status: str = "issued") -> str:
    return q(data, "SELECT payment_id FROM ledger WHERE customer_id = ? AND status = ? ORDER BY payment_id DESC",
             [customer, status])[0][0]


def drop_returns(data: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    lines = ["payment_id,status,reason"] + [",".join(r) for r in rows]
    (data / "inbox" / "returns" / name).write_text("\n".join(lines) + "\n")


def run(data: Path, day: int) -> dict:
    return remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, day))


def test_returned_transfer_is_reissued_then_held_as_claim_after_max_attempts(paid_once):
    data = paid_once
    for attempt, day in ((1, 2), (2, 3), (3, 4)):
        drop_returns(data, f"returns_{day}.csv", [(payment_of(data, "B1"), "returned", "account closed")])
        summary = run(data, day)
        assert summary["returns"]["files"][0]["payments_applied"] == 1
        rails = q(data, "SELECT attempt, rail, status FROM ledger WHERE customer_id = 'B1' ORDER BY attempt")
        if attempt < 3:
            assert rails[-1] == (attempt + 1, "bank_transfer", "issued")
        else:
            # returned max_attempts (3) times: held for the customer to claim
            assert rails[-1] == (4, "claim", "issued")
    assert q(data, "SELECT sum(amount) FROM ledger WHERE customer_id = 'B1' AND status IN ('issued', 'settled')") == [(50000,)]
    assert q(data, "SELECT count(*) FROM ledger WHERE customer_id = 'B1' AND status = 'returned'") == [(3,)]
    # finance's reconciliation after the last run: every won of the ledger accounted for
    last_run = q(data, "SELECT max(run_id) FROM runs")[0][0]
    rec = pl.read_csv(data / "reports" / last_run / "reconciliation.csv")
    total = rec.filter(pl.col("rail") == "TOTAL").row(0, named=True)
    assert total["returned"] == 3 * 50000
    assert total["held"] == 50000 and total["claimed"] == total["unclaimed"] == 0  # held, not paid out
    assert sum(total[c] for c in ("issued", "settled", "returned", "held", "claimed", "unclaimed")) == q(data, "SELECT sum(amount) FROM ledger")[0][0]
    assert total["outstanding"] == 0 and total["overpaid"] == 0
    # customer service sees the whole history, with the bank's reason
    from redress.customer_service.explain import explain

    text = explain(data, "B1")
    assert text.count("returned") >= 3 and "account closed" in text and "claim" in text
    # the master still says bank transfer; explain says how it goes now (found by review: it
    # said "paid into the customer's registered bank account" beside the held payment)
    assert "How it is paid: held until the customer claims it with the reference code. Bank transfers to this " \
           "person came back unpaid 3 times (the policy stops after 3), so the money is held. To claim" in text
    assert "registered bank account" not in text


def test_bad_returns_rows_are_quarantined_never_applied(paid_once):
    data = paid_once
    b2 = payment_of(data, "B2")
    v1 = payment_of(data, "V1")
    drop_returns(data, "returns_a.csv", [(v1, "settled", "")])
    run(data, 2)
    drop_returns(data, "returns_b.csv", [
        ("20991231-B9999-000001", "returned", "no such payment"),   # unknown payment_id
        (v1, "returned", "too late"),                                # settled payment returned
        (b2, "bounced", ""),                                         # malformed status
        ("", "returned", ""),                                        # no payment_id
    ])
    summary = run(data, 3)
    assert summary["returns"]["files"][0]["payments_applied"] == 0
    reasons = sorted(r for (r,) in q(data, "SELECT reason FROM quarantine WHERE kind = 'returns'"))
    assert reasons == sorted(["unknown_payment_id", "returned_after_settled", "invalid_status", "missing_payment_id"])
    assert q(data, "SELECT status FROM ledger WHERE payment_id = ?", [v1]) == [("settled",)]
    assert q(data, "SELECT status FROM ledger WHERE payment_id = ?", [b2]) == [("issued",)]
    assert summary["disburse"]["payments"] == 0


def test_payment_files_are_spreadsheet_safe(paid_once):
    data = paid_once
    cells = []
    for path in sorted((data / "outbox").rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            cells += [c for row in csv.reader(fh) for c in row]
    assert "'=V2" in cells
    # a formula-like cell is prefixed; a plain number (an E.164 phone) is left as written
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.fullmatch(r"[+-]?[0-9]+", c)]
    assert "+821020000001" in cells and "'+821020000001" not in cells


def test_a_result_after_a_return_is_quarantined_and_the_person_is_paid_once(paid_once):
    data = paid_once
    first = payment_of(data, "B1")
    drop_returns(data, "returns_2.csv", [(first, "returned", "account closed")])
    assert run(data, 2)["disburse"]["payments"] == 1  # the reissue
    second = payment_of(data, "B1")
    assert second != first
    # the bank's late, contradictory result for the first payment, and the reissue settled
    drop_returns(data, "returns_3.csv", [(first, "settled", "late confirmation"), (second, "settled", "")])
    summary = run(data, 3)
    assert {k: summary["returns"]["files"][0][k] for k in ("payments_applied", "already_settled", "rows_quarantined")} == {
        "payments_applied": 1, "already_settled": 0, "rows_quarantined": 1}
    assert q(data, "SELECT reason, row_number FROM quarantine WHERE kind = 'returns'") == [("result_after_return", 1)]
    assert q(data, "SELECT payment_id, status FROM ledger WHERE customer_id = 'B1' ORDER BY attempt") == [
        (first, "returned"), (second, "settled")]
    assert q(data, "SELECT sum(amount) FROM ledger WHERE customer_id = 'B1' AND status IN ('issued', 'settled')") == [
        (50000,)]
    assert summary["disburse"]["payments"] == 0
    # the bank resends the settlement: nothing moves, nothing is quarantined, it is counted
    drop_returns(data, "returns_4.csv", [(second, "settled", "resent")])
    summary = run(data, 4)
    assert {k: summary["returns"]["files"][0][k] for k in ("payments_applied", "already_settled", "rows_quarantined")} == {
        "payments_applied": 0, "already_settled": 1, "rows_quarantined": 0}
    assert q(data, "SELECT count(*) FROM quarantine WHERE kind = 'returns'") == [(1,)]
    assert q(data, "SELECT status FROM ledger WHERE payment_id = ?", [second]) == [("settled",)]


def test_a_malformed_returns_row_is_quarantined_alone_and_the_file_applied(paid_once):
    """SPEC "Input: returns from finance": a malformed row is quarantined, never applied;
    the file's other rows are. A CSV row with more fields than the header (an unquoted
    comma in the reason) and a JSON Lines line that is no object are malformed."""
    data = paid_once
    b1, b2, v1 = payment_of(data, "B1"), payment_of(data, "B2"), payment_of(data, "V1")
    (data / "inbox" / "returns" / "returns_2.csv").write_text(
        "payment_id,status,reason\n"
        f"{b1},returned,account closed\n"
        f"{b2},returned,closed, no such account\n")   # four fields: malformed
    (data / "inbox" / "returns" / "returns_2b.jsonl").write_text(
        f'{{"payment_id": "{v1}", "status": "settled"}}\n'
        f'["{b2}", "settled"]\n')                       # not an object: malformed
    summary = run(data, 2)
    files = {f["file_name"]: f for f in summary["returns"]["files"]}
    assert {n: (f["status"], f["payments_applied"], f["rows_quarantined"]) for n, f in files.items()} == {
        "returns_2.csv": ("accepted", 1, 1), "returns_2b.jsonl": ("accepted", 1, 1)}
    assert q(data, "SELECT file_name, row_number, reason, json_extract_string(row_json, '$.malformed') FROM quarantine "
                   "WHERE kind = 'returns' ORDER BY file_name") == [
        ("returns_2.csv", 2, "malformed_row", "more fields than the header (quote values that contain commas)"),
        ("returns_2b.jsonl", 2, "malformed_row", "the line is not a JSON object")]
    assert q(data, "SELECT payment_id, status FROM ledger WHERE payment_id IN (?, ?, ?) ORDER BY payment_id",
             [b1, b2, v1]) == sorted([(b1, "returned"), (b2, "issued"), (v1, "settled")])
    assert summary["disburse"]["payments"] == 1  # B1's reissue; B2 stays issued, never touched
    # finance reconciles each file from the run's summary (found by review: only a run total was shown)
    page = (data / "reports" / summary["run_id"] / "summary.md").read_text(encoding="utf-8")
    (b1_krw, v1_krw), = q(data, "SELECT sum(amount) FILTER (payment_id = ?), sum(amount) FILTER (payment_id = ?) "
                                "FROM ledger WHERE attempt = 1", [b1, v1])
    assert f"| returns_2.csv | accepted | 2 | 1 | {b1_krw:,} | 0 | 0 | 1 | 0 |" in page
    assert f"| returns_2b.jsonl | accepted | 2 | 1 | 0 | {v1_krw:,} | 0 | 1 | 0 |" in page
    # the row as written, and nothing named from it: its names may be misplaced
    assert [json.loads(r) for (r,) in q(data, "SELECT row_json FROM quarantine WHERE kind = 'returns' "
                                              "ORDER BY file_name")] == [
        {"payment_id": None, "status": None, "reason": None,
         "malformed": "more fields than the header (quote values that contain commas)",
         "as_written": f"{b2},returned,closed, no such account"},
        {"payment_id": None, "status": None, "reason": None, "malformed": "the line is not a JSON object",
         "as_written": f'["{b2}", "settled"]'}]


def test_a_malformed_returns_row_under_a_header_in_another_order_names_no_wrong_payment(paid_once):
    """Found by review: with `status,reason,payment_id`, an unquoted comma in the reason put
    "no account" under payment_id in quarantine, and the real id nowhere."""
    data = paid_once
    b1, b2 = payment_of(data, "B1"), payment_of(data, "B2")
    (data / "inbox" / "returns" / "r.csv").write_text(
        f"status,reason,payment_id\nreturned,closed, no account,{b1}\nsettled,,{b2}\n")
    summary = run(data, 2)
    assert summary["returns"]["files"][0]["payments_applied"] == 1
    (row,), = q(data, "SELECT row_json FROM quarantine WHERE kind = 'returns' AND reason = 'malformed_row'")
    assert json.loads(row)["payment_id"] is None and json.loads(row)["as_written"] == f"returned,closed, no account,{b1}"
    assert q(data, "SELECT status FROM ledger WHERE payment_id IN (?, ?) ORDER BY payment_id = ?", [b1, b2, b2]) == [
        ("issued",), ("settled",)]


def test_a_returns_row_with_a_stray_quote_is_quarantined_alone_and_the_file_applied(paid_once):
    """Found as left open by review: a stray quote (`P1,returned,"acct" closed`) refused the
    whole file, so finance's other results waited for a resend. Now that row alone is
    malformed (kept as written, nothing named from it), the file's other rows are
    applied, and a quote inside a value (`5" rain`) is read as written."""
    data = paid_once
    b1, b2, v1 = payment_of(data, "B1"), payment_of(data, "B2"), payment_of(data, "V1")
    (data / "inbox" / "returns" / "returns_2.csv").write_text(
        "payment_id,status,reason\n"
        f"{b1},returned,account closed\n"
        f"{b2},returned,\"acct\" closed\n"     # a stray quote: malformed
        f"{v1},settled,\"paid, per bank\"\n"
        f"{b1},returned,5\" rain\n")             # a quote inside a value: read as written, then repeated
    summary = run(data, 2)
    (f,) = summary["returns"]["files"]
    assert (f["status"], f["payments_applied"], f["rows_quarantined"]) == ("accepted", 1, 3)
    # in money: the voucher settled; B1, still issued, waits on its quarantined rows (B2's
    # malformed row is trusted for nothing, its payment id neither)
    (b1_krw, b2_krw, v1_krw), = q(data, "SELECT sum(amount) FILTER (payment_id = ?), sum(amount) FILTER (payment_id = ?), "
                                        "sum(amount) FILTER (payment_id = ?) FROM ledger", [b1, b2, v1])
    assert (f["returned_krw"], f["settled_krw"], f["not_applied_krw"]) == (0, v1_krw, b1_krw) and b2_krw > 0
    page = (data / "reports" / summary["run_id"] / "summary.md").read_text(encoding="utf-8")
    assert (f"| returns_2.csv | accepted | 4 | 1 | 0 | {v1_krw:,} | 0 | 3 | {b1_krw:,} |") in page
    assert q(data, "SELECT row_number, reason, json_extract_string(row_json, '$.reason') FROM quarantine "
                   "WHERE kind = 'returns' ORDER BY row_number") == [
        (1, "repeated_payment_id", "account closed"), (2, "malformed_row", None),
        (4, "repeated_payment_id", '5" rain')]
    (row,), = q(data, "SELECT row_json FROM quarantine WHERE kind = 'returns' AND reason = 'malformed_row'")
    assert json.loads(row) == {
        "payment_id": None, "status": None, "reason": None,
        "malformed": 'a stray " (text after a closing quote, or a quote never closed): quote the whole value and '
                     'double each " inside it (5" rain as "5"" rain")',
        "as_written": f'{b2},returned,"acct" closed'}
    assert q(data, "SELECT payment_id, status FROM ledger WHERE payment_id IN (?, ?, ?) ORDER BY payment_id",
             [b1, b2, v1]) == sorted([(b1, "issued"), (b2, "issued"), (v1, "settled")])


def test_a_top_up_after_a_chain_that_settled_is_its_own_first_sending(paid_once, tmp_path):
    """Found by review: B1's transfer came back twice, the third sending settled; a scope
    revision then gave B1 a top-up, which took attempt 3 and, returned once, went to
    claim, with explain saying the money came back 3 times. Through real runs: the top-up
    is attempt 1, and returned once it is reissued by transfer as attempt 2."""
    from redress.customer_service.explain import explain

    data = paid_once
    for day, status in ((2, "returned"), (3, "returned"), (4, "settled")):
        drop_returns(data, f"returns_{day}.csv", [(payment_of(data, "B1"), status, "bank")])
        run(data, day)
    policy = tmp_path / "higher.toml"  # the tier raised: a 20,000 top-up for everyone paid
    policy.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("1 = 50000", "1 = 70000")
                      .replace('id = "coupang-2025-v1"', 'id = "coupang-2025-v2"'), encoding="utf-8")
    remediation(data_dir=data, policy_path=policy, run_date=date(2025, 12, 5))
    top_up = payment_of(data, "B1")
    assert q(data, "SELECT amount, rail, attempt FROM ledger WHERE payment_id = ?", [top_up]) == [
        (20000, "bank_transfer", 1)]
    drop_returns(data, "returns_6.csv", [(top_up, "returned", "bank")])
    remediation(data_dir=data, policy_path=policy, run_date=date(2025, 12, 6))
    assert q(data, "SELECT amount, rail, attempt, status FROM ledger WHERE customer_id = 'B1' ORDER BY payment_id") == [
        (50000, "bank_transfer", 1, "returned"), (50000, "bank_transfer", 2, "returned"),
        (50000, "bank_transfer", 3, "settled"), (20000, "bank_transfer", 1, "returned"),
        (20000, "bank_transfer", 2, "issued")]
    text = explain(data, "B1")
    assert "held" not in text.split("How it is paid:")[1].split("\n")[0]
