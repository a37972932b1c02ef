"""Values from outside in DuckDB SQL: the one place that quotes or escapes them.

The rule: a value (a path, a file name, a timezone, a setting) is BOUND as a parameter,
never spliced into SQL text:
`con.execute("... read_parquet(?, hive_partitioning = false) ...", [sql.file_path(p)])`,
`COPY (...) TO ? (FORMAT parquet)`, `SET TimeZone = ?` and `SET memory_limit = ?` all
take parameters in DuckDB 2.0. What cannot be a parameter (a table or column name) goes
through `identifier`; `literal` is there for the rare SQL text that must hold a value.
tests/redress/test_sql.py checks each helper; the same file also fails when
SQL text interpolates a name that looks like a path.

Paths have three more traps, all DuckDB's:

* Its readers (read_parquet, read_csv, read_json) expand glob patterns even in a bound
  path: `data[1]/x.parquet` reads `data1/x.parquet` when that exists. `file_path`
  escapes `*`, `?` and `[` as one-character classes (`[*]`, `[?]`, `[[]`), which
  DuckDB matches literally. Writing (`COPY ... TO ?`) and `duckdb.connect` never glob.
* Its readers take a folder named `key=value` anywhere in a path as a Hive partition:
  the file gets a column `key` holding `value` (typed: `amount=7` is the number 7), in
  place of its own column of that name, so `/data/customer_id=x/inbox/a.parquet` reads
  every row as customer `x`. Every reader call says `hive_partitioning = false`; no
  setting turns it off for a connection (tests/redress/test_sql.py checks every call).
* It reads a path that starts with `~` as one in the home folder, a database's too:
  `~data/warehouse.duckdb` opens `$HOME/data/warehouse.duckdb`. The entry points make
  the data folder absolute (redress/settings.py), and `check_path` refuses a path that
  still starts with `~`.
* It reads `?` in a database path as the start of options (the WAL goes to
  `x.wal?y/...`), and `\\` as a path separator, in every path, on every platform. A
  folder holding either cannot be used safely: `check_path` refuses it in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

from redress.errors import RedressError
from redress import escape

# DuckDB's glob characters; `{`, `}` and `]` alone are literal to it (tests/redress/test_sql.py).
_GLOB = re.compile(r"[*?\[]")
# What DuckDB cannot take in a path (module docstring); NUL ends a C string.
_UNUSABLE = ("?", "\\", "\0")


def literal(value: str) -> str:
    """`value` as a DuckDB string literal: single-quoted, quotes doubled. DuckDB's
    standard strings take no backslash escapes, so nothing else needs escaping. Raises
    ValueError for a NUL character, which would end the text early."""
    if "\0" in value:
        raise ValueError("a SQL literal cannot hold a NUL character")
    return "'" + value.replace("'", "''") + "'"


def customer_slice(slices: int, part: int) -> str:
    """A SQL condition true for the rows of customer slice `part` of `slices`
    (`hash(customer_id) % slices = part`; "true" for one slice): every customer_id in
    exactly one of parts 0 .. slices - 1. The two numbers are SQL text, integers made
    here, not parameters: DuckDB does not push a bound slice condition into its scans
    (checks/emission_checks.py measured three times as long). ValueError for a part
    outside the slices."""
    slices, part = int(slices), int(part)
    if not 0 <= part < slices:
        raise ValueError(f"slice {part} of {slices}")
    return "true" if slices == 1 else f"hash(customer_id) % {slices} = {part}"


# Names in a row as written: an id's parts are its runs of letters and digits, so
# `ref-ID`, `pid_ID`, `%22ID%22`, `\\u00a0ID` and `\\nID` all hold ID's parts in a row.
_NAME_GRAMS = 6  # an id of at most this many parts is found (a payment id has 3)


def _parts(text: str) -> str:
    return rf"""string_split(trim(regexp_replace({text}, '[^A-Z0-9]+', ' ', 'g')), ' ')"""


def name_key(name: str) -> str:
    """SQL: `name` (SQL of ours, a VARCHAR id) as `names` lists it: upper-cased, its runs
    of letters and digits joined by one space."""
    return f"array_to_string({_parts(f'upper({name})')}, ' ')"


def names(text: str) -> str:
    """SQL: every name `text` (SQL of ours, a VARCHAR row as written) may hold, as a list
    of name_key values: each run of 1 to _NAME_GRAMS consecutive parts (runs of letters
    and digits), upper-cased, read twice: with JSON's and URLs' escapes (`\\n`, `\\u00a0`,
    `%22`) taken for spaces, and with only the backslash taken for one (a CSV's
    `CORP\\FRHQTWQM` keeps its F). So an id is found whatever surrounds it; the returns
    and claims checks block a sound row that a malformed row names this way."""
    decoded = rf"""regexp_replace(regexp_replace(upper({text}), '\\U[0-9A-F]{{4}}|%[0-9A-F]{{2}}', ' ', 'g'),
                                  '\\[NRTBF/"\\]', ' ', 'g')"""
    plain = rf"""replace(upper({text}), '\\', ' ')"""
    grams = [rf"""list_transform(range(1, len(p) - {n} + 2), lambda i: array_to_string(p[i:i + {n - 1}], ' '))"""
             for n in range(1, _NAME_GRAMS + 1)]
    per_reading = f"list_transform([{_parts(decoded)}, {_parts(plain)}], lambda p: flatten([{', '.join(grams)}]))"
    return f"list_distinct(flatten({per_reading}))"


def identifier(name: str) -> str:
    """`name` as a DuckDB identifier (a table or column): double-quoted, quotes doubled,
    so it is never read as a keyword or as SQL. Raises ValueError for an empty name or
    one holding NUL."""
    if not name or "\0" in name:
        raise ValueError(f"not a usable SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def check_utf8(path: Path | str, what: str) -> None:
    """RedressError (one line) when `path` is not UTF-8: a name written by a system in
    another encoding, which Python keeps with each undecodable byte as a lone surrogate
    (os.fsdecode). No engine, log, page or Prefect parameter can be given it. `what`
    names it in the line (`the data folder`)."""
    text = str(path)
    if not escape.is_utf8(text):
        raise RedressError(f"{what} {escape.not_utf8(text)} is not UTF-8 (a name written by a system in another "
                           "encoding; each byte outside ASCII shown as \\xNN): rename it in UTF-8")


def check_printable(path: Path | str, what: str) -> None:
    """RedressError (one line) when `path` holds a control, line-separator, bidi or
    zero-width character (escape.holds_control): a path printed into commands to paste
    (plan.md, the approve line) and reports, where a newline ends the command and
    starts Markdown or HTML of the name's choosing, and a right-to-left override shows
    another command than the one pasted (found by the standards review: a folder named
    with a newline put a heading and an <img onerror> into plan.md and the Prefect
    artifact). `what` names it in the line."""
    text = str(path)
    if escape.holds_control(text):
        raise RedressError(f"{what} {escape.terminal(text)} holds a control or invisible character (shown as \\xNN "
                           "or \\uNNNN), which would break the commands and reports that print its path: rename it")


def check_path(path: Path | str) -> None:
    """RedressError (one line) when DuckDB cannot open or write a file at `path`
    exactly: it holds `?` or a backslash, starts with `~` (module docstring), or is not
    UTF-8. SPEC
    "The data folder"."""
    text = str(path)
    check_utf8(text, "the path")
    if text.startswith("~"):
        raise RedressError(f"the path {text!r} starts with '~', which DuckDB reads as the home folder: "
                           f"give it as {str(Path(text).absolute())!r}")
    bad = sorted({c for c in _UNUSABLE if c in text})
    if bad:
        shown = " and ".join(repr(c) for c in bad)
        raise RedressError(f"the path {text!r} holds {shown}, which DuckDB reads as an option or a folder "
                           "separator: move the data folder to a path without them")


def file_path(path: Path | str) -> str:
    """The parameter to bind for a DuckDB reader (`read_parquet(?, hive_partitioning = false)`...)
    so that it reads exactly the file at `path`: glob characters escaped. Raises
    RedressError for a path `check_path` refuses."""
    check_path(path)
    return _GLOB.sub(lambda m: f"[{m[0]}]", str(path))


def one(result) -> tuple | None:
    """The one row of a query that returns at most one (a DuckDB result or relation), or
    None. Fetched whole: in DuckDB 2.0 `fetchone()` leaves the result open, and the next
    statement on that connection fails with "connection has an unfinished result".
    ValueError when the query returned more than one row."""
    rows = result.fetchall()
    if len(rows) > 1:
        raise ValueError(f"expected at most one row, got {len(rows)}")
    return rows[0] if rows else None
