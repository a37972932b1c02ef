"""Suite records for the report renderers: one suite run that passed, one that failed
with stray row-level keys a careless renderer could copy."""

from __future__ import annotations

import pytest

# Values a careless renderer could copy from stray keys of a record: none may appear.
PERSONAL_VALUES = ["kim.minjun@example.com", "010-9876-5432", "+821098765432", "김민준"]


def expectation(expectation, column, reason, unexpected=0, rows=100, **extra) -> dict:
    return {"expectation": expectation, "column": column, "reason": reason, "success": unexpected == 0,
            "unexpected_count": unexpected, "element_count": rows, "error": None, **extra}


def record(label, suite, table, *results) -> dict:
    return {"label": label, "suite": suite, "table": table, "index_column": "row_number",
            "success": all(r["success"] for r in results), "results": list(results)}


@pytest.fixture
def personal() -> list[str]:
    return list(PERSONAL_VALUES)


@pytest.fixture
def make_record():
    """make_record(label, suite, table, *expectations); expectations from make_expectation."""
    return record


@pytest.fixture
def make_expectation():
    return expectation


@pytest.fixture
def records() -> list[dict]:
    passed = record(
        "customers_staging-customers_2025-11-29.parquet", "customers_staging", "customers_staging",
        expectation("expect_column_values_to_not_be_null", "customer_id", "missing_customer_id"),
        expectation("expect_column_values_to_be_unique", "customer_id", "duplicate_customer_id"),
    )
    failed = record(
        "scope_exposures", "scope_exposures", "scope_exposures",
        expectation("expect_column_values_to_not_be_null", "customer_id", "gate_failed_null_customer_id"),
        expectation("expect_column_values_to_be_in_set", "matched_by", "gate_failed_unknown_matched_by",
                    unexpected=37, rows=1234,
                    # stray row-level keys (an older or careless record): never rendered
                    partial_unexpected_list=PERSONAL_VALUES,
                    unexpected_index_query="SELECT * FROM customers WHERE email = 'kim.minjun@example.com'"),
    )
    return [passed, failed]


@pytest.fixture
def hostile_records() -> list[dict]:
    """A record whose every text is markup: what a file name can carry into a suite label."""
    return [record('scope<script>alert("x")</script>', "s&p", "<b>t</b>",
                   expectation("expect_x", '"><img src=x onerror=alert(1)>', "reason <i>&</i>", unexpected=1))]


@pytest.fixture
def overspent_fund(tmp_path):
    """The finance review's case, by hand: a fund of 150,000,000 KRW whose ledger, after a
    scope revision lowered the pro rata share (no clawback), holds 163,988,384 KRW paid
    out (issued or settled) and 3,743,106 KRW held on claim (owed: it counts), with a
    returned and a cancelled payment that do not. Returns the warehouse's path and its
    reconciliation (redress/reports/reconciliation.py)."""
    from redress.reports.reconciliation import reconciliation
    from redress.warehouse import connect

    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as con:
        for batch_id, rail in (("V1", "voucher"), ("T1", "bank_transfer"), ("C1", "claim")):
            con.execute("INSERT INTO batches VALUES (?, ?, 'KRW', '2025-12-01', 1, 1, 'p1', 'R1', "
                        "'2025-12-01 00:00:00+00', ?, NULL)", [batch_id, rail, f"outbox/batches/{batch_id}"])
        for n, (cid, amount, rail, batch_id, status) in enumerate((
                ("A", 100_000_000, "voucher", "V1", "settled"), ("B", 60_000_000, "bank_transfer", "T1", "issued"),
                ("C", 3_988_384, "bank_transfer", "T1", "settled"), ("D", 3_743_106, "claim", "C1", "issued"),
                ("E", 5_000_000, "bank_transfer", "T1", "returned"), ("F", 1_000_000, "claim", "C1", "cancelled"))):
            con.execute("INSERT INTO ledger VALUES (?, ?, ?, 'KRW', ?, ?, 'p1', 'R1', 1, ?, NULL, 'R1')",
                        [f"P{n}", cid, amount, rail, batch_id, status])
        recon = reconciliation(con, max_attempts=3)
    return warehouse, recon
