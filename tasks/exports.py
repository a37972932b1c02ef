"""Analyst exports: the warehouse's tables as Parquet files that never block a run.

An analyst's connection to `warehouse.duckdb`, even a read-only one, holds a file lock
that stops the next run from writing. So after every successful run each analyst-facing
table is written to `exports/<table>.parquet`: the same columns and rows as the table,
nothing more, sorted by the table's key so the same warehouse gives the same bytes.
Each file is written under a temporary name and renamed, so a reader sees the previous
export or the new one, never half of one; files are readable by the owner only, as the
warehouse holds personal data.
"""

from __future__ import annotations

import os
from pathlib import Path

from redress.warehouse import connect, table_exists
from tasks.outbox import fsync

# SPEC "The warehouse": the stable table names, each with the columns that order it.
TABLES = {
    "ingested_files": "kind, file_name, file_sha256",
    "customers": "customer_id",
    "scope_exposures": "file_sha256, row_number, data_category",
    "non_member_exposures": "file_sha256, row_number",
    "review": "file_sha256, row_number",
    "quarantine": "run_id, kind, file_name, row_number NULLS FIRST, reason",
    "entitlements": "customer_id",
    "ledger": "payment_id",
    "batches": "batch_id",
    "notifications": "person_key",
    "runs": "run_id",
    "claims": "ALL",  # columns still settling: every column orders it
}


def write_exports(data_dir: Path) -> list[Path]:
    """exports/<table>.parquet for every table of TABLES the warehouse has; returns the
    paths written. OSError (disk full...) propagates: the caller says it in one line."""
    folder = data_dir / "exports"
    folder.mkdir(mode=0o700, exist_ok=True)
    written = []
    with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
        for table, order in TABLES.items():
            if not table_exists(con, table):
                continue
            final = folder / f"{table}.parquet"
            tmp = folder / f".tmp-{table}.parquet"
            con.execute(f"COPY (SELECT * FROM {table} ORDER BY {order}) TO ? (FORMAT parquet)", [str(tmp)])
            os.chmod(tmp, 0o600)
            fsync(tmp)
            os.replace(tmp, final)
            written.append(final)
    fsync(folder)
    return written
