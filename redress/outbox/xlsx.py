"""payments.xlsx: a batch's payments for people (SPEC "Disbursement batches").

The CSV beside it is for machines: a spreadsheet's default CSV import reads
`0285928584979502` as a number and drops its leading zero, or rounds a 16-digit account
(a double holds 15 significant digits). Here every identifier is a text cell, safe by
type and not by a prefix, and every amount an integer number cell, so what a finance
officer copies out of the sheet is what the bank file holds.

Not xlsxwriter: it takes one Python call per cell, about 2.5 s per 50,000-row batch; at
3.37M customers it made the disburse stage 76 -> 162 s and the run 76 -> 269 s (issue
10). Here the package is written with `zipfile` (its constant parts in xlsx_parts.py)
and the sheet XML is built column-wise by Polars string expressions, rows joined per
chunk of rows, never a Python loop per row or cell: 0.19 s against xlsxwriter's 2.67 s
on the same 50,000 rows, 14x (`benchmarks/xlsx_benchmark.py`, 2 cores at load 3.7; 6.8x
at load 7.5, where Polars' threads lose more than xlsxwriter's single one).

One cell type per column, chosen here, with nothing guessed from the values: a text
cell is an inline string (`t="inlineStr"`), so `=...` is never a formula and digits never
a number. Text is XML-escaped (`&`, `<`, `>`; a carriage return as `&#13;`, which an XML
parser would otherwise turn into a line feed) and a literal `_xHHHH_` is escaped as
`_x005F_xHHHH_`, because Excel and LibreOffice read `_xHHHH_` in a cell as the character
U+HHHH (ECMA-376 ST_Xstring), as xlsxwriter did. Byte-identical for the same rows and
`created`: the document's creation date is set from it, zip entries have a fixed date
and order, and nothing else varies.
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import polars as pl

from redress.outbox.xlsx_parts import (APP, CONTENT_TYPES, CORE, ROOT_RELS, SHEET, SHEET_HEAD, SHEET_TAIL,
                                       STYLES, WORKBOOK, WORKBOOK_RELS)

# Columns that name something rather than count it: always text cells, whatever the
# dtype, so no leading zero is dropped and no 16-digit account is rounded.
IDENTIFIERS = ("payment_id", "customer_id", "bank_code", "bank_account")
_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
# A spreadsheet number is a double: from 2^53 on, not every integer is one, and a rounded
# amount is worse than none. KRW amounts are far below.
MAX_EXACT_INTEGER = 2**53 - 1
# Excel's limit for one cell's text (characters).
MAX_CELL_CHARS = 32_767
# XML 1.0 forbids these characters anywhere in a document (tab, line feed and carriage
# return are allowed). Rust-regex syntax for Polars; _FORBIDDEN_PY is the same for names.
_FORBIDDEN = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
_FORBIDDEN_PY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A text that _escaped_text changes, and one whose white space at either end an XML
# reader may drop without xml:space="preserve".
_NEEDS_ESCAPING = r"[&<>\r]|_x[0-9A-Fa-f]{4}_"
_EDGE_SPACE = r"^\s|\s$"
# Rows rendered and joined at a time: bounds the memory of one rendered chunk (a few MB).
_CHUNK_ROWS = 10_000
_ENTRY_DATE = (1980, 1, 1, 0, 0, 0)
# zlib level 1: at the default 6 deflating the sheet took 60% of the writer's time, for
# a file 20% smaller (2.6 against 3.2 MB for 50,000 rows).
_DEFLATE_LEVEL = 1
# Cell styles (index into styles.xml cellXfs): 1 shows and edits as text (numFmtId 49,
# "@"), 2 is the bold header.
_TEXT_STYLE, _HEADER_STYLE = 1, 2


def write_xlsx(frame: pl.DataFrame, path: Path, created: datetime, sheet: str = SHEET) -> None:
    """One sheet named `sheet` (one of ours, default `payments`; `notifications` for the
    notification list): a header row of column names, then one row per row of
    `frame` in its order. IDENTIFIERS and every other text column are text cells
    (inline strings, styled as text: numFmtId 49, "@"); integer columns (amounts in minor
    units, attempt) are number cells; an empty value (null or "") is an empty cell.
    `created` (timezone-aware or naive UTC) is the document's creation date.

    ValueError, one line naming the column, before anything is written: a column of any
    other dtype, a text holding a character XML 1.0 forbids (C0 controls but tab, line
    feed and carriage return; U+FFFE, U+FFFF) or longer than 32,767 characters, an
    integer at or beyond +-2^53 (a spreadsheet's double would round it). Nothing is
    coerced silently."""
    try:
        kinds = _kinds(frame)
        escaped, spaced = _survey(frame, kinds)
    except ValueError as exc:  # the messages say payments.xlsx, the sheet's first use: say which file
        raise ValueError(str(exc).replace("payments.xlsx", path.name, 1)) from None
    if created.tzinfo is not None:  # core.xml holds UTC, marked Z
        created = created.astimezone(timezone.utc).replace(tzinfo=None)
    letters = [_column_letter(i) for i in range(frame.width)]
    with zipfile.ZipFile(path, "w") as package:
        for name, text in (("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", ROOT_RELS),
                           ("docProps/app.xml", APP),
                           ("docProps/core.xml", CORE.format(created=created.strftime("%Y-%m-%dT%H:%M:%SZ"))),
                           ("xl/workbook.xml", WORKBOOK), ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
                           ("xl/styles.xml", STYLES)):
            if sheet != SHEET:  # the title and the sheet's name: the parts' only mentions of it
                text = text.replace(f">{SHEET}<", f">{sheet}<").replace(f'name="{SHEET}"', f'name="{sheet}"')
            with package.open(_entry(name), "w") as out:
                out.write(text.encode())
        with package.open(_entry("xl/worksheets/sheet1.xml"), "w") as out:
            out.write(_sheet_head(frame, kinds, letters).encode())
            # One chunk of rows rendered and joined by Polars at a time; the loop is over
            # chunks of _CHUNK_ROWS, never over rows or cells.
            for start in range(0, frame.height, _CHUNK_ROWS):
                chunk = frame.slice(start, _CHUNK_ROWS)
                rows = _rows(kinds, letters, start + 2, escaped, spaced)
                out.write(chunk.select(rows.str.join("")).item().encode())
            out.write(SHEET_TAIL.encode())


def _kinds(frame: pl.DataFrame) -> dict[str, str]:
    """Column name -> "text" or "number", from the dtype and IDENTIFIERS alone (never from
    the values); ValueError for any other dtype or a name XML cannot hold."""
    kinds = {}
    for name, dtype in frame.schema.items():
        if name in IDENTIFIERS or dtype == pl.String:
            kinds[name] = "text"
        elif dtype in _INTEGERS:
            kinds[name] = "number"
        else:
            raise ValueError(f"payments.xlsx: column {name} has dtype {dtype}, neither text nor integer")
        if _FORBIDDEN_PY.search(name):
            raise ValueError(f"payments.xlsx: column name {name!r} holds a control character XML 1.0 forbids")
    return kinds


def _survey(frame: pl.DataFrame, kinds: dict[str, str]) -> tuple[set[str], set[str]]:
    """One pass over the frame. ValueError for the first column (in frame order) holding
    a value the sheet cannot carry as it is: the message names the column, never a value
    (a value may be personal data). Otherwise the text columns that need escaping, and
    those with a value starting or ending in white space (xml:space="preserve"): most
    columns need neither, and skipping their rewrites halves the rendering time."""
    checks: list[tuple[str, pl.Expr]] = []
    needs: list[tuple[str, str, pl.Expr]] = []
    for name, kind in kinds.items():
        column = pl.col(name)
        if kind == "text":
            text = column.cast(pl.String)
            needs.append(("escaped", name, text.str.contains(_NEEDS_ESCAPING).any()))
            needs.append(("spaced", name, text.str.contains(_EDGE_SPACE).any()))
            checks.append((f"column {name} holds a control character XML 1.0 forbids "
                           "(U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+FFFE, U+FFFF)",
                           text.str.contains(_FORBIDDEN).any()))
            checks.append((f"column {name} holds a text longer than {MAX_CELL_CHARS} characters",
                           (text.str.len_chars() > MAX_CELL_CHARS).any()))
        else:
            # Compared in Int128 so that neither UInt64 nor Int64's minimum overflows.
            wide = column.cast(pl.Int128)
            checks.append((f"column {name} holds an integer at or beyond +-2^53, which a spreadsheet's "
                           "number (a double) would round",
                           ((wide > MAX_EXACT_INTEGER) | (wide < -MAX_EXACT_INTEGER)).any()))
    exprs = [expr for _, expr in checks] + [expr for _, _, expr in needs]
    if not exprs:
        return set(), set()
    found = frame.select(expr.alias(str(i)) for i, expr in enumerate(exprs)).row(0)
    for (message, _), bad in zip(checks, found):
        if bad:
            raise ValueError(f"payments.xlsx: {message}")
    flagged = [(what, name) for (what, name, _), yes in zip(needs, found[len(checks):]) if yes]
    return {n for what, n in flagged if what == "escaped"}, {n for what, n in flagged if what == "spaced"}


def _column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: a spreadsheet column's name."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _column_width(name: str) -> str:
    """The width xlsxwriter wrote for `set_column(width=max(len(name), 12) + 2)`: in
    characters of Calibri 11 (7-pixel digits, 5 pixels of padding), as Excel stores it."""
    pixels = int((max(len(name), 12) + 2) * 7 + 0.5) + 5
    return f"{(pixels * 256 // 7) / 256:.16g}"


def _sheet_head(frame: pl.DataFrame, kinds: dict[str, str], letters: list[str]) -> str:
    """The worksheet up to and including the header row: dimension, column widths and
    styles (a text column is styled as text, so a cell typed into it stays text too)."""
    cols = "".join(
        f'<col min="{i + 1}" max="{i + 1}" width="{_column_width(name)}"'
        + (f' style="{_TEXT_STYLE}"' if kinds[name] == "text" else "") + ' customWidth="1"/>'
        for i, name in enumerate(frame.columns))
    header = "".join(f'<c r="{letter}1" t="inlineStr" s="{_HEADER_STYLE}"><is>{_text_element(name)}</is></c>'
                     for letter, name in zip(letters, frame.columns))
    dimension = f"A1:{letters[-1]}{frame.height + 1}" if letters else "A1"
    return (SHEET_HEAD.format(dimension=dimension, cols=f"<cols>{cols}</cols>" if cols else "")
            + f'<row r="1">{header}</row>')


def _text_element(value: str) -> str:
    """`<t>` for one header text, escaped as _escaped_text does for a column."""
    value = re.sub(r"_(x[0-9A-Fa-f]{4}_)", r"_x005F_\1", value)
    space = ' xml:space="preserve"' if re.search(_EDGE_SPACE, value) else ""
    return f"<t{space}>{escape(value).replace(chr(13), '&#13;')}</t>"


def _escaped_text(text: pl.Expr) -> pl.Expr:
    """The text of a `<t>` element for each value: `_xHHHH_` escaped for Excel's reader,
    then XML's `&`, `<`, `>`, and a carriage return kept as a character reference."""
    return (text.str.replace_all(r"_(x[0-9A-Fa-f]{4}_)", "_x005F_$1")
            .str.replace_all("&", "&amp;", literal=True)
            .str.replace_all("<", "&lt;", literal=True)
            .str.replace_all(">", "&gt;", literal=True)
            .str.replace_all("\r", "&#13;", literal=True))


def _rows(kinds: dict[str, str], letters: list[str], first_row: int, escaped: set[str], spaced: set[str]) -> pl.Expr:
    """One `<row>` string per frame row, numbered from `first_row`; text columns in
    `escaped` are escaped, those in `spaced` get xml:space="preserve" where needed (the
    others have nothing to escape or preserve: _survey). A cell is null for an empty
    value, and concat_str(ignore_nulls) then leaves it out: an empty cell."""
    row = pl.int_range(first_row, first_row + pl.len()).cast(pl.String)
    cells = []
    for (name, kind), letter in zip(kinds.items(), letters):
        if kind == "text":
            text = pl.col(name).cast(pl.String)
            # Leading or trailing white space survives only under xml:space="preserve".
            opening = (pl.when(text.str.contains(_EDGE_SPACE)).then(pl.lit('<t xml:space="preserve">'))
                       .otherwise(pl.lit("<t>")) if name in spaced else pl.lit("<t>"))
            cell = pl.concat_str(pl.lit(f'<c r="{letter}'), row,
                                 pl.lit(f'" t="inlineStr" s="{_TEXT_STYLE}"><is>'), opening,
                                 _escaped_text(text) if name in escaped else text, pl.lit("</t></is></c>"))
            cells.append(pl.when(text != "").then(cell))
        else:
            cells.append(pl.concat_str(pl.lit(f'<c r="{letter}'), row, pl.lit('"><v>'),
                                       pl.col(name).cast(pl.String), pl.lit("</v></c>")))
    return pl.concat_str(pl.lit('<row r="'), row, pl.lit('">'), pl.concat_str(cells, ignore_nulls=True),
                         pl.lit("</row>"))


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip entry that depends on nothing but its name: fixed date, deflate, no
    permissions or host system taken from the machine writing it."""
    info = zipfile.ZipInfo(name, date_time=_ENTRY_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    # No public setter on a ZipInfo before Python 3.13 (compress_level); ZipFile.open()
    # leaves a given ZipInfo's level as it is.
    info._compresslevel = _DEFLATE_LEVEL
    info.create_system = 0
    info.external_attr = 0
    return info
