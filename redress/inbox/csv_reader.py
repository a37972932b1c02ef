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
  A quote inside a value that does not start with one is a character of the value
  (`5" rain`), as Excel, DuckDB and Python's csv module read it. A stray quote (text
  after a closing quote, a quote never closed) makes its line a malformed row alone for
  those same readers, and the file unreadable_file for a customers snapshot, naming the
  line (`line_repairs`, `csv_frame`).
  A row with fewer fields has the missing trailing fields empty, which the
  row rules then judge. A header name given twice (after trimming) is unreadable_file,
  since either column could be meant.
* row_number: the row's position among the file's data rows as a person counting
  rows sees them (spreadsheet row minus the header), blank lines included, so it may
  have gaps where blank lines were.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
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


def _csv_width(path: Path) -> tuple[int, bool, bool, int | None]:
    """(width, truncate, irregular, wide). The width is at least the number of fields of the widest row,
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
    that line is a row so wide (its commas may be quoted ones). `irregular`: some quote
    may be stray (`irregular_quotes`), found in the same pass. `wide`: the width, when
    one line alone has more commas than it (None otherwise)."""
    raw = raw_lines(path, truncate=True)
    line = pl.col("line").fill_null("")
    commas, quotes = line.str.count_matches(",", literal=True), line.str.count_matches('"', literal=True)
    sound = pl.when(line.str.contains(r"[^,\s]")).then(commas).otherwise(0)  # a blank line's count as 0
    # A record's commas: the running count at each line where the quotes so far are even
    # (the record closes there), less the count where the record before closed.
    closed = commas.cum_sum().filter(quotes.cum_sum() % 2 == 0)
    header, single, most, irregular = raw.select(
        commas.first().alias("header"), sound.max().alias("single"),
        pl.max_horizontal(commas.max(), closed.diff().fill_null(closed.first()).max()).alias("most"),
        irregular_quotes(line, quotes).alias("irregular"),
    ).collect().row(0)
    cap = (header or 0) + MAX_BEYOND_HEADER  # in commas
    most = most or 0
    wide = cap + 1 if (single or 0) > cap else None
    return min(most, cap) + 1, most > cap and (single or 0) <= cap, bool(irregular), wide


BEYOND_HEADER = "more fields than the header (quote values that contain commas)"
SPANS_LINES = ("a value holds a line break (a quote opened on one line and closed lines later takes in the rows "
               "between): write each result on a line of its own")
STRAY_QUOTE = ('a stray " (text after a closing quote, or a quote never closed): quote the whole value and '
               'double each " inside it (5" rain as "5"" rain")')
QUOTE_INSIDE = ('a " inside a value that does not start with one, and the work folder to read it as written is '
                'missing: quote the whole value and double each " inside it (5" rain as "5"" rain")')


# Quotes. A value that starts with a quote is quoted: it ends at the next lone quote,
# which a comma or the record's end must follow, and holds its quotes doubled. A quote
# inside a value that does not start with one is a character of the value (`5" rain`),
# as Excel, DuckDB and Python's csv module read it; Polars reads it so only when the
# record's quotes are even in number, and fails on the file otherwise. A stray quote is
# text after a closing quote (`"5" rain`) or a quote opened and never closed: which
# value it meant is a guess. A raw line is judged as if it began outside a quoted value
# and as if inside one; a record of several lines opens a quoted value, has lines wholly
# inside it, and closes it.
_QUOTED = r'"(?:[^"]|"")*"'
_PLAIN = r'(?:[^,"][^,"]*)?'        # a value without quotes
_AS_WRITTEN = r'(?:[^,"][^,]*)?'    # ... or with quotes inside, read as characters
_ONE = rf"(?:{_QUOTED}|{_PLAIN})"
_ANY = rf"(?:{_QUOTED}|{_AS_WRITTEN})"
_OPEN = r'"(?:[^"]|"")*'    # a quote opened and not closed on the line
_WITHIN = r'(?:[^"]|"")*'   # text inside a quoted value: its quotes doubled
WHOLE = rf"^{_ONE}(?:,{_ONE})*$"
WHOLE_AS_WRITTEN = rf"^{_ANY}(?:,{_ANY})*$"
OPENS = rf"^(?:{_ONE},)*{_OPEN}$"
INSIDE = rf"^{_WITHIN}$"
CLOSES = rf'^{_WITHIN}"(?:,{_ONE})*$'
REOPENS = rf'^{_WITHIN}"(?:,{_ONE})*,{_OPEN}$'
_FROM_OUTSIDE = rf"^(?:{_ONE},)*(?:{_ONE}|{_OPEN})$"  # WHOLE or OPENS
_FROM_INSIDE = rf'^{_WITHIN}(?:"(?:,{_ONE})*(?:,{_OPEN})?)?$'  # INSIDE, CLOSES or REOPENS
# One field and the comma before it, in a line that is WHOLE_AS_WRITTEN with a comma put
# before it: every match is one field, none empty.
_FIELD_AFTER_COMMA = rf",(?:{_QUOTED}|{_AS_WRITTEN})"
# What each raw line with a quote is, read from outside a quoted value and from inside
_OUT_WHOLE, _OUT_AS_WRITTEN, _OUT_OPENS, _OUT_BAD = 0, 1, 2, 3
_IN_INSIDE, _IN_CLOSES, _IN_REOPENS, _IN_BAD = 0, 1, 2, 3
# A line the reader cannot take, in the copy it reads instead (`repaired_copy`): one
# quoted field, NUL (a byte no accepted file holds), a letter saying why (STRAY_QUOTE,
# BEYOND_HEADER) and the line as written.
MARK = "\x00"
STRAY_MARK, WIDE_MARK = MARK + "S", MARK + "W"


