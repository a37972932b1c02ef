"""redress/checks/returns_checks.py: finance's returns rules in SQL for Great Expectations
(returns_staging and its suite). Every warehouse lives in tmp_path."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from redress import inbox as io
from redress.checks.returns_checks import RETURN_RULES, create_returns_staging
from redress.checks.suites import failing_rows, validate_table
from redress.warehouse import connect

LEDGER = [("P1", "issued"), ("P2", "settled"), ("P3", "returned"), ("P4", "issued"), ("P5", "issued"),
          ("P6", "issued"), ("P7", "cancelled"), ("P8", "issued"), ("V1", "issued"), ("P10", "issued"),
          ("P11", "issued"), ("P12", "issued")]
# bank_transfer unless named: P7 a held claim payment a claim replaced, P8 one still held.
RAILS = {"P7": "claim", "P8": "claim", "V1": "voucher"}

RETURN_ROWS = [  # (payment_id, status, reason) as finance writes them; the expected reason
    (("P1", "settled", ""), None),
    (("P4", "returned", "account closed"), None),
    (("P2", "settled", "resent"), None),  # agrees with the ledger: counted, not quarantined
    ((" P3 ", "returned", "again"), "result_after_return"),
    (("P3", "settled", "late"), "result_after_return"),
    (("P7", "settled", ""), "result_after_cancel"),
    (("P8", "settled", ""), "result_for_unsent_payment"),  # held on claim: sent nowhere
    (("P8", "returned", "closed"), "result_for_unsent_payment"),
    (("V1", "settled", "credited"), None),  # the voucher system's result: applied
    (("P2", "returned", "late"), "returned_after_settled"),
    (("P9", "settled", ""), "unknown_payment_id"),
    (("P1", "Settled", ""), "invalid_status"),
    (("P9", "", ""), "invalid_status"),
    (("", "returned", ""), "missing_payment_id"),
    (("", "bogus", ""), "missing_payment_id"),
    (("P5", "returned", "closed"), "repeated_payment_id"),
    (("P5", "settled", ""), "repeated_payment_id"),
    # a line sent twice: the first applies, the copy does not (found by review: neither did)
    (("P6", "returned", ""), None),
    (("P6", "returned", ""), "repeated_payment_id"),
    # an unquoted comma in the reason: four fields under a header of three. Its values
    # may sit under the wrong names, so it is quarantined alone; the file is applied.
    (("P10", "returned", "account closed", " no such account"), "malformed_row"),
    (("P11", "settled", "", "", ""), None),  # empty fields past the header: no value lost
    # a valid row, and a malformed one naming the same payment: which finance meant is a
    # guess, so neither applies
    (("P12", "settled", ""), "repeated_payment_id"),
    (("P12", "returned", "closed", " no such account"), "malformed_row"),
]


def returns_warehouse(tmp_path: Path, rows: list[tuple], *, header: str = "payment_id,status,reason") -> Path:
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        for payment_id, status in LEDGER:
            con.execute(
                "INSERT INTO ledger VALUES (?, 'c1', 50000, 'KRW', ?, 'B1', 'pol', 'R1', 1, ?, NULL, 'R1')",
                [payment_id, RAILS.get(payment_id, "bank_transfer"), status],
            )
    csv = tmp_path / "returns.csv"
    csv.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    staged = io.stage(io.returns_frame(csv), tmp_path / "returns.parquet")
    assert staged == len(rows)
    with connect(path) as con:
        create_returns_staging(con, tmp_path / "returns.parquet")
    return path


def test_returns_staging_has_the_columns_finance_gave_trimmed(tmp_path):
    path = returns_warehouse(tmp_path, [r for r, _ in RETURN_ROWS])
    with connect(path, read_only=True) as con:
        staged = con.sql("SELECT * FROM returns_staging ORDER BY row_number").pl()
    assert staged.schema["row_number"] == pl.Int64
    assert staged.select("payment_id", "status", "reason").row(3) == ("P3", "returned", "again")
    assert staged.row(0, named=True)["reason"] is None
    # only the repeated settled of a settled payment is already applied
    assert staged.filter("already_applied")["row_number"].to_list() == [3]
    assert staged["ledger_status"].to_list()[:4] == ["issued", "issued", "settled", "returned"]


def test_a_returns_file_path_is_bound_not_spliced_into_sql(tmp_path):
    odd = tmp_path / "it's a folder"
    odd.mkdir()
    path = returns_warehouse(odd, [("P1", "settled", "")])
    with connect(path, read_only=True) as con:
        assert con.execute("SELECT payment_id, payment_unknown FROM returns_staging").fetchall() == [("P1", False)]


def test_each_bad_returns_row_is_reported_once_with_its_reason(tmp_path):
    path = returns_warehouse(tmp_path, [r for r, _ in RETURN_ROWS])
    rows = failing_rows(path, "returns_staging", "returns_staging")
    expected = [(n, reason) for n, (_, reason) in enumerate(RETURN_ROWS, start=1) if reason]
    assert rows.rows() == expected
    reasons = {e.reason for e in validate_table(path, "returns_staging", "returns_staging").results}
    assert reasons == {"missing_column", *RETURN_RULES.values()}


def test_a_clean_returns_file_passes(tmp_path):
    path = returns_warehouse(tmp_path, [r for r, reason in RETURN_ROWS if reason is None])
    assert validate_table(path, "returns_staging", "returns_staging").success


def test_a_returns_table_without_a_rule_column_fails_as_missing_column(tmp_path):
    path = returns_warehouse(tmp_path, [("P1", "settled", "")])
    with connect(path) as con:
        con.execute("ALTER TABLE returns_staging DROP COLUMN payment_unknown")
    result = validate_table(path, "returns_staging", "returns_staging")
    assert {e.reason for e in result.failed} == {"missing_column", "unknown_payment_id"}


def staged_returns(tmp_path: Path, name: str, text: str) -> Path:
    """returns_warehouse's ledger, and `text` as a returns file `name` (any format)."""
    path = returns_warehouse(tmp_path, [("P1", "settled", "")])
    (tmp_path / name).write_text(text, encoding="utf-8")
    io.stage(io.returns_frame(tmp_path / name, tmp_path / "work"), tmp_path / "returns.parquet")
    with connect(path) as con:
        create_returns_staging(con, tmp_path / "returns.parquet")
    return path


