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
  row rules then judge. A header name given twice (after trimming) is unreadable_file
  when a reader wants that column, since either could be meant; else it is ignored
  like any other column a reader does not want (text_frame, columns_by_name).
* row_number: the row's position among the file's data rows as a person counting
  rows sees them (spreadsheet row minus the header), blank lines included, so it may
  have gaps where blank lines were.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from redress.inbox.columns import AS_WRITTEN, GIVEN_TWICE, MALFORMED, ROW, header_name
from redress.inbox.files import FileRejected
from redress.vocabulary import EMPTY_FILE, UNREADABLE_FILE


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


class Width(NamedTuple):
    """What one pass over a CSV's raw lines finds (`_csv_width`)."""
    width: int           # fields the reader reads every row with
    truncate: bool       # the reader may cut what lies beyond them
    irregular: bool      # some quote may be stray, or read as Polars would not (`irregular_quotes`)
    wide: int | None     # the width, when one line alone has more commas than it
    swallowing: bool     # a quoted value running over lines takes in a line that looks like a row
    header_line: int     # the header's line (0-based): the first that is no BLANK_RECORD


def _csv_width(path: Path, quotes_checked: bool = True) -> Width:
    """The width is at least the number of fields of the widest row, at most the
    header's fields plus MAX_BEYOND_HEADER: one more than the most commas in a record
    (read raw, so a quoted comma only makes it larger). A record is a line, or, when a
    quoted value holds a line break, the lines until its quote closes: a line ends inside
    a quote when the quotes up to its end are odd in number (a doubled quote inside a
    value counts two).

    `truncate` is true when the cap was reached only by lines of nothing but commas and
    whitespace (not rows: module docstring) or by a record over
    several lines: the reader may then cut what lies beyond the width, which in a blank
    line is empty, and in a record of several lines lies after 32 fields beyond the
    header, whose visible ones mark it malformed when any holds a value. When one line
    alone has more commas than the cap, nothing is cut (`wide`): the reader refuses the
    file if that line is a row so wide (its commas may be quoted ones), or repairs it
    (`line_repairs`). `swallowing`: a line that begins inside a quoted value has as many
    commas as the header, as a row has (`line_repairs` with `guard_rows`). Both are False
    without `quotes_checked` (the reader's own copy, whose quotes it wrote)."""
    raw = raw_lines(path, truncate=True)
    line = pl.col("line").fill_null("")
    commas, quotes = line.str.count_matches(",", literal=True), line.str.count_matches('"', literal=True)
    written = ~line.str.contains(BLANK_RECORD)  # empty quoted values ("","") are blank too
    sound = pl.when(written).then(commas).otherwise(0)  # a blank line's count as 0
    first_commas = commas.filter(written).first()  # the header's: blank lines before it are no rows
    # A record's commas: the running count at each line where the quotes so far are even
    # (the record closes there), less the count where the record before closed.
    closed = commas.cum_sum().filter(quotes.cum_sum() % 2 == 0)
    within = (quotes.cum_sum() - quotes) % 2 == 1
    header, header_line, single, most, irregular, swallowing = raw.select(
        first_commas.alias("header"), pl.int_range(pl.len()).filter(written).first().alias("header_line"),
        sound.max().alias("single"),
        pl.max_horizontal(commas.max(), closed.diff().fill_null(closed.first()).max()).alias("most"),
        (irregular_quotes(line, quotes) if quotes_checked else pl.lit(False)).alias("irregular"),
        ((within & (sound >= first_commas) & (sound > 0)).any() if quotes_checked else pl.lit(False))
        .alias("swallowing"),
    ).collect().row(0)
    cap = (header or 0) + MAX_BEYOND_HEADER  # in commas
    most = most or 0
    return Width(min(most, cap) + 1, most > cap and (single or 0) <= cap, bool(irregular),
                 cap + 1 if (single or 0) > cap else None, bool(swallowing), header_line or 0)


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
# record's quotes are even in number, and misreads or fails on the file otherwise. A
# stray quote is text after a closing quote (`"5" rain`) or a quote opened and never
# closed: which value it meant is a guess. A raw line is judged as if it began outside a
# quoted value and as if inside one; a record of several lines opens a quoted value, has
# lines wholly inside it, and closes it. Each pattern has a strict form (no quote inside
# an unquoted value: what Polars reads right) and an as-written one.
_QUOTED = r'"(?:[^"]|"")*"'
_PLAIN = r'(?:[^,"][^,"]*)?'        # a value without quotes
_AS_WRITTEN = r'(?:[^,"][^,]*)?'    # ... or with quotes inside, read as characters
_ONE = rf"(?:{_QUOTED}|{_PLAIN})"
_ANY = rf"(?:{_QUOTED}|{_AS_WRITTEN})"
_OPEN = r'"(?:[^"]|"")*'    # a quote opened and not closed on the line
_WITHIN = r'(?:[^"]|"")*'   # text inside a quoted value: its quotes doubled


