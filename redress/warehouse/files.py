"""Writes of `ingested_files`: one row per inbox file a run looked at, by content and
name, with what became of it (SPEC "The data folder", "Input: scope files"). The one module that
writes the table (redress/warehouse/schema.py OWNERS); runs inside the caller's
transaction when there is one.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb


def record(con: duckdb.DuckDBPyConnection, *, sha256: str, name: str, kind: str, size_bytes: int, status: str,
           reason: str | None, rows: int | None, run_id: str) -> None:
    """The file's row, stamped now (UTC). `status` is one of the schema's statuses
    (accepted, duplicate_file, empty_file, ...); `rows` the data rows read, or None."""
    con.execute(
        "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sha256, name, kind, size_bytes, status, reason, rows, run_id, datetime.now(timezone.utc)],
    )