@pytest.mark.parametrize("name, text", [
    # a header in another order: the malformed row's payment_id column holds " no acct"
    ("r.csv", "reason,payment_id,status\nclosed, no acct,P4,returned\n,P4,settled\n"),
    # the key that names the payment given twice: the line keeps no payment_id
    ("r.jsonl", '{"payment_id": "P4", "payment_id": "x", "status": "returned"}\n{"payment_id": "P4", "status": "settled"}\n'),
    # a line that is no object
    ("r.jsonl", '["P4", "returned"]\n{"payment_id": "P4", "status": "settled"}\n'),
    # a key only like `status` (or `payment_id`) beside lines naming it exactly: that line alone is malformed
    ("r.jsonl", '{"payment_id": "P4", "Status": "returned"}\n{"payment_id": "P4", "status": "settled"}\n'),
    ("r.jsonl", '{"Payment_ID": "P4", "status": "returned"}\n{"payment_id": "P4", "status": "settled"}\n'),
    # a quote left open takes the next line into a value: that row is malformed, and names P4
    ("r.csv", 'payment_id,status,reason\nP1,returned,"closed\nP4,returned,no account"\nP4,settled,\n'),
    # a stray quote: the row alone is malformed, and names P4 as written
    ("r.csv", 'payment_id,status,reason\nP4,returned,"acct" 5 closed\nP4,settled,\n'),
    ("r.csv", 'payment_id,status,reason\nP4,returned,"closed" twice\nP4,settled,\n'),
    ("r.csv", 'payment_id,status,reason\nP4,returned,"never closed\nP4,settled,\n'),
    # the id beside punctuation, in another case, or after a JSON escape (found by review)
    *[("r.csv", f"note,status,payment_id,reason\na,returned,P4,closed\nx,settled,{said},paid, per bank\n")
      for said in ("p4", "'P4'", "(P4)", "ref P4.", "id=P4;", "P4\u00a0", "_P4_", "pid_P4", "ref-P4", "%22P4%22",
                   "C:\\X\\P4", "P4/P9")],
    ("r.jsonl", '{"payment_id": "P4", "status": "returned"}\n{"status": "settled", "status": "x", "reason": "dup of\\nP4"}\n'),
    ("r.jsonl", '{"payment_id": "P4", "status": "returned"}\n{"payment_id": "x", "payment_id": "y", "reason": "dup\\tP4"}\n'),
    ("r.jsonl", '{"payment_id": "P4", "status": "returned"}\n{"payment_id": "x", "payment_id": "y", "reason": "dup\\u00a0P4"}\n'),
])
def test_a_payment_a_malformed_row_names_anywhere_is_applied_by_no_row(tmp_path, name, text):
    """Found by review: the guard read the malformed row's payment_id column, which such
    rows leave misplaced or empty, and the sound row was applied."""
    path = staged_returns(tmp_path, name, text)
    rows = failing_rows(path, "returns_staging", "returns_staging").rows()
    assert sorted(reason for _, reason in rows) == ["malformed_row", "repeated_payment_id"]


