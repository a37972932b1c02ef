"""Bank accounts that replaced a customer's earlier one (redress/warehouse/customers.py
former_bank_accounts, redress/disbursement/planning.py changed_accounts). Found by the
security review: the ledger keeps no account, so a customers snapshot that moved
payees' money to other accounts was paid with nothing said."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from redress.disbursement.planning import changed_accounts
from redress.warehouse.customers import replace_with_staging
from redress.warehouse.schema import create_statement

IDS = ["C1", "C2", "C3"]
ACCOUNTS = [(None, None), ("004", "111"), ("004", "222"), ("088", "111")]  # the same digits at another bank differ
MASTERS = st.dictionaries(st.sampled_from(IDS), st.sampled_from(ACCOUNTS))
COLUMNS = "customer_id VARCHAR, email_norm VARCHAR, phone_e164 VARCHAR, bank_code VARCHAR, bank_account VARCHAR"


def _load(con: duckdb.DuckDBPyConnection, masters: list[dict]) -> None:
    """Each master read by its own run, R0, R1, ... an hour apart."""
    for table in ("former_addresses", "former_bank_accounts", "ingested_files", "runs", "ledger", "claims"):
        con.execute(create_statement(table))
    for i, master in enumerate(masters):
        _run(con, f"R{i}", i)
        con.execute("INSERT INTO ingested_files (file_sha256, file_name, kind, size_bytes, status, run_id, ingested_at) "
                    "VALUES (?, ?, 'customers', 1, 'accepted', ?, now())", [f"sha-{i}", f"c{i}.csv", f"R{i}"])
        con.execute(f"CREATE TABLE customers_staging ({COLUMNS})")
        for c, (code, account) in sorted(master.items()):
            con.execute("INSERT INTO customers_staging VALUES (?, NULL, NULL, ?, ?)", [c, code, account])
        replace_with_staging(con, f"sha-{i}")


def _run(con: duckdb.DuckDBPyConnection, run_id: str, hour: int) -> None:
    con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, outcome) "
                "VALUES (?, TIMESTAMPTZ '2025-12-01 00:00:00+00' + to_hours(?), DATE '2025-12-01', '{}', 'p', 'x', "
                "'succeeded')", [run_id, hour])


@given(masters=st.lists(MASTERS, min_size=1, max_size=5),
       plan=st.dictionaries(st.sampled_from(IDS), st.tuples(st.sampled_from(["bank_transfer", "voucher", "claim"]),
                                                            st.sampled_from(ACCOUNTS), st.integers(1, 90_000))))
@example(masters=[{"C1": (None, None)}, {}, {"C1": (None, None)}, {}], plan={})  # left twice: one row (found by this property)
@settings(max_examples=20, deadline=None)
def test_transfers_to_an_account_that_replaced_another_are_counted_with_their_money(masters, plan):
    """Over any sequence of masters: former_bank_accounts holds each account (or none) a
    customer had in one master and not in the next (changed, or the customer left it),
    once, with the snapshot that replaced it (found by the fix review: one who left and
    came back with another account was not counted). A plan's
    bank transfer counts when its customer has a former account and it goes to none of
    them (a claim's own account included); vouchers and claim payments name no account."""
    former: dict[str, dict[tuple, str]] = {}
    for i in range(1, len(masters)):
        for c, account in masters[i - 1].items():
            if masters[i].get(c, "left") != account:  # changed, or left the master
                former.setdefault(c, {}).setdefault(account, f"sha-{i}")
    counted = [amount for c, (rail, account, amount) in plan.items()
               if rail == "bank_transfer" and c in former and account not in former[c]]
    frame = pl.DataFrame([(c, rail, code, number, amount) for c, (rail, (code, number), amount) in sorted(plan.items())],
                         schema={"customer_id": pl.String, "rail": pl.String, "bank_code": pl.String,
                                 "bank_account": pl.String, "amount": pl.Int64}, orient="row")
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        _load(con, masters)
        assert sorted(con.execute("SELECT * FROM former_bank_accounts").fetchall(), key=repr) == sorted(
            ((c, code, number, sha) for c, accounts in former.items() for (code, number), sha in accounts.items()),
            key=repr)
        path = Path(folder) / "it's planned.parquet"
        frame.write_parquet(path)
        assert changed_accounts(con, path) == {"payees": len(counted), "amount_krw": sum(counted)}


def test_an_account_changed_and_changed_back_is_paid_without_a_word_a_new_one_is_counted():
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        _load(con, [{"C1": ("004", "111"), "C2": ("004", "111")},
                    {"C1": ("004", "999"), "C2": ("004", "999")},
                    {"C1": ("004", "111"), "C2": ("004", "999")}])
        path = Path(folder) / "plan.parquet"
        pl.DataFrame({"customer_id": ["C1", "C2"], "rail": ["bank_transfer"] * 2, "bank_code": ["004"] * 2,
                      "bank_account": ["111", "999"], "amount": [50_000, 70_000]}).write_parquet(path)
        assert changed_accounts(con, path) == {"payees": 1, "amount_krw": 70_000}


def test_a_payee_paid_at_the_new_account_since_the_change_is_not_flagged_again():
    """Found by the lifecycle review: a top-up weeks after a transfer to the new account
    settled was flagged "changed" again. One settled by a run before the change, or still
    only issued, or a claimant's (perhaps to a claimed account), still counts."""
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        _load(con, [{c: ("004", "111") for c in ("C1", "C2", "C3", "C4")}, {c: ("004", "999") for c in
                                                                             ("C1", "C2", "C3", "C4")}])
        _run(con, "R2", 2)
        for n, (customer, run, status) in enumerate([("C1", "R1", "settled"), ("C2", "R0", "settled"),
                                                     ("C3", "R2", "issued"), ("C4", "R2", "settled")]):
            con.execute("INSERT INTO ledger VALUES (?, ?, 50000, 'KRW', 'bank_transfer', 'B', 'p', ?, 1, ?, NULL, ?)",
                        [f"P{n}", customer, run, status, run])
        con.execute("INSERT INTO claims VALUES ('CODE', 'C4', '088', '555', now(), 'cs', 0, 'sha-c', 1, 'R2', now())")
        path = Path(folder) / "plan.parquet"
        pl.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"], "rail": ["bank_transfer"] * 4,
                      "bank_code": ["004"] * 4, "bank_account": ["999"] * 4,
                      "amount": [10_000, 20_000, 30_000, 40_000]}).write_parquet(path)
        assert changed_accounts(con, path) == {"payees": 3, "amount_krw": 90_000}  # all but C1
