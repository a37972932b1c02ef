"""An inbox file as a frame of text columns, whatever its format (SPEC "Reading files",
"File rules"): the one entry point of the readers (`read_text_frame`), and `stage` for a
frame that is written to a work file.

Each file is read with every column as text (nothing is guessed), given a 1-based
row_number, trimmed (blank = NULL); a typed Parquet timestamp also goes on typed beside
its text (SPEC "Input: scope files": taken as it is, a naive one in the policy's
timezone). Every Polars scan passes glob=False and no inbox path reaches DuckDB. The
rules per format are in `csv_reader.py`, `jsonl_reader.py` and `parquet_reader.py`.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import duckdb
import polars as pl

from redress.inbox.columns import (AS_WRITTEN, DEFAULTED, MALFORMED, ROW, columns_by_name, defaulted_look_alikes,
                                   header_name, refuse_look_alikes, typed_name)
from redress.inbox.csv_reader import MAX_BEYOND_HEADER, STRAY_QUOTE, csv_frame
from redress.inbox.files import FileRejected, format_of
from redress.inbox.hashing import BLOCK, NOT_UTF8
from redress.inbox.jsonl_reader import jsonl_frame
from redress.inbox.parquet_reader import footer_checks, has_untextable, parquet_text
from redress.inbox.parquet_reader import scan as parquet_scan
from redress.trimming import trimmed
from redress.vocabulary import EMPTY_FILE, MISSING_COLUMN, UNREADABLE_FILE


def _refuse_misnamed_defaulted(frame: pl.LazyFrame, columns: dict[str, str], wanted: tuple[str, ...]) -> None:
    """missing_column when a column holding a DEFAULTED column's name among other words
    (`confidence_level`), in a file without that column, holds one of its values
    (`suspected`, in any case) in some row: the column misnamed (columns.DEFAULTED).
    One scan of those few columns, only in a file that has such a column."""
    for meant, holding in defaulted_look_alikes(columns, wanted).items():
        values = pl.Series(DEFAULTED[meant], dtype=pl.String).implode()
        for name in holding:
            try:
                found = frame.select(pl.col(columns[name]).cast(pl.String).str.strip_chars().str.to_lowercase()
                                     .is_in(values).any()).collect().item()
            except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
                continue  # a list or struct holds no such plain value; its type is judged when read
            if found:
                raise FileRejected(MISSING_COLUMN, f"no column {meant!r}, and column {name[:60]!r} holds its values "
                                                   f"({', '.join(DEFAULTED[meant])}): name it {meant!r}")


def unreadable(exc: Exception, detail: str) -> FileRejected:
    """unreadable_file with what the sender must change, where the reader's error says it."""
    message = str(exc).lower()
    if "utf-8" in message or "utf8" in message:
        return FileRejected(UNREADABLE_FILE, NOT_UTF8)
    if "more fields" in message:  # beyond the width the reader allows (csv_reader.MAX_BEYOND_HEADER)
        return FileRejected(UNREADABLE_FILE, f"a row has more than {MAX_BEYOND_HEADER} fields beyond the header, so "
                                               "the file cannot be read row by row (quote values that contain commas)")
    if "not properly escaped" in message:  # Polars' words for a quote opened and never closed
        return FileRejected(UNREADABLE_FILE, "a quoted value is never closed (a \" with no closing \"): "
                                               "close the quote, or double a quote inside a value (\"\")")
    if "csv malformed" in message:  # Polars' words for a quote inside an unquoted value, among others
        return FileRejected(UNREADABLE_FILE, STRAY_QUOTE)
    return FileRejected(UNREADABLE_FILE, f"{detail}: {type(exc).__name__}")  # never the error's text: it quotes rows