def _patterns(value: str) -> dict[str, str]:
    """The shapes of a raw line, its unquoted values `value` (_ONE or _ANY)."""
    return {"whole": rf"^{value}(?:,{value})*$", "opens": rf"^(?:{value},)*{_OPEN}$",
            "closes": rf'^{_WITHIN}"(?:,{value})*$', "reopens": rf'^{_WITHIN}"(?:,{value})*,{_OPEN}$'}


STRICT, LOOSE = _patterns(_ONE), _patterns(_ANY)
INSIDE = rf"^{_WITHIN}$"
_FROM_OUTSIDE = rf"^(?:{_ONE},)*(?:{_ONE}|{_OPEN})$"  # whole or opens, strictly
_FROM_INSIDE = rf'^{_WITHIN}(?:"(?:,{_ONE})*(?:,{_OPEN})?)?$'  # inside, closes or reopens, strictly
# One field and the comma before it, in a line's values with a comma put before them:
# every match is one field (a quote left open only at the end), none empty.
_FIELD_AFTER_COMMA = rf",(?:{_OPEN}$|{_QUOTED}|{_AS_WRITTEN})"  # `"a""` at the end is open, not `"a"`
# A record of nothing but empty values, quoted or not: no row (the reader drops it). A
# quote after a space is a character of the value (` ""` holds `""`), and text after a
# closing quote makes it stray: neither is blank.
BLANK_RECORD = r'^(?:\s*|"\s*")(?:,(?:\s*|"\s*"))*$'
_CLOSING = r'^(?:[^"]|"")*"'  # a line's text up to the quote that closes the value it began in
# A line with a stray quote that, read as Python's csv module reads it (text after a
# closing quote kept with the value), ends inside a quoted value it opened
_LENIENT = r'(?:"(?:[^"]|"")*"(?:[^,"][^,]*)?|[^,"][^,]*)?'
BAD_OPENS = rf"^(?:{_LENIENT},)*{_OPEN}$"
BAD_CLOSES = rf'^{_WITHIN}"(?:[^,"][^,]*)?(?:,{_LENIENT})*$'  # ... or closes the value its line began in
BAD_REOPENS = rf'^{_WITHIN}"(?:[^,"][^,]*)?(?:,{_LENIENT})*,{_OPEN}$'  # ... and opens another
# What each raw line with a quote is, read from outside a quoted value and from inside;
# *_AS_WRITTEN: with a quote inside an unquoted value
_OUT_WHOLE, _OUT_WHOLE_AS_WRITTEN, _OUT_OPENS, _OUT_OPENS_AS_WRITTEN, _OUT_BAD_OPENS, _OUT_BAD = range(6)
(_IN_INSIDE, _IN_CLOSES, _IN_CLOSES_AS_WRITTEN, _IN_REOPENS, _IN_REOPENS_AS_WRITTEN, _IN_BAD_CLOSES, _IN_BAD_REOPENS,
 _IN_BAD) = range(8)
