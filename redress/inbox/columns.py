"""Column names and text values as every reader gives them (SPEC "Reading files").

A header name is trimmed of whitespace and invisible format characters; a name given
twice is unreadable_file; a name that reads as a wanted one (`Customer_ID`) is
missing_column naming the name to use, or unreadable_file beside the name itself. Values are
trimmed, and blank is NULL (redress/trimming.py). ROW is
the readers' row index, kept apart from any column of the file.
"""

from __future__ import annotations

import functools

import polars as pl

from redress.characters import first_in, nfkc
from redress.inbox.files import FileRejected
from redress.vocabulary import CONFIDENCES, MISSING_COLUMN, UNREADABLE_FILE

ROW = "__redress_row_number__"  # the reader's row index, apart from any column of the file
# What is wrong with a row a reader kept when asked to mark malformed rows (NULL: sound).
MALFORMED = "__redress_malformed__"
# Such a row as the file wrote it (a CSV record re-joined, a JSON Lines line), NULL for a sound one.
AS_WRITTEN = "__redress_as_written__"


# Whitespace as Python's str.isspace reads it (Unicode White_Space and the four
# information separators U+001C-U+001F), and format characters as the engines read them
# (redress/characters.py: U+13439-U+1343F are format characters that Python 3.11 does not know).
SPACE = r"\s\x{1C}-\x{1F}"  # inside a character class
_EDGE = rf"^[{SPACE}\p{{Cf}}]+|[{SPACE}\p{{Cf}}]+$"


@functools.lru_cache(maxsize=4096)  # a JSON Lines file's keys are trimmed in three places
def header_name(name: str) -> str:
    """A column name as given, without the whitespace and invisible format characters
    (a second byte-order mark, a zero-width space) that exports leave at its ends: they
    would make `customer_id` another, ignored column and lose every value under it."""
    return pl.select(pl.lit(name, dtype=pl.String).str.replace_all(_EDGE, "")).item()


@functools.lru_cache(maxsize=4096)  # a file's names against each wanted one, a Polars call each
def look_alike(name: str) -> str:
    """The name as a reader would take it: NFKC (full-width letters as letters), case
    folded, its letters and digits only: without separators (`Customer_ID`, `customer
    id`, `customerId`, `E-mail`), brackets, or invisible format characters inside it (a
    zero-width space in `confi\u200bdence`: found by review). NFKC, letters and digits
    as the engines read them (redress/characters.py), as the values are read."""
    folded = nfkc(header_name(name)).casefold()
    return pl.select(pl.lit(folded, dtype=pl.String).str.replace_all(r"[^\p{L}\p{N}]", "")).item()


def _letters_alike(key: str, wanted_key: str) -> bool:
    """Whether look_alike key `key` is `wanted_key` with some of its Latin letters
    written as letters of another script, as `cоnfidence` holds a Cyrillic `о` (found by
    review): the same length, every other character the same, and most of them ASCII (a
    Korean header of as many letters as a SPEC name reads as no SPEC name)."""
    if len(key) != len(wanted_key) or key == wanted_key:
        return key == wanted_key
    foreign = [k for k, w in zip(key, wanted_key) if k != w]
    return (all(not k.isascii() and first_in(k, r"\p{L}") == k for k in foreign)
            and sum(k.isascii() for k in key) * 2 > len(key))


def wanted_as(name: str, wanted: tuple[str, ...]) -> str | None:
    """The column of `wanted` that trimmed name `name` is, or reads as (`look_alike`,
    `_letters_alike`); None for a column no reader wants."""
    if name in wanted:
        return name
    key = look_alike(name)
    return next((w for w in wanted if _letters_alike(key, look_alike(w))), None)


# Columns whose absence a reader fills with a default (SPEC "Input: scope files":
# confidence, `confirmed` when empty), with the values the SPEC gives them. A column
# holding such a name among other words (`confidence_level`, `exposure confidence`), in a
# file with no column that is or reads as it, and holding one of those values in some
# row (in any case), is that column misnamed: ignored, every `suspected` row would be
# taken as confirmed and paid (found by review). missing_column, naming it
# (`defaulted_look_alikes`, text_frame). Without such a value it is another column
# (`confidence_score` of 0.95: found by the next review, a whole file was refused); beside
# the column itself, an ordinary extra one. Other columns are not defaulted: one missing
# shows as a missing column or a quarantined row.
DEFAULTED = {"confidence": tuple(CONFIDENCES)}


def defaulted_look_alikes(columns: dict[str, str], wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """For each DEFAULTED column of `wanted` that no column of `columns` is or reads as
    (wanted_as), the columns (trimmed names, sorted) holding its name among other
    words; only those with some. The caller looks at their values."""
    read_as = {wanted_as(name, wanted) for name in columns}
    found = {}
    for meant in (d for d in DEFAULTED if d in wanted and d not in read_as):
        holding = sorted(name for name in columns if look_alike(meant) in look_alike(name))
        if holding:
            found[meant] = holding
    return found


def refuse_look_alikes(columns: dict[str, str], wanted: tuple[str, ...]) -> None:
    """A column that is not one of `wanted` but reads as one (`Customer_ID`,
    `customer id`: wanted_as) would be ignored as an extra column and its values lost: the file
    is refused as missing that column, saying which name to use. Beside the column
    named exactly, it is as ambiguous as a name given twice (a JSON Lines file whose
    later lines say `Confidence`: those lines' `suspected` would be lost, and the rows
    taken as confirmed): unreadable_file, naming both."""
    read_as = {name: wanted_as(name, wanted) for name in columns}
    for name, meant in read_as.items():
        if meant is None or name == meant:
            continue
        if meant not in columns:
            raise FileRejected(MISSING_COLUMN, f"column {name[:60]!r} is not named exactly {meant!r}: rename it")
        raise FileRejected(UNREADABLE_FILE, f"column {name[:60]!r} reads as {meant!r}, which the file also has: "
                                            "either could be the one meant; merge them into one")


# Joins a CSV header name given twice to its position (csv_reader.csv_frame), so the
# frame's columns stay distinct; columns_by_name then decides.
GIVEN_TWICE = "\x00"


def columns_by_name(names: list[str], wanted: tuple[str, ...] = ()) -> dict[str, str]:
    """Trimmed name -> name in the file. A name given twice is ambiguous when it is, or
    reads as (`look_alike`), one of `wanted` (either column could be the one meant), so
    the file is unreadable; another one is no column a reader wants, and is left out
    like any column beyond the SPEC's (found by review: two columns `extra` refused a
    scope file)."""
    columns: dict[str, str] = {}
    twice: set[str] = set()
    for name in names:
        key = header_name(name.split(GIVEN_TWICE)[0])
        if key in columns or GIVEN_TWICE in name:
            twice.add(key)
        columns.setdefault(key, name)
    for key in sorted(twice):
        if wanted_as(key, wanted) is not None:
            raise FileRejected(UNREADABLE_FILE, f"column {key[:60]!r} is given twice")
        del columns[key]
    return columns


def typed_name(column: str) -> str:
    """The name under which `read_text_frame` passes a typed timestamp column on as it is."""
    return f"__redress_typed_{column}__"
