"""Writes of `ingested_files`: one row per inbox file a run looked at, by content and
name, with what became of it (SPEC "The data folder", "Input: scope files"). The one module that
writes the table (redress/warehouse/schema.py OWNERS); runs inside the caller's
transaction when there is one.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

from redress.vocabulary import ACCEPTED, sql_literal


def record(con: duckdb.DuckDBPyConnection, *, sha256: str, name: str, kind: str, size_bytes: int, status: str,
           reason: str | None, rows: int | None, run_id: str, read_in: str | None = None) -> None:
    """The file's row, stamped now (UTC). `status` is one of the schema's statuses
    (accepted, duplicate_file, empty_file, ...); `rows` the data rows read, or None;
    `read_in` the timezone an accepted customers or scope file's times without an
    offset were read in (the policy's), else None."""
    con.execute(
        "INSERT INTO ingested_files BY NAME SELECT ? AS file_sha256, ? AS file_name, ? AS kind, ? AS size_bytes, "
        "? AS status, ? AS reason, ? AS rows_read, ? AS run_id, ? AS ingested_at, ? AS timezone",
        [sha256, name, kind, size_bytes, status, reason, rows, run_id, datetime.now(timezone.utc), read_in],
    )


# The accepted files whose times are evidence now: every scope file, and the customers
# snapshot the master was promoted from (redress/inbox/retime.py).
EVIDENCE = f"""status = {sql_literal(ACCEPTED)} AND (kind = 'scope' OR (kind = 'customers'
              AND file_sha256 IN (SELECT DISTINCT file_sha256 FROM customers)))"""


def read_elsewhere(evidence: list[tuple], timezone: str) -> list[tuple[str, str, str | None]]:
    """(kind, sha256, timezone read in: None for a file of an earlier version) of each
    file of `evidence` (`evidence(con)`'s rows) read in a timezone other than
    `timezone`, sorted."""
    return sorted({(kind, sha, read_in) for kind, _, sha, _, _, read_in in evidence if read_in != timezone},
                  key=lambda r: (r[0], r[1], r[2] or ""))


def record_timezone(con: duckdb.DuckDBPyConnection, timezone: str) -> None:
    """Every file of EVIDENCE is now read in `timezone`."""
    con.execute(f"UPDATE ingested_files SET timezone = ? WHERE {EVIDENCE} AND timezone IS DISTINCT FROM ?",
                [timezone, timezone])


def evidence(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, int | None, str, str | None]]:
    """(kind, file_name, sha256, rows_read, run_id, timezone) of each file of EVIDENCE,
    sorted: one query a run, for both redress/inbox/retime.py and new_files.evidence_gone."""
    return con.execute(f"""
        SELECT kind, file_name, file_sha256, rows_read, run_id, timezone FROM ingested_files WHERE {EVIDENCE}
        ORDER BY kind, file_name, file_sha256""").fetchall()
