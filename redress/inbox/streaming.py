"""The load of a read file into DuckDB (SPEC "Reading files"): a frame from the readers
is written once by Polars (streaming, on its threads) to a work file, then read once by
DuckDB (on its threads) into the warehouse, which parses the timestamps: an offset is
honoured, a timestamp without one is in the policy's timezone (`ts`). Used by
`customers.py` and `scope.py`; no path is spliced into SQL text.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from redress import sql
from redress.inbox.columns import typed_name
from redress.inbox.text_frame import sink
# The one pattern and its rewrites: the policy reads its instants by them too.
from redress.iso8601 import ISO_8601, OTHER_SPELLINGS

# How the text of a typed timestamp with a zone ends (redress/inbox/parquet_reader.py `%:z`).
ZONED_TAIL = r"[+-]\d{2}:\d{2}$"

# Rows per row group of the work file: DuckDB's own row group size, so that each of the
# work file's row groups becomes one full row group of the table.
ROW_GROUP_ROWS = 122_880


def source_frame(source: Path | pl.LazyFrame) -> pl.LazyFrame:
    # A Path is a staged Parquet of our own (tests, older callers): read as it was written.
    return pl.scan_parquet(source, glob=False) if isinstance(source, Path) else source


def load_frame(con: duckdb.DuckDBPyConnection, frame: pl.LazyFrame, sql_text: str, params: list,
               scratch: Path) -> int:
    """Run `sql_text`, which reads the frame as the table `src`, with `params`; returns
    the rows it wrote. The frame is first written to a work file in `scratch` (in an
    owner-only folder of its own, removed on return; a killed run's goes with the run's
    scratch folder), in row groups of DuckDB's size, which DuckDB then reads on all its threads: it keeps the
    file's row order (a Parquet scan numbers its batches) and appends full row groups
    (no rewrite at the checkpoint). Measured on 6.4M scope rows: 4.9 to 5.1 s against
    6.9 s streamed from Polars into DuckDB on one thread (an Arrow stream loses its row
    order on several threads), the same warehouse file size. A failure of the file's
    own content is FileRejected (text_frame.sink); a failed write of the work file is
    OSError, and any DuckDB error goes up as it is (a full disk is not the sender's
    fault)."""
    scratch.mkdir(parents=True, exist_ok=True)
    # The work file in a folder of its own (mode 0700), removed whole: when the frame
    # fails mid-stream, Polars' sink can still create the file after the error is
    # raised, and a file unlinked by name then came back (found by a CI run under load:
    # 1 load in 300); a file created late in a removed folder is never made.
    folder = Path(tempfile.mkdtemp(prefix=".load-", dir=scratch))
    work = folder / "rows.parquet"
    try:
        sink(frame, work, compression="lz4", row_group_size=ROW_GROUP_ROWS)
        # Replaces the one a failed load left; folder names are not columns (redress/sql.py).
        con.register("src", con.read_parquet(sql.file_path(work), hive_partitioning=False))
        rows = con.execute(sql_text, params).fetchall()[0][0]
        con.unregister("src")
        return rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def loading(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Settings for loading files (`load_frame`), wrapped around a whole transaction,
    and restored on leaving, with the session back in UTC (a loader sets the policy's
    timezone; no SET can run in a failed transaction, so the caller rolls back inside
    this block). DuckDB's `in_clause` optimizer is off: it plans a list of constants
    (`lower(is_test) IN ('true', 't', ...)`) as a join, and a join loses the file's row
    order on several threads; a list is then compared value by value, in the scan."""
    disabled = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    con.execute("SET disabled_optimizers = ?", [",".join(filter(None, (disabled, "in_clause")))])
    try:
        yield
    finally:
        con.execute("SET disabled_optimizers = ?", [disabled])
        con.execute("SET TimeZone = 'UTC'")


# The instants a time read from the inbox may be: those every reader can show in any
# timezone (Python's datetime holds years 1 to 9999; a day each side for the widest
# offset). Found by the standards review: `9999-12-31T23:59:59-14:00` is an instant of
# the year 10000, which DuckDB stores; it was paid as outside the window, and `explain`
# of the person failed with a traceback. Outside them a time is NULL, as an unparseable
# one is: invalid_timestamp for a scope row, a customers snapshot refused whole.
EARLIEST, LATEST = "TIMESTAMPTZ '0001-01-02 00:00:00+00'", "TIMESTAMPTZ '9999-12-30 00:00:00+00'"


def _bounded(typed: str) -> str:
    """SQL: TIMESTAMPTZ expression `typed`, NULL outside EARLIEST .. LATEST. DuckDB
    evaluates the repeated expression once (its common subexpressions: measured at 5 M
    rows, 0.43 s against 0.42 s unbounded)."""
    return f"CASE WHEN ({typed}) >= {EARLIEST} AND ({typed}) < {LATEST} THEN ({typed}) END"


def ts(col: str, schema: pl.Schema | None = None) -> str:
    """SQL: the column as TIMESTAMPTZ in the session timezone. A typed timestamp that
    `read_text_frame` passed on (`typed_name`, in `schema`) is taken as it is (a naive
    one in the session timezone); text is NULL unless ISO 8601; either is NULL outside
    EARLIEST .. LATEST."""
    if schema is not None and typed_name(col) in schema:
        return _bounded(f"CAST({sql.identifier(typed_name(col))} AS TIMESTAMPTZ)")
    return _bounded(f"CASE {_iso_branches(col)} END")


def _extended(col: str) -> str:
    """SQL: text column `col` with OTHER_SPELLINGS rewritten to ISO 8601's extended form."""
    for pattern, replacement in OTHER_SPELLINGS:
        col = f"regexp_replace({col}, {sql.literal(pattern)}, {sql.literal(replacement)})"
    return col


def _iso_branches(col: str) -> str:
    """SQL: the WHEN branches that type text column `col` when it is ISO 8601, in the
    extended form or another spelling of it (OTHER_SPELLINGS)."""
    other = _extended(col)
    return (f"WHEN regexp_full_match({col}, {sql.literal(ISO_8601)}) THEN TRY_CAST({col} AS TIMESTAMPTZ) "
            f"WHEN regexp_full_match({other}, {sql.literal(ISO_8601)}) THEN TRY_CAST({other} AS TIMESTAMPTZ)")


def ts_again(raw: str, typed: str) -> str:
    """SQL: text column `raw` (a time as written) typed in the session timezone exactly as
    `ts` types it on a first reading. Where the text is not ISO 8601 but `typed` (its value
    read in the timezone bound as $earlier) is not null, a Parquet timestamp whose text
    (parquet_reader: `%:z` for one with a zone) `ts` never parsed, a year past 9999: one
    with a zone keeps its instant, one without its wall time, now in the session timezone
    ($now); NULL outside EARLIEST .. LATEST. For redress/inbox/retime.py."""
    return _bounded(f"CASE {_iso_branches(raw)} "
                    f"WHEN regexp_matches({raw}, {sql.literal(ZONED_TAIL)}) THEN {typed} "
                    f"ELSE timezone($now, timezone($earlier, {typed})) END")
