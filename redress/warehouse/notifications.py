"""Writes of `notifications`: who was told, how, with which template and reference code
(never the message text: SPEC "Notifications"). The one module that writes the table
(redress/warehouse/schema.py OWNERS); every function runs inside the caller's
transaction and only executes statements.
"""

from __future__ import annotations

import duckdb


def add(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """Append the rows of a run (`rows`: a Parquet file with the table's columns, as
    `sql.file_path` gives it, bound, never SQL text). The file is in person_key order
    already (tasks/notify.py write_rendered) and DuckDB keeps a file's order on insert:
    no second sort."""
    con.execute("""
        INSERT INTO notifications BY NAME
        SELECT person_key, customer_id, recipient, channel, reference_code, template_id, language, run_id
        FROM read_parquet(?, hive_partitioning = false)""", [rows])


def restore(con: duckdb.DuckDBPyConnection, query: str, sources: list, run_id: str) -> int:
    """The rows of one run rebuilt from its outbox files (redress/outbox/recovery.py):
    `query` (SQL of ours reading the files bound as $1 and $2 in `sources`) gives every
    column but run_id; people already notified are left alone. Returns the rows added."""
    return con.execute(f"""
        INSERT INTO notifications BY NAME
        SELECT *, $3 AS run_id FROM ({query})
        WHERE person_key NOT IN (SELECT person_key FROM notifications) ORDER BY person_key""",
        [*sources, run_id]).fetchall()[0][0]