def _line_classes(line: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(from outside, from inside) for lines holding a quote."""
    out = (pl.when(line.str.contains(WHOLE)).then(_OUT_WHOLE)
           .when(line.str.contains(WHOLE_AS_WRITTEN)).then(_OUT_AS_WRITTEN)
           .when(line.str.contains(OPENS)).then(_OUT_OPENS).otherwise(_OUT_BAD).cast(pl.Int8))
    inside = (pl.when(line.str.contains(INSIDE)).then(_IN_INSIDE).when(line.str.contains(CLOSES)).then(_IN_CLOSES)
              .when(line.str.contains(REOPENS)).then(_IN_REOPENS).otherwise(_IN_BAD).cast(pl.Int8))
    return out, inside


def irregular_quotes(line: pl.Expr, quotes: pl.Expr) -> pl.Expr:
    """True when some line is not what the quotes before it make it (read as CSV from
    where the record before left off: inside a quoted value after an odd count; a quote
    inside an unquoted value counts as irregular), or the file ends inside a quoted
    value: the reader may then fail (`line_repairs` finds which lines to repair). An
    aggregate; only lines with a quote are matched, each with one pattern."""
    within = (quotes.cum_sum() - quotes) % 2 == 1
    outside_ok = line.filter((quotes > 0) & ~within).str.contains(_FROM_OUTSIDE).all()
    inside_ok = line.filter((quotes > 0) & within).str.contains(_FROM_INSIDE).all()
    return ~(outside_ok & inside_ok) | (quotes.sum() % 2 == 1)


class Repairs(NamedTuple):
    """Lines (0-based, the header's included; sorted numpy arrays) the reader cannot take
    as they are (`line_repairs`)."""
    stray: np.ndarray       # no CSV record: a stray quote
    wide: np.ndarray        # a record of one line with more fields than the reader's width
    as_written: np.ndarray  # a record of one line with a quote inside an unquoted value


def line_repairs(path: Path, max_fields: int | None = None) -> Repairs:
    """The lines to repair: holding a stray quote (module comment at WHOLE), and the
    records of one line with more fields than `max_fields` (when given; their quoted
    commas are not counted) or with a quote inside an unquoted value, which must be
    quoted for Polars to read them as written. Read as a person would read them: from
    the top, a record of several lines is taken only when its quote closes as CSV says,
    no quote inside an unquoted value of its first or last line; when it does not (the
    file ends, or a line inside it is no continuation), the line that opened it is the
    stray one and the lines after it are read again as records of their own. A Python
    loop over the lines that open a quoted value only (a record of several lines, or a
    quote at a value's start never closed); every other line is judged in Polars."""
    raw = raw_lines(path, truncate=True).with_row_index("i")
    line = pl.col("line").fill_null("")
    classes = raw.filter(line.str.contains('"', literal=True)).select(
        "i", *(c.alias(n) for c, n in zip(_line_classes(line), ("out", "inside")))).collect()
    i, out, inside = (classes[c].to_numpy() for c in ("i", "out", "inside"))
    events = np.flatnonzero(inside != _IN_INSIDE)  # positions in `classes` where a quoted value may end
    starts, ends = [], []
    after = 0  # the first line not yet read
    for o in np.flatnonzero(out == _OUT_OPENS):
        if i[o] < after:
            continue  # inside a record of several lines taken already
        k = o
        while True:
            e = np.searchsorted(events, k, side="right")
            if e == len(events) or inside[events[e]] == _IN_BAD:
                after = i[o] + 1  # never closed as CSV: the opening line alone is stray
                break
            k = events[e]
            if inside[k] == _IN_CLOSES:
                starts.append(i[o])
                ends.append(i[k])
                after = i[k] + 1
                break
    starts, ends = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)

    def covered(ids: np.ndarray) -> np.ndarray:
        at = np.searchsorted(starts, ids, side="right") - 1
        return (at >= 0) & (ids <= ends[np.maximum(at, 0)]) if len(starts) else np.zeros(len(ids), dtype=bool)

    wide = np.array([], dtype=np.uint32)
    if max_fields is not None:
        # lines with more commas than that: their fields counted, quoted commas apart
        fields = (pl.lit(",") + line).str.extract_all(_FIELD_AFTER_COMMA).list.len()
        counted = raw.filter(line.str.count_matches(",", literal=True) >= max_fields).select(
            "i", pl.when(line.str.contains(WHOLE_AS_WRITTEN)).then(fields).alias("fields")).collect()
        ids = counted["i"].to_numpy()
        wide = ids[(counted["fields"].fill_null(0).to_numpy() > max_fields) & ~covered(ids)]
    loose = ~covered(i)
    return Repairs(i[loose & (out >= _OUT_OPENS)], wide, i[loose & (out == _OUT_AS_WRITTEN)])


def _quoted_as_written(line: pl.Expr) -> pl.Expr:
    """A WHOLE_AS_WRITTEN line with each value that holds a quote but does not start with
    one quoted, its quotes doubled: the same values, as Polars can read them."""
    def field(f: pl.Expr) -> pl.Expr:
        return (pl.when(f.str.contains('"', literal=True) & ~f.str.starts_with('"'))
                .then('"' + f.str.replace_all('"', '""', literal=True) + '"').otherwise(f))
    return (pl.lit(",") + line).str.extract_all(_FIELD_AFTER_COMMA).list.eval(
        field(pl.element().str.slice(1))).list.join(",")


def repaired_copy(path: Path, repairs: Repairs, scratch: Path) -> Path:
    """A copy of the file in a new file in `scratch` (private: a run's umask) in which
    each stray or wide line (`repairs`) is one quoted field, STRAY_MARK or WIDE_MARK and
    the line as written, each line to be read as written has its values with quotes
    quoted (`_quoted_as_written`), and every other line is as it is: the reader takes
    each marked line as one record of its own and the others as the file has them.
    Lines are copied as Polars splits them: a CR before a line end is not kept, so a
    quoted value holding a Windows line break holds a bare LF in the copy."""
    scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="repaired-", suffix=".csv", dir=scratch)
    os.close(handle)
    raw = raw_lines(path, truncate=True).with_row_index("i")
    line, i = pl.col("line"), pl.col("i")

    def ids(lines: np.ndarray) -> pl.Expr:
        return i.is_in(pl.Series(lines, dtype=pl.UInt32).implode())

    def marked(mark: str) -> pl.Expr:
        return '"' + pl.lit(mark) + line.str.replace_all('"', '""', literal=True) + '"'

    repaired = pl.concat([
        raw.filter(ids(repairs.stray)).select(i, marked(STRAY_MARK).alias("repaired")),
        raw.filter(ids(repairs.wide)).select(i, marked(WIDE_MARK).alias("repaired")),
        raw.filter(ids(repairs.as_written)).select(i, _quoted_as_written(line).alias("repaired")),
    ]).collect()  # the repaired lines alone, few
    raw.join(repaired.lazy(), on="i", how="left", maintain_order="left").select(
        pl.coalesce("repaired", "line").alias("line"),
    ).sink_csv(name, include_header=False, quote_style="never")
    return Path(name)


def _parses(frame: pl.LazyFrame) -> bool:
    """Every field of the file parsed (a row count alone is not)."""
    try:
        frame.select(pl.all().null_count()).collect()
    except pl.exceptions.ComputeError:
        return False
    return True


def _scan(path: Path) -> tuple[pl.LazyFrame, list[str], bool, int | None]:
    """(the file's records as fields field_0.. with ROW, those names, irregular, wide:
    `_csv_width`)."""
    width, truncate, irregular, wide = _csv_width(path)
    positions = [f"field_{i}" for i in range(width)]
    frame = pl.scan_csv(path, has_header=False, schema={c: pl.String for c in positions}, missing_columns="insert",
                        glob=False, encoding="utf8", truncate_ragged_lines=truncate).with_row_index(ROW)
    return frame, positions, irregular, wide


def csv_frame(path: Path, malformed: bool = False, line_per_row: bool = True,
              scratch: Path | None = None) -> pl.LazyFrame:
    """Every field as text, under the header's (trimmed) names; the header record is
    row 0, so row_number is the record's position. Lines of nothing but delimiters and
    whitespace are dropped after numbering; a value beyond the header's last name makes
    the file unreadable (module docstring), or with `malformed` puts, in a column
    MALFORMED (String; NULL for a sound row) BEYOND_HEADER, and in a last one AS_WRITTEN
    the record as written (its fields re-joined by commas, quoted where they must be;
    NULL for a sound row), which only a caller whose files hold no bank details shows.
    With `malformed` and `line_per_row` (files of one result per line, which are small)
    a value holding a line break is SPANS_LINES too.
    Quotes (module comment at WHOLE), and a row wider than the reader's width (the
    header's fields plus MAX_BEYOND_HEADER): only when a file has one and the reader
    fails on it, the file is read through a copy in `scratch` (`repaired_copy`): a value
    with a quote inside it that does not start with one is read as written; with
    `malformed` a line with a stray quote, or a row that wide, is a row of its own,
    every named column NULL, MALFORMED STRAY_QUOTE or BEYOND_HEADER and AS_WRITTEN the
    line. A stray quote without `malformed` (a customers snapshot is refused whole) or
    in the header, or a quote the reader needs the copy for without `scratch`, makes the
    file unreadable_file naming the line (a row that wide, without `malformed` or
    `scratch`, too, saying so: `text_frame.unreadable`)."""
    frame, positions, irregular, wide = _scan(path)
    marked = False
    if (irregular or (wide and malformed and scratch)) and not _parses(frame):
        found = line_repairs(path, wide if malformed and scratch else None)
        if len(found.stray) and (not malformed or scratch is None or found.stray[0] == 0):
            raise FileRejected(UNREADABLE_FILE, f"line {found.stray[0] + 1} has {STRAY_QUOTE}")
        if len(found.as_written) and scratch is None:
            raise FileRejected(UNREADABLE_FILE, f"line {found.as_written[0] + 1} has {QUOTE_INSIDE}")
        if any(len(lines) for lines in found):
            frame, positions, _, _ = _scan(repaired_copy(path, found, scratch))
            marked = bool(len(found.stray) or len(found.wide))
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
    if not extra and not line_per_row and not marked:
        # No row can be wider than the header: nothing to mark, and no record to re-join
        # (Polars would build both branches of a when for every row of a scope file).
        none = pl.lit(None, pl.String)
        return data.filter(~blank).select(ROW, *named, none.alias(MALFORMED), none.alias(AS_WRITTEN))
    first = pl.col(positions[0])
    is_marked = first.str.starts_with(MARK).fill_null(False) if marked else pl.lit(False)
    if marked:
        named = [pl.when(~is_marked).then(pl.col(c)).alias(n) for c, n in zip(positions, names) if n]
    # One row per payment: a value spanning lines is a quote left open, most likely, whose
    # closing quote lines later took the rows between into it (they are in as_written).
    spans = (pl.any_horizontal(pl.col(c).str.contains("[\r\n]").fill_null(False) for c in positions)
             if line_per_row else pl.lit(False))
    said = (pl.when(is_marked).then(pl.when(first.str.starts_with(WIDE_MARK)).then(pl.lit(BEYOND_HEADER))
                                   .otherwise(pl.lit(STRAY_QUOTE)))
            .when(beyond).then(pl.lit(BEYOND_HEADER))
            .when(spans).then(pl.lit(SPANS_LINES)).otherwise(pl.lit(None, pl.String)))

    def field(c: str) -> pl.Expr:
        value = pl.col(c).fill_null("")
        return pl.when(value.str.contains('[",\r\n]')).then('"' + value.str.replace_all('"', '""', literal=True) + '"') \
            .otherwise(value)

    record = pl.concat_str([field(c) for c in positions], separator=",").str.strip_chars_end(",")
    written = (pl.when(is_marked).then(first.str.slice(len(STRAY_MARK))).when(beyond | spans).then(record)
               .otherwise(pl.lit(None, pl.String)))
    return data.filter(~blank).select(ROW, *named, said.alias(MALFORMED), written.alias(AS_WRITTEN))
