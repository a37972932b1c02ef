"""Writes of `entitlements`: the entitlement of every customer with an accepted exposure
(SPEC "Eligibility and entitlement"), amounts in minor units. The one module that
writes the table (redress/warehouse/schema.py OWNERS); runs inside the caller's
transaction and only executes statements.
"""

from __future__ import annotations

import duckdb


def replace(con: duckdb.DuckDBPyConnection, result: str, run_id: str, *, every: bool) -> None:
    """The entitlements in `result` (a Parquet file of entitlements_of's columns, as
    `sql.file_path` gives it, bound) replace those of the same customers, or every
    earlier row when `every` (a full recomputation). No ORDER BY: every reader of
    entitlements orders explicitly (redress/warehouse/exports.py)."""
    if every:
        con.execute("DELETE FROM entitlements")
    else:
        con.execute("""DELETE FROM entitlements
                       WHERE customer_id IN (SELECT customer_id FROM read_parquet(?, hive_partitioning = false))""",
                    [result])
    con.execute("""
        INSERT INTO entitlements BY NAME
        SELECT customer_id, policy_id, ? AS run_id, reason, tier, categories, exposed_categories,
               base_amount, amount, rail FROM read_parquet(?, hive_partitioning = false)""", [run_id, result])
