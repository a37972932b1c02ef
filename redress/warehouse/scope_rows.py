"""Writes of the scope evidence: `scope_rows` (every data row of every accepted scope
file, as given) and the outcome tables each row is classified into, `scope_exposures`,
`non_member_exposures` and `review` (SPEC "Input: scope files", "Nothing is lost").
The one module that writes these tables (redress/warehouse/schema.py OWNERS); every
function runs inside the caller's transaction and only executes statements.
"""

from __future__ import annotations

import duckdb

OUTCOMES = ("scope_exposures", "non_member_exposures", "review")


def append_sql(accessed_at: str) -> str:
    """The statement that appends a scope file read as the view `src` (row_number and
    the SPEC's columns as text) to scope_rows, its file_sha256 bound as the one
    parameter; `accessed_at` is the SQL of ours that types accessed_at
    (redress/inbox/streaming.py `ts`). Run by the reader, which streams the file in
    (redress/inbox/scope.py load_scope_rows)."""
    return f"""
        INSERT INTO scope_rows
        SELECT ? AS file_sha256, row_number, customer_id, email, phone, data_category,
               accessed_at AS accessed_at_raw, {accessed_at} AS accessed_at,
               confidence, source, malformed
        FROM src
    """


def retime(con: duckdb.DuckDBPyConnection, files: list[str], accessed_at: str, params: dict) -> int:
    """The rows of scope files `files` (sha256) get `accessed_at`, SQL of ours over the
    row's columns with the named `params` (redress/inbox/retime.py); returns the rows."""
    return con.execute(f"""
        UPDATE scope_rows SET accessed_at = {accessed_at}
        WHERE file_sha256 IN (SELECT unnest($files::VARCHAR[]))""", {**params, "files": files}).fetchall()[0][0]


def replace_outcomes(con: duckdb.DuckDBPyConnection, holding: dict[str, str]) -> None:
    """A full classification: each outcome table is replaced by its staged table
    (`holding`: outcome table -> staged table, names of ours), renamed, not copied:
    tens of millions of rows are not written twice."""
    for table in OUTCOMES:
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {holding[table]} RENAME TO {table}")


def append_outcomes(con: duckdb.DuckDBPyConnection, holding: dict[str, str]) -> None:
    """An incremental classification: the staged rows are appended to each outcome
    table, and the staged tables dropped."""
    for table in OUTCOMES:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {holding[table]}")
        con.execute(f"DROP TABLE {holding[table]}")
