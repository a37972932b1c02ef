"""Writes of `quarantine`: rejected files and rejected rows, each with its SPEC reason
and the row as given (SPEC "Nothing is lost"). The one module that writes the table
(redress/warehouse/schema.py OWNERS); every function runs inside the caller's
transaction and only executes statements.
"""

from __future__ import annotations

import duckdb


def masked_account(column: str) -> str:
    """SQL for a bank account as quarantine keeps it: `******` and its last 4 characters
    (all masked when it has 4 or fewer), enough to find the row, useless to pay with.
    `column` is an expression of ours, never outside text."""
    return (f"CASE WHEN {column} IS NULL THEN NULL WHEN length({column}) > 4 "
            f"THEN '******' || right({column}, 4) ELSE '******' END")


# The columns a file's or a checked file's rows give (a scope row's customer_id is validate's).
COLUMNS = "(run_id, kind, file_sha256, file_name, row_number, reason, detail, row_json)"

# A row of a staging table (aliased `s`) that no failure names, and none when the whole
# file failed: what a file of returns or claims applies. `failures` (row_number, reason;
# a NULL row_number fails the whole file) must be registered on the connection.
ACCEPTED_ROW = """s.row_number NOT IN (SELECT row_number FROM failures WHERE row_number IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM failures WHERE row_number IS NULL)"""


def add_file(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, sha256: str, file_name: str,
             reason: str, detail: str | None) -> None:
    """One row for a file rejected whole (row_number and row_json NULL)."""
    con.execute(f"INSERT INTO quarantine {COLUMNS} VALUES (?, ?, ?, ?, NULL, ?, ?, NULL)",
                [run_id, kind, sha256, file_name, reason, detail])


def add_failing_rows(con: duckdb.DuckDBPyConnection, *, run_id: str, kind: str, sha256: str, file_name: str,
                     staging: str, row_fields: dict[str, str], detail: str | None = None,
                     detail_sql: str | None = None) -> None:
    """One row per failure of a checked file: `failures` (row_number, reason; a NULL
    row_number fails the whole file), registered on `con`, joined to the staging table
    of the file by row_number, the row kept as JSON of `row_fields` (name -> SQL
    expression over `s`, the staging row). `staging` and the expressions are names and
    SQL of ours, never outside text; the run and file are bound. `detail_sql`: SQL of
    ours over `s` and `f` giving a row's own detail, `detail` where it is NULL. Ordered by
    row number, then reason, so the same file gives the same rows."""
    fields = ", ".join(f"{name} := {expr}" for name, expr in row_fields.items())
    con.execute(f"""
        INSERT INTO quarantine {COLUMNS}
        SELECT ?, ?, ?, ?, f.row_number, f.reason, coalesce({detail_sql or 'NULL'}, ?),
               to_json(struct_pack({fields}))::VARCHAR
        FROM failures f LEFT JOIN {staging} s USING (row_number)
        ORDER BY f.row_number, f.reason""", [run_id, kind, sha256, file_name, detail])


def add_staged(con: duckdb.DuckDBPyConnection, holding: str) -> None:
    """Append the rows of a holding table with quarantine's columns (validate's
    `staged_quarantine`, a name of ours), and drop it."""
    con.execute(f"INSERT INTO quarantine BY NAME SELECT * FROM {holding}")
    con.execute(f"DROP TABLE {holding}")


def drop_scope_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the row-level scope quarantine, which a full classification derives again;
    files rejected whole stay as recorded."""
    con.execute("DELETE FROM quarantine WHERE kind = 'scope' AND row_number IS NOT NULL")