def _refuse_cr_line_ends(path: Path) -> None:
    """Old Mac exports end lines with a lone CR, which no CSV or JSON Lines reader takes
    as a line end: the whole file would read as one header line and look empty."""
    with path.open("rb") as fh:
        head = fh.read(BLOCK)
    if b"\r" in head and b"\n" not in head:
        raise FileRejected(UNREADABLE_FILE, "its lines end with a lone CR (old Mac line ends): "
                                              "save it with Windows (CRLF) or Unix (LF) line ends")


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _refuse_other_separators(fmt: str, columns: dict[str, str], required: tuple[str, ...]) -> None:
    """A CSV whose one header name holds every required name split by another separator
    (European Excel saves with `;`) is unreadable_file saying so, not a missing column."""
    if fmt != "csv" or len(columns) != 1:
        return
    (only,) = columns
    for separator, called in SEPARATORS.items():
        names = {header_name(n) for n in only.split(separator)}
        if len(names) > 1 and all(c in names for c in required):
            raise FileRejected(UNREADABLE_FILE, f"its values are separated by {called}, not commas: "
                                                  "save it as CSV with commas (Excel: CSV UTF-8, comma delimited)")


def _every_line_malformed(frame: pl.LazyFrame) -> bool:
    """A JSON Lines frame read with `malformed` (in memory: jsonl_frame collects it) has
    no sound line."""
    return frame.select(pl.col(MALFORMED).is_not_null().all()).collect().item()


def read_text_frame(path: Path, required: tuple[str, ...], wanted: tuple[str, ...],
                    typed: tuple[str, ...] = (), malformed: bool = False, line_per_row: bool = True,
                    scratch: Path | None = None, digits_as_written: tuple[str, ...] = ()) -> pl.LazyFrame:
    """The file as text columns `wanted` (missing optional ones as NULL), trimmed, blank
    as NULL, with a 1-based row_number (Int64), as the module docstring says per format.
    Each column of `typed` that the file holds as a typed Parquet timestamp is also
    passed on as it is (zone or not), under `typed_name(column)`, after the text ones.
    With `malformed` (SPEC "Input: returns from finance" quarantines a malformed row,
    never the file; scope files too, so that one odd row never holds back the others), a
    CSV row with fields beyond the header or a JSON Lines line that is no object (or
    gives a key twice) is kept, a column `malformed` (String) says what is wrong with it
    and a last one `as_written` holds it as written (both NULL for a sound row, and
    always in Parquet); a JSON Lines file of nothing but such lines is its rows, not a
    missing column. `line_per_row` (files of one result per line: returns and claims)
    also marks a CSV value holding a line break (csv_reader.csv_frame). With `malformed`
    and a folder `scratch` for a work file, a CSV line with a stray quote is such a row
    too (csv_reader.csv_frame; without `scratch` it makes the file unreadable_file).
    A column of `digits_as_written` (digits whose leading zeros matter: an account, a
    bank code, a phone) that a Parquet file types as a number, or a JSON Lines file gives
    as a number in any line, makes it unreadable_file: a number keeps no leading zero,
    so its text is not the value as written.
    Raises FileRejected (unreadable_file, empty_file, missing_column: SPEC "File rules")."""
    fmt = format_of(path.name)
    if fmt is None:
        raise FileRejected(UNREADABLE_FILE, f"unknown file type {path.suffix[:20]!r} (use .csv, .parquet or .jsonl)")
    if path.stat().st_size == 0:
        raise FileRejected(EMPTY_FILE, "the file is empty")
    if fmt in ("csv", "jsonl"):
        _refuse_cr_line_ends(path)
    uuids: frozenset[str] = frozenset()
    try:
        if fmt == "csv":
            frame = csv_frame(path, malformed, line_per_row, scratch)
        elif fmt == "parquet":
            footer = footer_checks(path)
            uuids = footer.uuids
            frame = parquet_scan(path, footer).with_row_index(ROW, offset=1)
        else:
            frame = jsonl_frame(path, malformed, wanted, digits_as_written)
        schema = frame.collect_schema()
    except FileRejected:
        raise
    except pl.exceptions.NoDataError:
        raise FileRejected(EMPTY_FILE, "the file is empty") from None
    except (pl.exceptions.PolarsError, duckdb.Error, pl.exceptions.PanicException) as exc:
        # not OSError: a share that drops is retried by the task, never quarantined.
        # A panic of Polars on a file's content is that file's fault, never the run's.
        raise unreadable(exc, f"cannot be read as {fmt}") from None
    columns = columns_by_name([n for n in schema.names() if n not in (ROW, MALFORMED, AS_WRITTEN)], wanted)
    refuse_look_alikes(columns, wanted)
    _refuse_misnamed_defaulted(frame, columns, wanted)
    missing = [c for c in required if c not in columns]
    if missing and malformed and fmt == "jsonl" and _every_line_malformed(frame):
        missing = []  # no sound line to hold a key: each line is quarantined as what it is
    if missing:
        _refuse_other_separators(fmt, columns, required)
        raise FileRejected(MISSING_COLUMN, f"missing column(s): {', '.join(missing)}")

    def text(name: str) -> pl.Expr:
        if name not in columns:
            return pl.lit(None, pl.String).alias(name)
        dtype = schema[columns[name]]
        uuid = fmt == "parquet" and columns[name] in uuids
        if has_untextable(dtype) and not uuid:
            raise FileRejected(UNREADABLE_FILE, f"column {name} is of type {dtype}, which has no text form")
        if fmt == "parquet" and name in digits_as_written and dtype.is_numeric():
            # found by review: an account typed int64 was paid as its digits, which had
            # lost any leading zero (another account); a phone so typed matched no one
            raise FileRejected(UNREADABLE_FILE, f"column {name} is of type {dtype}: a number keeps no leading zero, "
                                                f"so it is not the {name} as written; write the column as text")
        as_text = parquet_text(columns[name], dtype, uuid) if fmt == "parquet" else pl.col(columns[name])
        return trimmed(as_text).alias(name)

    # A typed timestamp also goes on typed (SPEC: "taken as it is"), so the warehouse
    # does not parse back the text it was printed as; the text stays for quarantine.
    # Cut to microseconds here, as its text is when parsed: DuckDB rounds a nanosecond
    # timestamp on its cast to TIMESTAMPTZ, which can carry 23:59:59.9999996 to the
    # next day, out of a window its text is in. (cast_time_unit floors, as the text's
    # cut digits do, before 1970 too.)
    kept = [pl.col(columns[c]).dt.cast_time_unit("us").alias(typed_name(c)) for c in typed
            if c in columns and isinstance(schema[columns[c]], pl.Datetime)]
    said = [(pl.col(c) if c in schema.names() else pl.lit(None, pl.String)).alias(name)
            for c, name in ((MALFORMED, "malformed"), (AS_WRITTEN, "as_written"))] if malformed else []
    return frame.select(pl.col(ROW).cast(pl.Int64).alias("row_number"), *(text(c) for c in wanted), *kept, *said)


