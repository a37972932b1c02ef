"""Parquet files as text columns (SPEC "Reading files", "Input: scope files").

* Parquet: typed columns are read as their text: integers, decimals, floats, booleans,
  dates and times as written by Polars; a timestamp with a zone keeps its offset, a
  naive one stays naive; lists and structs as their JSON text. A wanted column of a
  type with no faithful text (binary, duration) makes the file unreadable_file, and so
  does a timestamp in a zone that is not a zone name (a fixed offset such as '+05:30').
* row_number: the row's position, from 1.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from redress import escape
from redress.inbox.columns import header_name
from redress.inbox.files import FileRejected
from redress.vocabulary import UNREADABLE_FILE


def refuse_unknown_zones(path: Path) -> None:
    """A Parquet timestamp whose time zone Polars does not know (a fixed offset such as
    '+05:30', which Arrow allows) makes Polars panic, not raise, on reading the schema:
    refused here, naming the column, before any reading. Only the footer is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError, ValueError):
        return  # not readable as Parquet: Polars says so next, as unreadable_file
    for field in schema:
        kind = field.type
        while hasattr(kind, "value_type"):  # lists and dictionaries of timestamps
            kind = kind.value_type
        zone = getattr(kind, "tz", None)
        if not zone:
            continue
        try:
            pl.Series([0], dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone(zone)
        except pl.exceptions.PolarsError:
            raise FileRejected(
                UNREADABLE_FILE,
                f"column {escape.terminal(header_name(field.name))[:60]} is a timestamp in time zone "
                f"{escape.terminal(zone)[:40]!r}, which is not a zone name: write it in UTC or a named zone "
                "(such as Asia/Kolkata)") from None


# A column of type Null (pandas writes an all-empty column so) is all missing values:
# read as empty text, not refused.
UNTEXTABLE = (pl.Binary, pl.Duration, pl.Object)


def parquet_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A typed Parquet column as text, without loss (module docstring)."""
    col = pl.col(name)
    if isinstance(dtype, pl.Null):
        return pl.lit(None, pl.String)
    if isinstance(dtype, pl.Datetime):
        # A typed timestamp keeps its zone (written as an offset); a naive one stays
        # naive and is read in the policy's timezone, like a string without offset.
        return col.dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S%.f")
    if dtype.is_nested():
        encoded = pl.struct(col.alias("v")).struct.json_encode()  # {"v":<json>}
        return pl.when(col.is_null()).then(None).otherwise(encoded.str.slice(5).str.strip_suffix("}"))
    return col.cast(pl.String)


def has_untextable(dtype: pl.DataType) -> bool:
    if isinstance(dtype, UNTEXTABLE):
        return True
    if isinstance(dtype, pl.Struct):
        return any(has_untextable(f.dtype) for f in dtype.fields)
    if isinstance(dtype, (pl.List, pl.Array)):
        return has_untextable(dtype.inner)
    return False