_REOPENING = (_IN_REOPENS, _IN_REOPENS_AS_WRITTEN, _IN_BAD_REOPENS)
# A record the reader cannot take, in the copy it reads instead (`repaired_copy`): one
# quoted field, a mark no line of the file holds (drawn for each copy), a letter saying
# why (STRAY, WIDE) and the record as written.
STRAY, WIDE = "S", "W"


def _first(line: pl.Expr, shapes: list[tuple[str, int]], otherwise: int) -> pl.Expr:
    """The code of the first of `shapes` (pattern, code) the line has, else `otherwise`."""
    expr = pl.when(line.str.contains(shapes[0][0])).then(shapes[0][1])
    for pattern, code in shapes[1:]:
        expr = expr.when(line.str.contains(pattern)).then(code)
    return expr.otherwise(otherwise).cast(pl.Int8)


def _out_class(line: pl.Expr) -> pl.Expr:
    """What a line with a quote is, read from outside a quoted value."""
    return _first(line, [(STRICT["whole"], _OUT_WHOLE), (LOOSE["whole"], _OUT_WHOLE_AS_WRITTEN),
                         (STRICT["opens"], _OUT_OPENS), (LOOSE["opens"], _OUT_OPENS_AS_WRITTEN),
                         (BAD_OPENS, _OUT_BAD_OPENS)], _OUT_BAD)


def _in_class(line: pl.Expr) -> pl.Expr:
    """... and read from inside one."""
    return _first(line, [(INSIDE, _IN_INSIDE), (STRICT["closes"], _IN_CLOSES), (LOOSE["closes"], _IN_CLOSES_AS_WRITTEN),
                         (STRICT["reopens"], _IN_REOPENS), (LOOSE["reopens"], _IN_REOPENS_AS_WRITTEN),
                         (BAD_CLOSES, _IN_BAD_CLOSES), (BAD_REOPENS, _IN_BAD_REOPENS)], _IN_BAD)


def irregular_quotes(line: pl.Expr, quotes: pl.Expr) -> pl.Expr:
    """True when some line is not what the quotes before it make it (read as CSV from
    where the record before left off: inside a quoted value after an odd count; a quote
    inside an unquoted value counts as irregular), or the file ends inside a quoted
    value: Polars may then misread or fail (`line_repairs` finds which lines to repair).
    An aggregate; only lines with a quote are matched, each with one pattern."""
    within = (quotes.cum_sum() - quotes) % 2 == 1
    outside_ok = line.filter((quotes > 0) & ~within).str.contains(_FROM_OUTSIDE).all()
    inside_ok = line.filter((quotes > 0) & within).str.contains(_FROM_INSIDE).all()
    return ~(outside_ok & inside_ok) | (quotes.sum() % 2 == 1)


class Repairs(NamedTuple):
    """Lines (0-based, the header's included; sorted numpy arrays) the reader cannot take
    as they are (`line_repairs`); no line is in two."""
    stray: np.ndarray       # the first line of a record with a stray quote
    stray_last: np.ndarray  # ... and its last (the same line, unless it opened a value closed later)
    wide: np.ndarray        # a record of one line with more fields than the reader's width
    outside: np.ndarray     # a record's first line with a quote inside an unquoted value
    inside: np.ndarray      # ... a later line of one, the value it began in closing on it
    blank: np.ndarray       # a record of one line of nothing but empty values, wider than the width


