"""CSV files as text columns (SPEC "Reading files").

* CSV: comma separated, '"' quoting (quoted fields may hold commas and newlines), a
  header row whose names are trimmed (empty names at its end, as Excel pads a wider
  sheet, are no names; an unnamed column inside is ignored like any unwanted column).
  A line holding nothing but delimiters and whitespace, however many, is not a row:
  not counted, not staged. A row with a value beyond the header's last name makes the
  file unreadable_file naming the row (the row is shifted: a comma in an unquoted
  value; keeping it would put values under the wrong names, dropping the extra would
  lose one). A reader of scope files and of finance's and customer service's files
  asks for such rows to be marked instead (`malformed=True`): the row is kept, with a
  column saying what is wrong, for its checks to quarantine the row alone, so one
  odd row never holds back the file's others. Finance's and customer service's files
  (one row, one payment: SPEC "Input: returns from finance") also take a value holding
  a line break as malformed (`line_per_row=True`): one result per line, so a quoted
  line break is far more likely a quote left open, closed lines later, that took the
  rows between; a scope row's free-text source may hold one.
  A row with fewer fields has the missing trailing fields empty, which the
  row rules then judge. A header name given twice (after trimming) is unreadable_file,
  since either column could be meant.
* row_number: the row's position among the file's data rows as a person counting
  rows sees them (spreadsheet row minus the header), blank lines included, so it may
  have gaps where blank lines were.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from redress.inbox.columns import AS_WRITTEN, MALFORMED, ROW, columns_by_name, header_name
from redress.inbox.files import FileRejected
from redress.vocabulary import UNREADABLE_FILE


# A CSV is read with as many columns as its widest record, for every row: a record far
# wider than the header (a line of commas, or quotes the count below cannot pair) would
# make each row of a file of millions that wide (1,500 fields took 4.5 GB for 500 rows).
# A row with more than these fields beyond the header makes the file unreadable.
MAX_BEYOND_HEADER = 32
# Raw lines are read split at a byte no accepted text file holds (a NUL makes the file
# unreadable while it is hashed: redress/inbox/hashing.py), so no line is cut short.
RAW_SEPARATOR = "\x00"


def raw_lines(path: Path, truncate: bool) -> pl.LazyFrame:
    """The file's lines as one String column `line`, quotes not parsed."""
    return pl.scan_csv(path, has_header=False, separator=RAW_SEPARATOR, quote_char=None, schema={"line": pl.String},
                       glob=False, encoding="utf8", truncate_ragged_lines=truncate)


def _csv_width(path: Path) -> tuple[int, bool]:
    """(width, truncate). The width is at least the number of fields of the widest row,
    at most the header's fields plus MAX_BEYOND_HEADER: one more than the most commas in
    a record (read raw, so a quoted comma only makes it larger). A record is a line, or,
    when a quoted value holds a line break, the lines until its quote closes: a line
    ends inside a quote when the quotes up to its end are odd in number (a doubled quote
    inside a value counts two).

    `truncate` is true when the cap was reached only by lines of nothing but commas and
    whitespace (not rows: module docstring) or by a record over
    several lines: the reader may then cut what lies beyond the width, which in a blank
    line is empty, and in a record of several lines lies after 32 fields beyond the
    header, whose visible ones mark it malformed when any holds a value. When one line
    alone has more commas than the cap, nothing is cut: the reader refuses the file if
    that line is a row so wide (its commas may be quoted ones)."""
    raw = raw_lines(path, truncate=True)
    line = pl.col("line").fill_null("")
    commas, quotes = line.str.count_matches(",", literal=True), line.str.count_matches('"', literal=True)
    sound = pl.when(line.str.contains(r"[^,\s]")).then(commas).otherwise(0)  # a blank line's count as 0
    # A record's commas: the running count at each line where the quotes so far are even
    # (the record closes there), less the count where the record before closed.
    closed = commas.cum_sum().filter(quotes.cum_sum() % 2 == 0)
    header, single, most = raw.select(
        commas.first().alias("header"), sound.max().alias("single"),
        pl.max_horizontal(commas.max(), closed.diff().fill_null(closed.first()).max()).alias("most"),
    ).collect().row(0)
    cap = (header or 0) + MAX_BEYOND_HEADER  # in commas
    most = most or 0
    return min(most, cap) + 1, most > cap and (single or 0) <= cap


BEYOND_HEADER = "more fields than the header (quote values that contain commas)"
SPANS_LINES = ("a value holds a line break (a quote opened on one line and closed lines later takes in the rows "
               "between): write each result on a line of its own")
STRAY_QUOTE = ('a " inside a value that does not start with one, or a quoted value never closed: quote the '
               'whole value and double each " inside it (5" rain as "5"" rain")')


# One CSV field and what ends it: a quoted value (quotes inside doubled, line breaks and
# commas allowed) or an unquoted one without quotes; then a comma, a line end or the end.
_FIELD = re.compile(r'(?:"(?:[^"]|"")*"|[^,"\r\n]*)(?:,|\r\n|\n|\r|\Z)')


