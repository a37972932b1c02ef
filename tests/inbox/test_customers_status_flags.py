"""The status and closing-date booleans redress/inbox/customers.py load_customers_staging
computes, which the customers suite rejects a snapshot on (SPEC "Input: customers
snapshot": closed_at "set when status is closed, empty otherwise"). Found by the mutation
review: `closed_at_unexpected` forced to false passed every test, since the suite's tests
build the staging table with the booleans already filled in; an active account with a
closing date was then accepted, and rule 5 read it as open."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from redress import inbox as io
from redress.rules.identity import customer_keys

ROWS = [  # status, closed_at -> closed_at_missing, closed_at_unexpected, closed_at_invalid
    ("active", None, False, False, False),
    ("active", "2025-10-01", False, True, False),
    ("dormant", "2025-10-01", False, True, False),
    ("closed", "2025-10-01", False, False, False),
    ("closed", None, True, False, False),
    ("closed", "not a date", False, False, True),
    ("active", "not a date", False, True, True),
    (None, "2025-10-01", False, True, False),  # no status: not closed, so no closing date either
]


def test_a_closing_date_is_flagged_unless_the_account_is_closed_and_missing_if_it_is(tmp_path: Path):
    text = {c: pl.String for c in io.CUSTOMER_COLUMNS}
    n = len(ROWS)
    frame = pl.DataFrame({c: [None] * n for c in text}, schema=text).with_columns(
        pl.Series("customer_id", [f"C{i}" for i in range(n)], pl.String),
        pl.Series("status", [r[0] for r in ROWS], pl.String), pl.Series("closed_at", [r[1] for r in ROWS], pl.String),
        name=pl.lit("Kim"), created_at=pl.lit("2020-01-01"))
    frame.write_parquet(tmp_path / "customers.parquet")
    io.stage(customer_keys(io.customers_frame(tmp_path / "customers.parquet")), tmp_path / "staged.parquet")
    with duckdb.connect() as con:
        io.load_customers_staging(con, tmp_path / "staged.parquet", "Asia/Seoul", tmp_path)
        flags = con.execute("""SELECT closed_at_missing, closed_at_unexpected, closed_at_invalid
                               FROM customers_staging ORDER BY row_number""").fetchall()
    assert flags == [r[2:] for r in ROWS]
