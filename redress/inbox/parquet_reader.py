"""Parquet files as text columns (SPEC "Reading files", "Input: scope files").

* Parquet: typed columns are read as their text: integers, decimals, floats, booleans,
  dates and times as written by Polars; a timestamp with a zone keeps its offset, a
  naive one stays naive; lists and structs as their JSON text; UUIDs in their canonical
  text. A wanted column of a type with no faithful text (binary, duration) makes the file
  unreadable_file, and so does any column of an interval type, which Polars cannot
  read. A timestamp in a zone Polars does not know (a fixed offset such as '+05:30') is
  read as the UTC instant Arrow stores (`footer_checks`).
* row_number: the row's position, from 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from redress import escape
from redress.inbox.columns import header_name
from redress.inbox.files import FileRejected
from redress.vocabulary import UNREADABLE_FILE


@dataclass(frozen=True)
class Footer:
    """What footer_checks found: the columns of Parquet's UUID type, and the timestamp
    columns whose time zone Polars cannot read (`relabelled`, read as UTC)."""
    uuids: frozenset[str] = frozenset()
    relabelled: frozenset[str] = frozenset()


def footer_checks(path: Path) -> Footer:
    """What the footer says before Polars reads a Parquet file; only the footer is read.
    Returns the names of the columns of Parquet's UUID type, which Polars reads as 16
    bytes: `parquet_text` writes them in their canonical text (found by review: a
    customer_id column of UUIDs refused a whole snapshot); and of the timestamp columns
    in a time zone Polars does not know (a fixed offset such as '+05:30' or 'Z', which
    Arrow allows, or a name it lacks), which `scan` reads as UTC: Arrow keeps such a
    timestamp as a UTC instant whatever its zone says, so the instant is taken as it is
    (SPEC "A timestamp column already typed with a zone is taken as it is"; found by
    review: such a file was refused whole), inside lists, structs and maps too. Raises
    FileRejected (unreadable_file, naming the column) for what makes Polars panic, not
    raise, on reading the schema: an interval column (found by review: an extra column
    of intervals gave the detail "PanicException"), and a column name given twice
    (Polars' detail was "DuplicateError", naming nothing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        leaves = pq.read_metadata(path).schema
    except (pa.ArrowException, OSError, ValueError):
        return Footer()  # not readable as Parquet: Polars says so next, as unreadable_file
    seen: set[str] = set()
    for field in schema:  # Polars cannot read such a file at all, even to leave the column out
        if field.name in seen:
            raise FileRejected(UNREADABLE_FILE, f"column {escape.terminal(header_name(field.name))[:60]!r} is given "
                                                "twice, which a Parquet reader cannot tell apart: rename one")
        seen.add(field.name)
    for i in range(len(leaves)):  # Arrow reads an interval as 12 bytes: Parquet's own type says it
        if leaves.column(i).converted_type == "INTERVAL":
            raise FileRejected(UNREADABLE_FILE, f"column {escape.terminal(header_name(leaves.column(i).path))[:60]} "
                                                "is of an interval type, which this reader cannot read, even to "
                                                "ignore it: drop the column or write it as text")
    uuids, relabelled = set(), set()
    for field in schema:
        if getattr(field.type, "extension_name", None) == "arrow.uuid":
            uuids.add(field.name)
        elif _in_utc(field.type) != field.type:
            relabelled.add(field.name)
    return Footer(frozenset(uuids), frozenset(relabelled))


def _in_utc(kind):
    """The Arrow type `kind` with every timestamp in a zone Polars does not know made UTC,
    inside lists, structs and maps too (found by review: an extra struct column of such
    timestamps made Polars panic, and a list refused the file), the same instants."""
    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        return pa.timestamp(kind.unit, tz="UTC") if kind.tz and not _polars_knows(kind.tz) else kind
    if pa.types.is_map(kind):
        return pa.map_(_in_utc(kind.key_type), _in_utc(kind.item_type), kind.keys_sorted)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        inner = kind.value_field.with_type(_in_utc(kind.value_type))
        if pa.types.is_fixed_size_list(kind):
            return pa.list_(inner, kind.list_size)
        return pa.large_list(inner) if pa.types.is_large_list(kind) else pa.list_(inner)
    if pa.types.is_struct(kind):
        return pa.struct([kind.field(i).with_type(_in_utc(kind.field(i).type)) for i in range(kind.num_fields)])
    return kind


def _polars_knows(zone: str) -> bool:
    try:
        pl.Series([0], dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone(zone)
    except pl.exceptions.PolarsError:
        return False
    return True


def scan(path: Path, footer: Footer) -> pl.LazyFrame:
    """The Parquet file as a LazyFrame: Polars' own scan, or, when a timestamp column is
    in a zone Polars cannot read (footer.relabelled), Arrow's dataset reader with those
    columns in UTC, the same instants (footer_checks); Arrow reads such a file whole,
    in file order."""
    if not footer.relabelled:
        return pl.scan_parquet(path, glob=False)
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    utc = pa.schema([f.with_type(_in_utc(f.type)) if f.name in footer.relabelled else f for f in schema])
    return pl.scan_pyarrow_dataset(ds.dataset(str(path), schema=utc, format="parquet"))


# A column of type Null (pandas writes an all-empty column so) is all missing values:
# read as empty text, not refused.
UNTEXTABLE = (pl.Binary, pl.Duration, pl.Object)


def parquet_text(name: str, dtype: pl.DataType, uuid: bool = False) -> pl.Expr:
    """A typed Parquet column as text, without loss (module docstring); `uuid`: a
    column of Parquet's UUID type (footer_checks), in its canonical text, lowercase
    8-4-4-4-12 hexadecimal digits."""
    col = pl.col(name)
    if uuid:
        hexa = col.bin.encode("hex").str.to_lowercase()
        return pl.concat_str([hexa.str.slice(0, 8), hexa.str.slice(8, 4), hexa.str.slice(12, 4),
                              hexa.str.slice(16, 4), hexa.str.slice(20, 12)], separator="-")
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