def stray_quote_line(path: Path) -> int | None:
    """The line (1-based, the header's included) where the file stops being CSV as
    RFC 4180 writes it: a quote inside an unquoted value, or one opened and never
    closed; None if it is CSV throughout. Quote-aware (a quoted comma or line break
    before it moves nothing), a field at a time: only asked once the reader has
    failed, of a file of one row per payment."""
    text = path.read_text(encoding="utf-8-sig")
    position = 0
    while position < len(text):
        field = _FIELD.match(text, position)
        if field is None or field.end() == position:
            return text.count("\n", 0, position) + 1 if "\n" in text else text.count("\r", 0, position) + 1
        position = field.end()
    return None


def refuse_unparsed(path: Path, frame: pl.LazyFrame) -> None:
    """Parse the whole file now, so that a quote the reader cannot take (5" rain) is
    refused naming the line, rather than as the reader's error later: for files of one
    row per payment, which are small. FileRejected (unreadable_file)."""
    try:
        frame.select(pl.all().null_count()).collect()  # every field parsed (a row count alone is not)
    except pl.exceptions.ComputeError as exc:
        if "malformed" not in str(exc).lower() and "escaped" not in str(exc).lower():
            raise
        line = stray_quote_line(path)
        raise FileRejected(UNREADABLE_FILE, f"line {line} has {STRAY_QUOTE}" if line else STRAY_QUOTE) from None


def csv_frame(path: Path, malformed: bool = False, line_per_row: bool = True) -> pl.LazyFrame:
    """Every field as text, under the header's (trimmed) names; the header record is
    row 0, so row_number is the record's position. Lines of nothing but delimiters and
    whitespace are dropped after numbering; a value beyond the header's last name makes
    the file unreadable (module docstring), or with `malformed` puts, in a column
    MALFORMED (String; NULL for a sound row) BEYOND_HEADER, and in a last one AS_WRITTEN
    the record as written (its fields re-joined by commas, quoted where they must be;
    NULL for a sound row), which only a caller whose files hold no bank details shows.
    With `malformed` and `line_per_row` (files of one result per line, which are small)
    a value holding a line break is SPANS_LINES too, and the whole file is parsed at once
    so that a stray quote is refused naming its line (`refuse_unparsed`)."""
    width, truncate = _csv_width(path)
    positions = [f"field_{i}" for i in range(width)]
    frame = pl.scan_csv(path, has_header=False, schema={c: pl.String for c in positions}, missing_columns="insert",
                        glob=False, encoding="utf8", truncate_ragged_lines=truncate).with_row_index(ROW)
    if malformed and line_per_row:
        refuse_unparsed(path, frame)
    header = frame.head(1).collect()
    names = [header_name(v or "") for v in header.row(0)[1:]] if header.height else []
    while names and not names[-1]:
        names.pop()  # Excel pads the header with empty names when a sheet is wider
    columns_by_name([n for n in names if n])
    extra = positions[len(names):]
    data = frame.filter(pl.col(ROW) > 0)
    beyond = pl.any_horizontal(pl.col(c).str.strip_chars().fill_null("") != "" for c in extra) if extra else pl.lit(False)
    if extra and not malformed:
        ragged = data.filter(beyond).select(ROW).head(1).collect()
        if ragged.height:
            raise FileRejected(UNREADABLE_FILE, f"row {ragged.item()} has {BEYOND_HEADER}")
    blank = pl.all_horizontal(pl.col(c).str.strip_chars().fill_null("") == "" for c in positions)
    named = [pl.col(c).alias(n) for c, n in zip(positions, names) if n]
    if not malformed:
        return data.filter(~blank).select(ROW, *named)
    if not extra and not line_per_row:
        # No row can be wider than the header: nothing to mark, and no record to re-join
        # (Polars would build both branches of a when for every row of a scope file).
        none = pl.lit(None, pl.String)
        return data.filter(~blank).select(ROW, *named, none.alias(MALFORMED), none.alias(AS_WRITTEN))
    # One row per payment: a value spanning lines is a quote left open, most likely, whose
    # closing quote lines later took the rows between into it (they are in as_written).
    spans = (pl.any_horizontal(pl.col(c).str.contains("[\r\n]").fill_null(False) for c in positions)
             if line_per_row else pl.lit(False))
    said = (pl.when(beyond).then(pl.lit(BEYOND_HEADER)).when(spans).then(pl.lit(SPANS_LINES))
            .otherwise(pl.lit(None, pl.String)))

    def field(c: str) -> pl.Expr:
        value = pl.col(c).fill_null("")
        return pl.when(value.str.contains('[",\r\n]')).then('"' + value.str.replace_all('"', '""', literal=True) + '"') \
            .otherwise(value)

    record = pl.concat_str([field(c) for c in positions], separator=",").str.strip_chars_end(",")
    written = pl.when(beyond | spans).then(record).otherwise(pl.lit(None, pl.String))
    return data.filter(~blank).select(ROW, *named, said.alias(MALFORMED), written.alias(AS_WRITTEN))
