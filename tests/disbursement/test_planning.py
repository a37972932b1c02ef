"""redress/disbursement/planning.py: the plan cut from files is the plan cut in memory."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.disbursement.planning import PLANNED, plan_payments
from redress.rules.batches import batches
from redress.rules.vouchers import with_voucher_parts

RUN = date(2025, 12, 1)
RAILS = ("bank_transfer", "claim", "voucher")
SCHEMA = {"customer_id": pl.String, "amount": pl.Int64, "rail": pl.String, "attempt": pl.Int32}
BANK = "SELECT customer_id, bank_code, bank_account FROM test_bank"


def plan(due: pl.DataFrame, policy, folder: Path, *, bank: pl.DataFrame | None = None,
         next_seq=None, released=None) -> pl.DataFrame:
    """plan_payments on `due` (with its voucher parts) written to a file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with_voucher_parts(due, policy).write_parquet(folder / "due.parquet")
    bank = bank if bank is not None else pl.DataFrame(
        schema={"customer_id": pl.String, "bank_code": pl.String, "bank_account": pl.String})
    with duckdb.connect() as con:
        con.execute("CREATE TABLE test_bank AS SELECT * FROM bank")
        out = plan_payments(con, folder / "due.parquet", policy, RUN, BANK, dict(next_seq or {}),
                            dict(released or {}), folder)
    # the sorted copy is gone: nothing but the caller's file and the plan is left
    assert sorted(f.name for f in folder.iterdir()) == ["due.parquet", "planned.parquet"]
    return pl.read_parquet(out, glob=False)


def in_memory(due: pl.DataFrame, policy, **kwargs) -> pl.DataFrame:
    return with_voucher_parts(batches(due, policy, RUN, **kwargs), policy)


@st.composite
def cases(draw):
    """Payments on any of the rails (ids with non-ASCII letters, in any order), small
    batches, a cash cap that moves transfers to later days, earlier sequence numbers and
    cash already released: every branch of the split."""
    ids = draw(st.lists(st.text(alphabet="abcXYZ09éİ가", min_size=1, max_size=6), unique=True, max_size=60))
    rows = [(i, draw(st.integers(1, 50_000)), draw(st.sampled_from(RAILS)), draw(st.integers(1, 3))) for i in ids]
    limits = dict(max_batch_items=draw(st.integers(1, 7)), max_batch_amount=draw(st.integers(50_000, 200_000)),
                  daily_cash_cap=draw(st.integers(50_000, 300_000)))
    next_seq = {(rail, RUN + timedelta(days=d)): draw(st.integers(2, 12))
                for rail, d in draw(st.lists(st.tuples(st.sampled_from(RAILS), st.integers(0, 3)), max_size=3))}
    released = {RUN + timedelta(days=d): draw(st.integers(0, 50_000)) for d in draw(st.sets(st.integers(0, 3)))}
    return pl.DataFrame(rows, schema=SCHEMA, orient="row"), limits, next_seq, released


@settings(max_examples=60)
@given(case=cases())
def test_plan_from_files_is_the_plan_in_memory_row_for_row(case, policy, scratch_root):
    due, limits, next_seq, released = case
    p = policy(**limits)
    # ...whatever order the payments arrive in, and wherever the files are.
    with tempfile.TemporaryDirectory(dir=scratch_root) as tmp:
        got = plan(due.reverse(), p, Path(tmp, "work [1]*"), next_seq=next_seq, released=released)
    expected = in_memory(due, p, next_seq=next_seq, released=released)
    assert got.columns[:len(PLANNED)] == list(PLANNED)
    assert got.drop("bank_code", "bank_account").equals(expected.select(got.columns[:-2]))
    assert got.height == due.height and got["amount"].sum() == due["amount"].sum()


def test_bank_details_join_each_payment_and_none_is_invented(policy, tmp_path):
    due = pl.DataFrame([("c1", 30000, "bank_transfer", 1), ("c2", 30000, "bank_transfer", 2),
                        ("c3", 30000, "voucher", 1)], schema=SCHEMA, orient="row")
    bank = pl.DataFrame({"customer_id": ["c2", "c1", "c9"], "bank_code": ["004", "020", "088"],
                         "bank_account": ["222", "111", "999"]})
    got = plan(due, policy(), tmp_path / "w", bank=bank)
    assert got.select("customer_id", "bank_code", "bank_account", "attempt").rows() == [
        ("c1", "020", "111", 1), ("c2", "004", "222", 2), ("c3", None, None, 1)]
    assert got["payment_id"].to_list() == ["20251201-B0001-000001", "20251201-B0001-000002",
                                           "20251201-V0001-000001"]


def test_nothing_due_gives_an_empty_plan_with_the_plan_columns(policy, tmp_path):
    got = plan(pl.DataFrame(schema=SCHEMA), policy(), tmp_path / "w")
    assert got.height == 0
    assert got.columns == [*PLANNED, *[f"voucher_{p.id}" for p in policy().voucher_products],
                           "bank_code", "bank_account"]
    assert got.schema["value_date"] == pl.Date and got.schema["seq"] == pl.Int64


def test_a_payment_no_batch_can_hold_is_refused(policy, tmp_path):
    due = pl.DataFrame([("c1", 60000, "voucher", 1)], schema=SCHEMA, orient="row")
    with pytest.raises(ValueError, match="exceeds what one batch may hold"):
        plan(due, policy(max_batch_amount=50000), tmp_path / "w")


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(RAILS), st.sampled_from(["004", "088"]),
                               st.sampled_from(["111", "222", "333", None]), st.integers(1, 90_000)),
                     min_size=0, max_size=12))
def test_accounts_several_customers_are_paid_to_are_counted_with_their_money(rows):
    """shared_accounts: the plan's bank transfers to a bank code and account that another
    customer's bank transfer of the plan also goes to (found by review: six customers
    on one account were paid with nothing said). A voucher or claim payment, or a
    transfer without an account, names no account; the same digits at another bank are
    another account."""
    from redress.disbursement.planning import shared_accounts
    frame = pl.DataFrame([(f"C{i}", rail, code, account, amount) for i, (rail, code, account, amount) in enumerate(rows)],
                         schema={"customer_id": pl.String, "rail": pl.String, "bank_code": pl.String,
                                 "bank_account": pl.String, "amount": pl.Int64}, orient="row")
    groups: dict[tuple, list[int]] = {}
    for rail, code, account, amount in rows:
        if rail == "bank_transfer" and account is not None:
            groups.setdefault((code, account), []).append(amount)
    shared = [amounts for amounts in groups.values() if len(amounts) > 1]
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        path = Path(folder) / "it's planned.parquet"
        frame.write_parquet(path)
        assert shared_accounts(con, path) == {"accounts": len(shared), "payees": sum(map(len, shared)),
                                              "amount_krw": sum(map(sum, shared))}
