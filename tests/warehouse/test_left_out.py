"""redress/warehouse/customers.py left_out: who a new customers snapshot leaves out, and
what the ledger holds for them, as the accepted snapshot's line says it (tasks/ingest.py);
redress/warehouse/claims.py unpaid_claims_sql."""

from __future__ import annotations

import pytest

from redress.warehouse import connect
from redress.warehouse.customers import left_out

# customer -> ledger rows (amount, rail, attempt, status, run that planned it)
LEDGER = {
    "A": [(50000, "voucher", 1, "settled", "R0")],                                  # paid
    "B": [(50000, "claim", 1, "cancelled", "R0"), (50000, "bank_transfer", 2, "issued", "R1")],  # claimed, paid since
    "C": [(50000, "claim", 1, "cancelled", "R0")],                                  # claimed in R1, nothing since
    # claimed in R1, its transfer came back three times, held again, claimed again in R3:
    # only the second claim's 30,000 waits (found by the fix review: 60,000 was said)
    "D": [(30000, "claim", 1, "cancelled", "R0"), *[(30000, "bank_transfer", a, "returned", "R1") for a in (2, 3, 4)],
          (30000, "claim", 5, "cancelled", "R2")],
    "E": [],                                                                        # nothing
    "K": [(50000, "claim", 1, "cancelled", "R0")],                                  # kept by the new snapshot
}
CLAIMS = [("B", 50000, "R1"), ("C", 50000, "R1"), ("D", 30000, "R1"), ("D", 30000, "R3"), ("K", 50000, "R1")]


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        for hour, run_id in enumerate(("R0", "R1", "R2", "R3")):
            con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, outcome) "
                        "VALUES (?, TIMESTAMPTZ '2025-12-01 00:00:00+00' + to_hours(?), DATE '2025-12-01', '{}', "
                        "'p', 'x', 'succeeded')", [run_id, hour])
        for n, (customer, payments) in enumerate(LEDGER.items()):
            con.execute("INSERT INTO customers (customer_id, status, created_at, is_test, payout_method, bank_valid, "
                        "file_sha256) VALUES (?, 'closed', TIMESTAMPTZ '2020-01-01 00:00:00+00', false, 'voucher', "
                        "false, 'old')", [customer])
            for m, (amount, rail, attempt, status, run_id) in enumerate(payments):
                con.execute("INSERT INTO ledger VALUES (?, ?, ?, 'KRW', ?, 'B1', 'pol', ?, ?, ?, NULL, ?)",
                            [f"P{n}{m}", customer, amount, rail, run_id, attempt, status, run_id])
        for n, (customer, amount, run_id) in enumerate(CLAIMS):
            con.execute("INSERT INTO claims VALUES (?, ?, '088', '5556667777', now(), 'cs', ?, 'sha', ?, ?, "
                        "(SELECT started_at FROM runs WHERE run_id = ?))", [f"CODE{n}", customer, amount, n, run_id,
                                                                              run_id])
        con.execute("CREATE TABLE customers_staging AS SELECT * FROM customers WHERE customer_id = 'K'")
    return path


def test_a_snapshot_leaving_out_claimants_not_yet_paid_counts_them_and_the_latest_claims_money(warehouse):
    """Found by the lifecycle review: a claimant's transfer, planned and superseded, then a
    snapshot leaving them out: the money a claim cancelled was in no line of any report,
    and the snapshot's line said 0 of them paid or held."""
    with connect(warehouse, read_only=True) as con:
        assert left_out(con) == (5, 2, 2, 80000)  # A and B paid or held; C and D wait: 50,000 + 30,000