def test_a_malformed_row_that_names_another_payment_blocks_nothing_else(tmp_path):
    """No false blocks: P40 is not P4, and a malformed row naming P9 leaves P4 applied."""
    path = staged_returns(tmp_path, "r.csv", "payment_id,status,reason\nP4,returned,x\nP5,settled,P40, P9\n")
    assert failing_rows(path, "returns_staging", "returns_staging").rows() == [(2, "malformed_row")]


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["P1", "P4", "P5", "P6"]), st.sampled_from(["settled", "returned"]),
                               st.sampled_from(["", "closed", "Closed"])), min_size=1, max_size=8))
def test_copies_of_one_row_apply_once_and_rows_that_differ_never(tmp_path_factory, rows):
    """Sound rows naming one (issued) payment: when they all say the same (status and
    reason, as written), the first applies and each later copy of a `returned` is
    repeated_payment_id (as in a later file: result_after_return), of a `settled` counted
    as settled again (already_applied, as in a later file); when any two differ, none
    applies. Found by review: a line a bank sent twice held the return back."""
    path = returns_warehouse(tmp_path_factory.mktemp("copies"), rows)
    with connect(path, read_only=True) as con:
        got = con.execute("SELECT row_number, payment_repeated FROM returns_staging ORDER BY row_number").fetchall()
        again = con.execute("SELECT row_number FROM returns_staging WHERE already_applied ORDER BY row_number").fetchall()
    expected = []
    for n, (payment, status, reason) in enumerate(rows, start=1):
        same = [(s, r) for p, s, r in rows if p == payment]
        first = next(i for i, (p, _, _) in enumerate(rows, start=1) if p == payment)
        expected.append((n, len(set(same)) > 1 or (n != first and status == "returned")))
    assert got == expected
    copies = [n for n, (payment, status, reason) in enumerate(rows, start=1)
              if status == "settled" and not dict(expected)[n]
              and n != next(i for i, r in enumerate(rows, start=1) if r[0] == payment)]
    assert [n for (n,) in again] == copies


@pytest.mark.parametrize("state, detail", [
    ("superseded", "planned by run R0, whose plan was superseded: never released, so no bank was sent it"),
    ("rejected", "planned by run R0, whose plan was rejected: never released, so no bank was sent it"),
    ("expired", "planned by run R0, whose plan was expired: never released, so no bank was sent it"),
    ("waiting", "planned by run R0, whose plan is waiting for approval: not released yet, so no bank was sent it"),
])
def test_an_unknown_payment_a_plan_holds_says_which_run_planned_it_and_why_no_bank_has_it(tmp_path, state, detail):
    """Found by the lifecycle review: a returns row naming a superseded plan's payment was
    unknown_payment_id with an empty detail; an id nothing planned keeps none."""
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        con.execute("INSERT INTO plans (run_id, state, policy_id, policy_sha256, planned_at, expires_at, payments, "
                    "amount, batches, summary) VALUES ('R0', ?, 'pol', 'x', now(), now(), 1, 50000, 1, '{}')", [state])
        con.execute("INSERT INTO plan_payments VALUES ('R0', 'Q1', 'c1', 50000, 'bank_transfer', 1, 'B0', "
                    "DATE '2025-12-01', '004', '1234567890')")
    csv = tmp_path / "returns.csv"
    csv.write_text("payment_id,status,reason\nQ1,returned,closed\nP9,settled,\n", encoding="utf-8")
    io.stage(io.returns_frame(csv), tmp_path / "returns.parquet")
    with connect(path) as con:
        create_returns_staging(con, tmp_path / "returns.parquet")
        rows = con.execute("SELECT payment_id, payment_unknown, plan_detail FROM returns_staging "
                           "ORDER BY row_number").fetchall()
    assert rows == [("Q1", True, detail), ("P9", True, None)]
