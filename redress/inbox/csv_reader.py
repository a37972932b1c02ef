"""CSV files as text columns (SPEC "Reading files").

* CSV: comma separated, '"' quoting (quoted fields may hold commas and newlines), a
  header row whose names are trimmed (empty names at its end, as Excel pads a wider
  sheet, are no names; an unnamed column inside is ignored like any unwanted column).
  A line holding nothing but delimiters and whitespace, however many, is not a row:
  not counted, not staged. A row with a value beyond the header's last name makes the
  file unreadable_file naming the row (the row is shifted: a comma in an unquoted
  value; keeping it would put values under the wrong names, dropping the extra would
  lose one). A row with fewer fields has the missing trailing fields empty, which the
  row rules then judge. A header name given twice (after trimming) is unreadable_file,
  since either column could be meant.
* row_number: the row's position among the file's data rows as a person counting
  rows sees them (spreadsheet row minus the header), blank lines included, so it may
  have gaps where blank lines were.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from redress.inbox.columns import ROW, columns_by_name, header_name
from redress.inbox.files import FileRejected
from redress.vocabulary import UNREADABLE_FILE


def _csv_width(path: Path) -> int:
    """At least the number of fields of the widest row: one more than the most commas on
    a line (read raw, quotes not parsed, so a quoted comma only makes it larger). A row
    wider still (a \x1f byte cuts a raw line short) fails loudly when read."""
    raw = pl.scan_csv(path, has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.String},
                      glob=False, encoding="utf8", truncate_ragged_lines=True)
    most = raw.select(pl.col("line").str.count_matches(",", literal=True).max()).collect().item()
    return (most or 0) + 1


def csv_frame(path: Path) -> pl.LazyFrame:
    """Every field as text, under the header's (trimmed) names; the header record is
    row 0, so row_number is the record's position. Lines of nothing but delimiters and
    whitespace are dropped after numbering; a value beyond the header's last name makes
    the file unreadable (module docstring)."""
    width = _csv_width(path)
    positions = [f"field_{i}" for i in range(width)]
    frame = pl.scan_csv(path, has_header=False, schema={c: pl.String for c in positions}, missing_columns="insert",
                        glob=False, encoding="utf8", truncate_ragged_lines=False).with_row_index(ROW)
    header = frame.head(1).collect()
    names = [header_name(v or "") for v in header.row(0)[1:]] if header.height else []
    while names and not names[-1]:
        names.pop()  # Excel pads the header with empty names when a sheet is wider
    columns_by_name([n for n in names if n])
    extra = positions[len(names):]
    data = frame.filter(pl.col(ROW) > 0)
    if extra:
        ragged = (data.filter(pl.any_horizontal(pl.col(c).str.strip_chars().fill_null("") != "" for c in extra))
                  .select(ROW).head(1).collect())
        if ragged.height:
            raise FileRejected(UNREADABLE_FILE, f"row {ragged.item()} has more fields than the header "
                                                  "(quote values that contain commas)")
    blank = pl.all_horizontal(pl.col(c).str.strip_chars().fill_null("") == "" for c in positions)
    named = [pl.col(c).alias(n) for c, n in zip(positions, names) if n]
    return data.filter(~blank).select(ROW, *named)
