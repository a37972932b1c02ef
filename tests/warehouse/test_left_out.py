"""redress/warehouse/customers.py left_out: who a new customers snapshot leaves out, and
what the ledger holds for them, as the accepted snapshot's line says it (tasks/ingest.py)."""

from __future__ import annotations

import pytest

from redress.warehouse import connect
from redress.warehouse.customers import left_out

# customer -> ledger rows (amount, rail, attempt, status)
LEDGER = {
    "A": [(50000, "voucher", 1, "settled")],                                    # paid
    "B": [(50000, "claim", 1, "cancelled"), (50000, "bank_transfer", 2, "issued")],  # claimed, and paid since
    "C": [(50000, "claim", 1, "cancelled")],                                    # claimed, nothing issued since
    "D": [(30000, "bank_transfer", 1, "returned"), (30000, "bank_transfer", 2, "returned"),
          (30000, "claim", 3, "cancelled")],                                    # claimed after returns, unpaid
    "E": [],                                                                    # nothing
    "K": [(50000, "claim", 1, "cancelled")],                                    # kept by the new snapshot
}


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        for n, (customer, payments) in enumerate(LEDGER.items()):
            con.execute("INSERT INTO customers (customer_id, status, created_at, is_test, payout_method, bank_valid, "
                        "file_sha256) VALUES (?, 'closed', TIMESTAMPTZ '2020-01-01 00:00:00+00', false, 'voucher', "
                        "false, 'old')", [customer])
            for m, (amount, rail, attempt, status) in enumerate(payments):
                con.execute("INSERT INTO ledger VALUES (?, ?, ?, 'KRW', ?, 'B1', 'pol', 'R1', ?, ?, NULL, 'R1')",
                            [f"P{n}{m}", customer, amount, rail, attempt, status])
        con.execute("CREATE TABLE customers_staging AS SELECT * FROM customers WHERE customer_id = 'K'")
    return path


def test_a_snapshot_leaving_out_claimants_not_yet_paid_counts_them_and_their_money(warehouse):
    """Found by the lifecycle review: a claimant's transfer, planned and superseded, then a
    snapshot leaving them out: the money a claim cancelled was in no line of any report,
    and the snapshot's line said 0 of them paid or held."""
    with connect(warehouse, read_only=True) as con:
        assert left_out(con) == (5, 2, 2, 80000)  # A and B paid or held; C and D claimed, 50,000 + 30,000