def line_repairs(path: Path, max_fields: int | None = None, guard_rows: bool = False) -> Repairs:
    """The lines to repair: holding a stray quote (module comment at _QUOTED), with a
    quote inside an unquoted value (quoted for Polars to read them as written), and the
    records of one line with more fields than `max_fields` (when given; quoted commas
    are not counted). Read as a person would read them: from the top, a record of
    several lines is taken when its quote closes as CSV says; a record with a stray
    quote on its first or last line is taken whole, as one stray record, when it takes
    in no line that looks like a row (as many commas as the header). When a record is
    not taken (the file ends, or a line inside it is no continuation), the line that
    opened it is the stray one and the lines after it are read again as records of
    their own. With `guard_rows` (a scope file, whose rows a quote left open must not
    silently take in), a record of several lines is also not taken when every non-blank
    line it takes in (the last up to its closing quote) looks like a row. A Python loop
    over the lines that open a quoted value only (a record of several lines, or a quote
    at a value's start never closed); every other line is judged in Polars."""
    raw = raw_lines(path, truncate=True).with_row_index("i")
    line = pl.col("line").fill_null("")
    commas = line.str.count_matches(",", literal=True)
    # Every line with a quote is matched with two patterns; the few that are no plain
    # record with the others, and the lines after an opening one only as the reading
    # below reaches them.
    base = raw.filter(line.str.contains('"', literal=True)).select(
        "i", pl.when(line.str.contains(STRICT["whole"])).then(None).otherwise(line).alias("odd"),
        line.str.contains(INSIDE).alias("inside_only")).collect()
    i = base["i"].to_numpy().astype(np.int64)  # one dtype throughout: searchsorted casts a mismatched array whole
    out = np.full(len(i), _OUT_WHOLE, dtype=np.int8)
    odd = base.filter(pl.col("odd").is_not_null())
    if odd.height:
        out[np.searchsorted(i, odd["i"].to_numpy())] = odd.select(_out_class(pl.col("odd"))).to_series().to_numpy()
    events = np.flatnonzero(~base["inside_only"].to_numpy())  # positions in `i` where a quoted value may end
    opens = np.flatnonzero(np.isin(out, (_OUT_OPENS, _OUT_OPENS_AS_WRITTEN, _OUT_BAD_OPENS)))
    inside, closing_commas = {}, {}  # position -> what its line is from inside, and its commas before the quote

    def next_event(k: int) -> int | None:
        e = np.searchsorted(events, k, side="right")
        return int(events[e]) if e < len(events) else None

    pending = {e for e in map(next_event, opens) if e is not None}
    while pending:  # the lines an opening line's value may end on: their shape from inside, in rounds
        judged = raw.filter(pl.col("i").is_in(pl.Series(i[sorted(pending)], dtype=pl.UInt32).implode())).select(
            "i", _in_class(line).alias("inside"),
            line.str.extract(_CLOSING, 0).str.count_matches(",", literal=True).fill_null(0).alias("commas")).collect()
        at = np.searchsorted(i, judged["i"].to_numpy().astype(np.int64)).tolist()
        inside.update(zip(at, judged["inside"].to_list()))
        closing_commas.update(zip(at, judged["commas"].to_list()))
        pending = {e for e in (next_event(k) for k in pending if inside[k] in _REOPENING) if e is not None} - set(inside)
    # the header's commas: its line is the first that is no blank record (`_csv_width`)
    header = raw.filter(~line.str.contains(BLANK_RECORD)).head(1).select(commas).collect() if len(opens) else None
    header = header.item() if header is not None and header.height else 0
    # lines that look like no row where a quoted value would take them in: blank, or
    # fewer commas than the header in what it would take (a line's text up to a lone quote)
    taken = pl.when(line.str.contains(INSIDE)).then(commas).otherwise(
        line.str.extract(_CLOSING, 0).str.count_matches(",", literal=True))
    unlike = raw.with_columns(blank=line.str.contains(BLANK_RECORD)).filter(
        (taken < header) | pl.col("blank")).select("i", "blank")
    unlike = unlike.collect() if len(opens) else unlike.clear().collect()  # asked only of an opening line's value
    unlike_i = unlike["i"].to_numpy().astype(np.int64)
    written = np.concatenate([[0], np.cumsum(~unlike["blank"].to_numpy())])  # non-blank ones up to each

    def between(o: int, k: int) -> tuple[int, int]:
        """(lines, non-blank lines) that look like no row, strictly between o and k."""
        lo, hi = np.searchsorted(unlike_i, i[o], side="right"), np.searchsorted(unlike_i, i[k], side="left")
        return int(hi - lo), int(written[hi] - written[lo])

    def only_rows(o: int, k: int) -> bool:
        """The record from o to k (positions in `i`) takes in only lines like rows."""
        return closing_commas[k] >= header and between(o, k)[1] == 0

    def no_rows(o: int, k: int) -> bool:
        """... takes in no line like a row."""
        return closing_commas[k] < header and between(o, k)[0] == i[k] - i[o] - 1

    ends: dict[int, tuple[int | None, bool]] = {}  # event -> (where its value closes, or None; lenient on the way)

    def end_of(first: int) -> tuple[int | None, bool]:
        """Where a value whose first possible end is `first` closes as CSV (None: it does
        not), and whether a line on the way is read leniently; each event judged once."""
        chain, k = [], first
        while k is not None and k not in ends:
            code = inside[k]
            if code == _IN_BAD:
                ends[k] = (None, False)
            elif code in (_IN_CLOSES, _IN_CLOSES_AS_WRITTEN, _IN_BAD_CLOSES):
                ends[k] = (k, code == _IN_BAD_CLOSES)
            else:
                chain.append(k)
                k = next_event(k)
                continue
            break
        after = ends[k] if k is not None else (None, False)
        for c in reversed(chain):  # a value reopened on c ends where the next one does
            after = (after[0], after[1] or inside[c] == _IN_BAD_REOPENS) if after[0] is not None else (None, False)
            ends[c] = after
        return ends[first]

    records, visited = [], []  # (first, last, stray) positions in `i`; the lines sound ones end or reopen on
    after = 0  # the first line not yet read
    for o in opens:
        if i[o] < after:
            continue  # inside a record of several lines taken already
        first = next_event(o)
        k, lenient = end_of(first) if first is not None else (None, False)
        stray = out[o] == _OUT_BAD_OPENS or lenient
        if k is None or (stray and not no_rows(o, k)) or (guard_rows and not stray and only_rows(o, k)):
            # never closed as CSV; or a stray record that would take in rows; or, in a
            # scope file, a quote left open closed by a later line's quote: the opening
            # line alone is stray, the lines after it read again
            after = i[o] + 1
            continue
        records.append((o, k, stray))
        while not stray and first is not None and first <= k:
            visited.append(first)
            first = next_event(first)
        after = i[k] + 1
    firsts = np.array([i[o] for o, _, _ in records], dtype=np.int64)
    lasts = np.array([i[k] for _, k, _ in records], dtype=np.int64)

    def covered(ids: np.ndarray) -> np.ndarray:
        at = np.searchsorted(firsts, ids, side="right") - 1
        return (at >= 0) & (ids <= lasts[np.maximum(at, 0)]) if len(firsts) else np.zeros(len(ids), dtype=bool)

    loose = ~covered(i)
    alone = i[loose & (out >= _OUT_OPENS)]  # not a record of one line as it is, and opening none taken
    several = [(i[o], i[k]) for o, k, stray in records if stray]
    stray = np.concatenate([alone, np.array([f for f, _ in several], dtype=i.dtype)])
    stray_last = np.concatenate([alone, np.array([last for _, last in several], dtype=i.dtype)])
    order = np.argsort(stray, kind="stable")
    wide = blank = np.array([], dtype=i.dtype)
    if max_fields is not None:
        # lines with more commas than that: their fields counted, quoted commas apart
        fields = (pl.lit(",") + line).str.extract_all(_FIELD_AFTER_COMMA).list.len()
        counted = raw.filter(commas >= max_fields).select(
            "i", pl.when(line.str.contains(LOOSE["whole"])).then(fields).alias("fields"),
            line.str.contains(BLANK_RECORD).alias("blank")).collect()
        ids = counted["i"].to_numpy().astype(i.dtype)
        over = (counted["fields"].fill_null(0).to_numpy() > max_fields) & ~covered(ids)
        wide, blank = ids[over & ~counted["blank"].to_numpy()], ids[over & counted["blank"].to_numpy()]
    sound_first = np.zeros(len(i), dtype=bool)
    sound_first[np.array([o for o, _, stray in records if not stray], dtype=np.int64)] = True
    outside = i[(loose & (out == _OUT_WHOLE_AS_WRITTEN)) | (sound_first & (out == _OUT_OPENS_AS_WRITTEN))]
    inside_lines = np.array(sorted(i[k] for k in set(visited)
                                   if inside[k] in (_IN_CLOSES_AS_WRITTEN, _IN_REOPENS_AS_WRITTEN)), dtype=i.dtype)
    return Repairs(stray[order], stray_last[order], wide, np.setdiff1d(outside, np.union1d(wide, blank)),
                   inside_lines, blank)


