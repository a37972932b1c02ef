"""The streaming load of a read file into DuckDB (SPEC "Reading files"): a frame from the
readers is read once (Polars, streaming) and written once (into the warehouse), never
staged, which parses the timestamps: an offset is honoured, a timestamp without one is
in the policy's timezone (`ts`). Used by `customers.py` and `scope.py`; no path is
spliced into SQL text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from redress import sql
from redress.inbox.columns import typed_name
from redress.inbox.text_frame import unreadable

# ISO 8601 as the SPEC allows it: a date, optional time, optional offset. DuckDB alone
# would also take forms like 2025/07/01, which forensics files must not rely on.
ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s?(Z|[+-]\d{2}(:?\d{2})?)?$"


# Rows per Arrow batch handed from Polars to DuckDB: bounds what is held between them.
BATCH_ROWS = 1 << 17


class FrameStream:
    """A LazyFrame as a stream of Arrow batches that DuckDB reads as a table, so a file
    is read once (Polars, streaming) and written once (into the warehouse), never staged.
    Memory is bounded by a few batches. A reading error that only shows once the data is
    read (a ragged CSV row, a broken Parquet page) is kept in `error`: DuckDB reports it
    as its own error, and `rejected` turns it back into the file's unreadable_file."""

    def __init__(self, frame: pl.LazyFrame):
        self.frame = frame
        self.error: Exception | None = None

    def reader(self):
        import pyarrow as pa

        schema = pl.DataFrame(schema=self.frame.collect_schema()).to_arrow().schema

        def batches():
            try:
                for chunk in self.frame.collect_batches(chunk_size=BATCH_ROWS):
                    yield from chunk.to_arrow().to_batches()
            except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
                self.error = exc
                raise

        return pa.RecordBatchReader.from_batches(schema, batches())

    def failure(self) -> Exception | None:
        """Why the stream stopped, as the caller must see it: the file's FileRejected when
        Polars failed on its content, an OSError as it is (a share that drops is retried
        by the task, never quarantined), None when the stream did not fail."""
        if isinstance(self.error, (pl.exceptions.PolarsError, pl.exceptions.PanicException)):
            return unreadable(self.error, "cannot be read")
        return self.error


def source_frame(source: Path | pl.LazyFrame) -> pl.LazyFrame:
    # A Path is a staged Parquet of our own (tests, older callers): read as it was written.
    return pl.scan_parquet(source, glob=False) if isinstance(source, Path) else source


def load_frame(con: duckdb.DuckDBPyConnection, frame: pl.LazyFrame, sql_text: str, params: list) -> int:
    """Run `sql_text`, which reads the frame as the table `src`, with `params`; returns
    the rows it wrote. A failure of the file's own content is FileRejected; any other
    DuckDB error goes up as it is (a full disk is not the sender's fault)."""
    stream = FrameStream(frame)
    con.register("src", stream.reader())  # replaces the one a failed load left
    try:
        rows = con.execute(sql_text, params).fetchall()[0][0]
    except duckdb.Error:
        # Nothing more can run in a failed transaction (not even unregister) until the
        # caller rolls back; the view goes with the connection or the next load.
        failure = stream.failure()
        if failure is not None:
            raise failure from None
        raise
    con.unregister("src")
    return rows


@contextmanager
def loading(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Settings for loading files, wrapped around a whole transaction: DuckDB on one
    thread, and on leaving, its thread count restored and the session back in UTC (a
    loader sets the policy's timezone; no SET can run in a failed transaction, so the
    caller rolls back inside this block). One thread appends whole row groups in the
    stream's order; several each leave partial row groups that the commit's checkpoint
    rewrites: measured on 6.4M scope rows, twice the CPU and a warehouse file twice the
    size. Several threads also lose the stream's order (DuckDB's scan of an Arrow stream
    hands batches to threads as they come): a customers snapshot loaded on two came back
    in a different row order on every run. Polars reads the file on its own threads meanwhile."""
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute("SET threads = ?", [threads])
        con.execute("SET TimeZone = 'UTC'")


def ts(col: str, schema: pl.Schema | None = None) -> str:
    """SQL: the column as TIMESTAMPTZ in the session timezone. A typed timestamp that
    `read_text_frame` passed on (`typed_name`, in `schema`) is taken as it is (a naive
    one in the session timezone); text is NULL unless ISO 8601."""
    if schema is not None and typed_name(col) in schema:
        return f"CAST({sql.identifier(typed_name(col))} AS TIMESTAMPTZ)"
    return f"CASE WHEN regexp_full_match({col}, {sql.literal(ISO_8601)}) THEN TRY_CAST({col} AS TIMESTAMPTZ) END"