def sink(frame: pl.LazyFrame, target: Path, **options) -> None:
    """`frame.sink_parquet(target, **options)`, streaming. A reading error that only
    shows once the data is read makes the file unreadable (FileRejected); but Polars
    reports a failed write the same way (a full disk is a ComputeError, "No space left on
    device"), and that is not the sender's fault. So on a Polars error the frame is read
    again alone: if that fails too, the file is unreadable; if not, the writing failed,
    raised as OSError (one line; the task retries I/O errors, then stops)."""
    try:
        frame.sink_parquet(target, **options)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        try:
            # Every column computed, nothing kept or written. Not collect_batches(): it
            # ends quietly (no batch, no error) when Polars' engine panics, as on a
            # Parquet timestamp out of Polars' range.
            frame.select(pl.all().null_count()).collect(engine="streaming")
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as reading:
            raise unreadable(reading, "cannot be read") from None
        # With its errno (Polars says "os error 28"), so that the run record and the
        # command line say it in one line (redress/runtime/machine_errors.py).
        code = re.search(r"os error (\d+)", str(exc))
        raise OSError(int(code[1]) if code else errno.EIO,
                      f"could not write the work file: {str(exc).splitlines()[0]}", str(target)) from None


def stage(frame: pl.LazyFrame, target: Path) -> int:
    """Write the frame as Parquet (streaming, `sink`) and return its row count; reading
    errors that only show once the data is read make the file unreadable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sink(frame, target)
    rows = pl.scan_parquet(target, glob=False).select(pl.len()).collect().item()
    if rows == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    return rows
