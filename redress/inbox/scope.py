"""A scope file: read (`scope_frame`) and appended to scope_rows (`load_scope_rows`).
SPEC "Input: scope files".
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from redress.inbox.files import SCOPE_COLUMNS, SCOPE_REQUIRED, TIMESTAMPS, FileRejected
from redress.inbox.streaming import load_frame, source_frame, ts
from redress.inbox.text_frame import read_text_frame
from redress.warehouse import scope_rows
from redress.vocabulary import EMPTY_FILE


def scope_frame(path: Path, scratch: Path | None = None) -> pl.LazyFrame:
    """The file as text columns (`read_text_frame`: row_number, the SPEC's columns, a
    typed accessed_at when Parquet has one, then `malformed`). A CSV
    row with fields beyond the header, or a JSON Lines line that is no object or gives a
    key twice, or (given `scratch`, a folder for a work file) a CSV line with a stray
    quote, is kept as a row whose SPEC columns are all NULL (its values may sit
    under the wrong names), `malformed` saying what is wrong: the classification
    quarantines it alone as `malformed_row` (redress/rules/classify.py), so one odd row
    never holds back a file's others. The row as written is not kept: it may hold
    columns beyond the SPEC's, which no sound row keeps either (an address, a resident
    number); the file name and row number find it."""
    frame = read_text_frame(path, SCOPE_REQUIRED, SCOPE_COLUMNS, TIMESTAMPS["scope"], malformed=True,
                            line_per_row=False, scratch=scratch)
    names = [n for n in frame.collect_schema().names() if n != "as_written"]
    sound = pl.col("malformed").is_null()
    return frame.select(pl.col(c) if c in ("row_number", "malformed") else pl.when(sound).then(pl.col(c)).alias(c)
                        for c in names)


def load_scope_rows(con: duckdb.DuckDBPyConnection, source: Path | pl.LazyFrame, sha: str, timezone: str,
                    scratch: Path) -> int:
    """Append a scope file (`scope_frame`, read once; or a Parquet of it at a Path) to
    scope_rows, in the file's row order, through a work file in `scratch`
    (streaming.load_frame); returns the rows appended, and raises FileRejected
    (unreadable_file, empty_file) having appended none (the caller's transaction is
    rolled back). No path is spliced into the SQL text. Call it inside `loading`."""
    frame = source_frame(source)
    con.execute("SET TimeZone = ?", [timezone])
    # On failure the transaction is aborted: the caller's ROLLBACK inside `loading`
    # sets the session back to UTC.
    rows = load_frame(con, frame, scope_rows.append_sql(ts('accessed_at', frame.collect_schema())), [sha], scratch)
    con.execute("SET TimeZone = 'UTC'")
    if rows == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    return rows