def _requoted(values: pl.Expr) -> pl.Expr:
    """Values separated by commas, each with a comma before it (the last may be a quote
    left open), with each value that holds a quote but does not start with one quoted,
    its quotes doubled: the same values, as Polars can read them."""
    def field(f: pl.Expr) -> pl.Expr:
        return (pl.when(f.str.contains('"', literal=True) & ~f.str.starts_with('"'))
                .then('"' + f.str.replace_all('"', '""', literal=True) + '"').otherwise(f))
    return values.str.extract_all(_FIELD_AFTER_COMMA).list.eval(field(pl.element().str.slice(1))).list.join(",")


def _line_end(path: Path) -> str:
    """CRLF when every line of the file ends so, else LF: the line end a quoted line break
    in a value most likely had (Excel ends rows with CRLF and a line break inside a cell
    with LF), which the copy's lines cannot keep (Polars takes the CR of a CRLF away)."""
    lf = crlf = 0
    last = b""
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            lf += block.count(b"\n")
            crlf += block.count(b"\r\n") + (last == b"\r" and block[:1] == b"\n")
            last = block[-1:]
    return "\r\n" if lf and crlf == lf else "\n"


def repaired_copy(path: Path, repairs: Repairs, scratch: Path) -> tuple[Path, str]:
    """(a copy of the file in a new file in `scratch`, private: a run's umask; its mark).
    In the copy each stray record (`repairs`: its lines joined) or wide line is one
    quoted field, the mark (drawn so that no line of the file holds it), STRAY or WIDE
    and the record as written; a blank one wider than the width is an empty line; in
    each line with a quote inside an unquoted value such values are quoted (`_requoted`:
    in a later line of a record, after the quote that closes the value it began in);
    every other line is as it is. The reader takes each
    marked record as one record of its own and the others as the file has them. Lines
    end as `_line_end` says."""
    scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="repaired-", suffix=".csv", dir=scratch)
    os.close(handle)
    raw = raw_lines(path, truncate=True).with_row_index("i")
    line, i = pl.col("line"), pl.col("i")
    mark = secrets.token_hex(16)
    while raw.select(line.str.contains(mark, literal=True).any()).collect().item():
        mark = secrets.token_hex(16)
    eol = _line_end(path)

    def ids(lines: np.ndarray) -> pl.Expr:
        return i.is_in(pl.Series(lines, dtype=pl.UInt32).implode())

    def marked(kind: str, text: pl.Expr) -> pl.Expr:
        return '"' + pl.lit(mark + kind) + text.fill_null("").str.replace_all('"', '""', literal=True) + '"'

    # the stray records: their lines joined, the first standing for all
    spans = pl.DataFrame({"first": repairs.stray, "last": repairs.stray_last}, schema={"first": pl.UInt32,
                                                                                      "last": pl.UInt32})
    within = raw.join_asof(spans.lazy(), left_on="i", right_on="first", strategy="backward").filter(i <= pl.col("last"))
    records = within.group_by("first").agg(line.fill_null("").sort_by(i).str.join(eol).alias("record"))
    closing = line.str.extract(_CLOSING, 0)
    rest = line.str.slice(closing.str.len_chars())
    keep = pl.lit(True)
    repaired = pl.concat([
        records.select(i=pl.col("first"), repaired=marked(STRAY, pl.col("record")), keep=keep),
        raw.filter(ids(repairs.wide)).select(i, repaired=marked(WIDE, line), keep=keep),
        raw.filter(ids(repairs.blank)).select(i, repaired=pl.lit(""), keep=keep),  # no row: an empty line
        raw.filter(ids(repairs.outside)).select(i, repaired=_requoted(pl.lit(",") + line), keep=keep),
        raw.filter(ids(repairs.inside)).select(
            i, repaired=closing + pl.when(rest == "").then(pl.lit("")).otherwise("," + _requoted(rest)), keep=keep),
        # the later lines of a stray record: in its first
        within.filter(i > pl.col("first")).select(i, repaired=pl.lit(None, pl.String), keep=pl.lit(False)),
    ]).collect()  # the repaired lines alone, few
    raw.join(repaired.lazy(), on="i", how="left", maintain_order="left").filter(pl.col("keep").fill_null(True)).select(
        pl.coalesce("repaired", "line").alias("line"),
    ).sink_csv(name, include_header=False, quote_style="never", line_terminator=eol)
    return Path(name), mark


