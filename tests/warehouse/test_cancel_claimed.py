"""redress/warehouse/ledger.py cancel_claimed: a claim cancels the claimant's money held
on the claim rail and nothing else. Found by the mutation review: a claim cancelling every
issued payment of a claimant (a voucher or transfer already sent, then paid again by
transfer to the claimed account) was caught only after minutes, by a warehouse-rebuild
flow test. Over any ledger: exactly the issued claim-rail rows of a person whose claim
row no failure names move to cancelled; no other row changes."""

from __future__ import annotations

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.warehouse.ledger import cancel_claimed
from redress.warehouse.schema import create_statement

PEOPLE = ["K1", "K2", "K3"]
ROWS = st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(["claim", "voucher", "bank_transfer"]),
                          st.sampled_from(["issued", "settled", "returned", "cancelled"])), max_size=10)
CLAIMS = st.lists(st.tuples(st.sampled_from(PEOPLE), st.booleans()), max_size=4)  # (customer, failed)


@given(rows=ROWS, claims=CLAIMS, whole_file_failed=st.booleans())
@settings(max_examples=30, deadline=None)
def test_a_claim_cancels_only_its_claimants_issued_money_on_the_claim_rail(rows, claims, whole_file_failed):
    con = duckdb.connect()
    con.execute(create_statement("ledger"))
    for n, (who, rail, status) in enumerate(rows):
        con.execute("INSERT INTO ledger VALUES (?, ?, 50000, 'KRW', ?, 'B1', 'p', 'R1', 1, ?, NULL, 'R1')",
                    [f"P{n}", who, rail, status])
    con.execute("CREATE TABLE claims_staging (row_number BIGINT, customer_id VARCHAR)")
    for n, (who, _) in enumerate(claims, start=1):
        con.execute("INSERT INTO claims_staging VALUES (?, ?)", [n, who])
    failures = pl.DataFrame({"row_number": [n for n, (_, failed) in enumerate(claims, start=1) if failed]
                             + ([None] if whole_file_failed else []), "reason": "x"},
                            schema={"row_number": pl.Int64, "reason": pl.String})
    con.register("failures", failures)
    before = con.execute("SELECT payment_id, status FROM ledger ORDER BY payment_id").fetchall()
    claimants = set() if whole_file_failed else {who for who, failed in claims if not failed}
    expected = [(f"P{n}", "cancelled" if who in claimants and rail == "claim" and status == "issued" else status)
                for n, (who, rail, status) in enumerate(rows)]
    assert cancel_claimed(con, "R2") == sum(a != b for a, b in zip(before, sorted(expected)))
    assert con.execute("SELECT payment_id, status FROM ledger ORDER BY payment_id").fetchall() == sorted(expected)