def _scan(path: Path, quotes_checked: bool = True) -> tuple[pl.LazyFrame, list[str], Width]:
    """(the file's records as fields field_0.. with ROW, those names, `_csv_width`)."""
    found = _csv_width(path, quotes_checked)
    positions = [f"field_{i}" for i in range(found.width)]
    # Polars sizes the table by the first line it reads, which a blank line before the
    # header could make wider than the width: those lines (each a record of one line:
    # BLANK_RECORD) are skipped, and still counted in the records' numbers.
    frame = pl.scan_csv(path, has_header=False, schema={c: pl.String for c in positions}, missing_columns="insert",
                        skip_lines=found.header_line, glob=False, encoding="utf8",
                        truncate_ragged_lines=found.truncate).with_row_index(ROW, offset=found.header_line)
    return frame, positions, found


def csv_frame(path: Path, malformed: bool = False, line_per_row: bool = True,
              scratch: Path | None = None) -> pl.LazyFrame:
    """Every field as text, under the header's (trimmed) names; records are numbered from
    0 (the header, when no blank line comes before it), so row_number is the record's
    position, the spreadsheet row less one. Lines of nothing but delimiters and
    whitespace, before the header too, are dropped after numbering; a value beyond the header's last name makes
    the file unreadable (module docstring), or with `malformed` puts, in a column
    MALFORMED (String; NULL for a sound row) BEYOND_HEADER, and in a last one AS_WRITTEN
    the record as written (its fields re-joined by commas, quoted where they must be;
    NULL for a sound row), which only a caller whose files hold no bank details shows.
    With `malformed` and `line_per_row` (files of one result per line, which are small)
    a value holding a line break is SPANS_LINES too.
    Quotes (module comment at _QUOTED), and a row wider than the reader's width (the
    header's fields plus MAX_BEYOND_HEADER): only when a file has one, the file is read
    through a copy in `scratch` (`repaired_copy`): a value with a quote inside it that
    does not start with one is read as written; with `malformed` a line with a stray
    quote, or a row that wide, is a row of its own, every named column NULL, MALFORMED
    STRAY_QUOTE or BEYOND_HEADER and AS_WRITTEN the line. A stray quote without `malformed` (a customers snapshot is refused whole) or
    in the header, or a quote the reader needs the copy for without `scratch`, makes the
    file unreadable_file naming the line (a row that wide, without `malformed` or
    `scratch`, too, saying so: `text_frame.unreadable`). In a scope file (`malformed`,
    not `line_per_row`) a quote left open and closed lines later by another line's
    quote, taking in only lines like rows, is a stray quote (`line_repairs`), not a
    value that silently holds those rows."""
    frame, positions, found = _scan(path)
    guard = malformed and not line_per_row  # a scope file: a quote left open must not take in rows
    mark = None
    if found.irregular or (guard and found.swallowing) or (found.wide and malformed and scratch):
        repairs = line_repairs(path, found.wide if malformed and scratch else None, guard)
        if len(repairs.stray) and (not malformed or scratch is None or repairs.stray[0] <= found.header_line):
            raise FileRejected(UNREADABLE_FILE, f"line {repairs.stray[0] + 1} has {STRAY_QUOTE}")
        requoted = np.union1d(repairs.outside, repairs.inside)
        if len(requoted) and scratch is None:
            raise FileRejected(UNREADABLE_FILE, f"line {requoted[0] + 1} has {QUOTE_INSIDE}")
        if any(len(lines) for lines in repairs):
            copy, mark = repaired_copy(path, repairs, scratch)
            frame, positions, _ = _scan(copy, quotes_checked=False)
            mark = mark if len(repairs.stray) or len(repairs.wide) else None
    blank = pl.all_horizontal(pl.col(c).str.strip_chars().fill_null("") == "" for c in positions)
    # The header is the first record that is not blank: lines of nothing but delimiters
    # and whitespace before it are no rows either (SPEC "Reading files"), and are counted.
    header = frame.filter(~blank).head(1).collect()
    if not header.height:  # nothing but blank lines: no header, no row (SPEC "File rules")
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    names = [header_name(v or "") for v in header.row(0)[1:]]
    header_row = header[ROW].item()
    while names and not names[-1]:
        names.pop()  # Excel pads the header with empty names when a sheet is wider
    counts = Counter(n for n in names if n)  # a name given twice: text_frame decides (columns_by_name)
    names = [f"{n}{GIVEN_TWICE}{i}" if counts[n] > 1 else n for i, n in enumerate(names)]
    extra = positions[len(names):]
    data = frame.filter(pl.col(ROW) > header_row)
    beyond = pl.any_horizontal(pl.col(c).str.strip_chars().fill_null("") != "" for c in extra) if extra else pl.lit(False)
    if extra and not malformed:
        ragged = data.filter(beyond).select(ROW).head(1).collect()
        if ragged.height:
            raise FileRejected(UNREADABLE_FILE, f"row {ragged.item()} has {BEYOND_HEADER}")
    named = [pl.col(c).alias(n) for c, n in zip(positions, names) if n]
    if not malformed:
        return data.filter(~blank).select(ROW, *named)
    if not extra and not line_per_row and mark is None:
        # No row can be wider than the header: nothing to mark, and no record to re-join
        # (Polars would build both branches of a when for every row of a scope file).
        none = pl.lit(None, pl.String)
        return data.filter(~blank).select(ROW, *named, none.alias(MALFORMED), none.alias(AS_WRITTEN))
    first = pl.col(positions[0])
    is_marked = first.str.starts_with(mark).fill_null(False) if mark else pl.lit(False)
    if mark:
        named = [pl.when(~is_marked).then(pl.col(c)).alias(n) for c, n in zip(positions, names) if n]
    # One row per payment: a value spanning lines is a quote left open, most likely, whose
    # closing quote lines later took the rows between into it (they are in as_written).
    spans = (pl.any_horizontal(pl.col(c).str.contains("[\r\n]").fill_null(False) for c in positions)
             if line_per_row else pl.lit(False))
    said = (pl.when(is_marked).then(pl.when(first.str.starts_with((mark or "") + WIDE)).then(pl.lit(BEYOND_HEADER))
                                   .otherwise(pl.lit(STRAY_QUOTE)))
            .when(beyond).then(pl.lit(BEYOND_HEADER))
            .when(spans).then(pl.lit(SPANS_LINES)).otherwise(pl.lit(None, pl.String)))

    def field(c: str) -> pl.Expr:
        value = pl.col(c).fill_null("")
        return pl.when(value.str.contains('[",\r\n]')).then('"' + value.str.replace_all('"', '""', literal=True) + '"') \
            .otherwise(value)

    record = pl.concat_str([field(c) for c in positions], separator=",").str.strip_chars_end(",")
    written = (pl.when(is_marked).then(first.str.slice(len(mark or "") + 1)).when(beyond | spans).then(record)
               .otherwise(pl.lit(None, pl.String)))
    return data.filter(~blank).select(ROW, *named, said.alias(MALFORMED), written.alias(AS_WRITTEN))
