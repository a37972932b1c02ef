"""Ingest: inbox files into the warehouse, by content (SPEC "The data folder", "File rules").

A file is known by the SHA-256 of its content: the same content again, under any name,
is recorded as duplicate_file and skipped. Inbox files are only ever read. Each file is
read with every column as text (nothing is guessed), given a 1-based row_number,
trimmed (blank = NULL), and streamed by Polars into DuckDB in Arrow batches (read once,
written once, never staged), which parses the timestamps: an offset is honoured, a
timestamp without one is in the policy's timezone; a typed Parquet timestamp goes on
typed beside its text (SPEC "Input: scope files": taken as it is, a naive one in the
policy's timezone).

What is read (SPEC "The data folder", "Reading files")
-------------------------------------------------------
* Which files: regular files directly in inbox/<kind>/, found with lstat (links are
  never followed). Names starting with "." are partial copies and are not looked at.
  Symbolic links, sub-folders, FIFOs, devices and sockets are passed over, never opened
  or hashed, and named in the stage result and the log once per stage. Files are opened
  for hashing with O_NOFOLLOW | O_NONBLOCK and checked to be the file that was listed.
* Files still being copied in: a file is complete once its size and modification time
  have not changed for REDRESS_INBOX_QUIET_SECONDS (default 10). A run that finds a
  younger file waits (one log line) up to REDRESS_INBOX_WAIT_SECONDS (default 300);
  a file still changing then, or one that changes while it is hashed, is not read this
  run (named in the log and the stage result) and the others go ahead. The served
  watch uses the same function (`settle`).
* Order: kind by kind; within a kind, oldest modification time first (whole seconds:
  files copied in together are "the same time"), then natural order of names
  (`v9` before `v10`, `2025-11-9` before `2025-11-10`), so the snapshot dropped last
  becomes current. One function (`read_order`) for the run and the watch.
* Names: never a pattern. Every Polars scan passes glob=False, no inbox path reaches
  DuckDB, and no output file name is built from an inbox name (work and report files
  are named by the sha256 prefix plus a bounded, sanitised stem: `safe_stem`).
* Encoding (.csv, .jsonl, .ndjson): UTF-8, a UTF-8 BOM allowed. Decided from the bytes
  while hashing: a UTF-16/UTF-32 BOM, any NUL byte or any invalid UTF-8 sequence
  (CP949/EUC-KR, Latin-1...) makes the file unreadable_file "save it as UTF-8".
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
* JSON Lines: every line is a JSON object; the columns are the keys of all lines
  (trimmed). A string value is read as it is; any other value as its JSON text
  (`12345` -> "12345", `true` -> "true", an object or array -> its compact JSON text,
  a float in its shortest round-trip form: `1e3` -> "1000.0"); JSON null is missing. A
  line that is not a JSON object, or an object with a key twice, makes the file
  unreadable_file naming the line. Blank lines are not rows.
* Parquet: typed columns are read as their text: integers, decimals, floats, booleans,
  dates and times as written by Polars; a timestamp with a zone keeps its offset, a
  naive one stays naive; lists and structs as their JSON text. A wanted column of a
  type with no faithful text (binary, duration) makes the file unreadable_file.
* row_number: the row's position among the file's data rows as a person counting
  rows sees them (CSV: spreadsheet row minus the header; JSON Lines: the line number),
  blank lines included, so it may have gaps where blank lines were; rows read counts
  only the rows staged.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import re
import stat as stat_
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl

from redress import escape, sql
from redress.rules.identity import email_norm, phone_e164
from redress.vocabulary import EMPTY_FILE, MISSING_COLUMN, UNREADABLE_FILE
from redress.warehouse import customers, scope_rows

KINDS = ("customers", "scope", "returns")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TEXT_FORMATS = ("csv", "jsonl")

CUSTOMER_COLUMNS = (
    "customer_id", "name", "email", "phone", "status", "created_at", "closed_at",
    "is_test", "payout_method", "bank_code", "bank_account",
)
SCOPE_COLUMNS = ("customer_id", "email", "phone", "data_category", "accessed_at", "confidence", "source")
SCOPE_REQUIRED = ("data_category", "accessed_at")
RETURNS_COLUMNS = ("payment_id", "status", "reason")

# ISO 8601 as the SPEC allows it: a date, optional time, optional offset. DuckDB alone
# would also take forms like 2025/07/01, which forensics files must not rely on.
ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s?(Z|[+-]\d{2}(:?\d{2})?)?$"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")

NOT_UTF8 = "the file is not UTF-8 text: save it as UTF-8 and send it again"
BLOCK = 1 << 20
ROW = "__redress_row_number__"  # the reader's row index, apart from any column of the file
STEM_CHARS = 40  # of an inbox name, in an output file name (with the sha256 prefix)


@dataclass(frozen=True)
class Listed:
    """An inbox file as listed (lstat, nothing read)."""

    kind: str
    path: Path
    size_bytes: int
    modified: datetime  # UTC

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class InboxFile:
    kind: str
    path: Path
    sha256: str
    size_bytes: int
    text_problem: str | None = None  # why a text file is not UTF-8 (from its bytes), if it is not
    signature: tuple[int, int, int, int] | None = None  # (size, mtime_ns, inode, device) when hashed

    @property
    def name(self) -> str:
        return self.path.name

    def check_unchanged(self) -> None:
        """Raise FileChanged unless the file is still the one that was hashed: read
        between hashing and loading, a change would give content another sha256."""
        try:
            now = _signature(os.stat(self.path, follow_symlinks=False))
        except FileNotFoundError:
            raise FileChanged("removed while it was being read") from None
        if self.signature is not None and now != self.signature:
            raise FileChanged("changed while it was being read")


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


@dataclass(frozen=True)
class PassedOver:
    """An inbox entry this run does not read, and why (no content, the name only)."""

    kind: str
    name: str
    why: str


@dataclass
class Inbox:
    files: list[InboxFile] = field(default_factory=list)
    passed_over: list[PassedOver] = field(default_factory=list)


class FileRejected(Exception):
    """A whole file goes to quarantine with this SPEC reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class FileChanged(Exception):
    """The file changed, or was replaced, between listing and the end of hashing."""


# ---------------------------------------------------------------- names and order


def natural_key(name: str) -> tuple:
    """Natural order of names: runs of ASCII digits compare as numbers (v9 < v10,
    2025-11-9 < 2025-11-10); the name itself breaks ties (v01 vs v1), so the order is total."""
    parts = re.split(r"([0-9]+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def read_order(f: Listed) -> tuple:
    """SPEC "Reading files": kind, then oldest modification time first (whole seconds:
    files copied in together count as the same time), then natural order of names."""
    return KINDS.index(f.kind), int(f.modified.timestamp()), natural_key(f.name)


def safe_stem(name: str, sha256: str) -> str:
    """A file name part for outputs about an inbox file: its sha256 prefix and a bounded
    stem of ASCII letters, digits, '-' and '_' (at most 16 + 1 + STEM_CHARS characters),
    so no inbox name can make an output name too long, hidden, or a path."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem, flags=re.ASCII).strip("_")[:STEM_CHARS]
    return f"{sha256[:16]}-{stem}" if stem else sha256[:16]


# ---------------------------------------------------------------- listing


def _what(mode: int) -> str | None:
    if stat_.S_ISREG(mode):
        return None
    if stat_.S_ISLNK(mode):
        return "a symbolic link (only regular files in the inbox are read)"
    if stat_.S_ISDIR(mode):
        return "a folder (files in sub-folders are not read)"
    return "not a regular file (a FIFO, device or socket)"


def list_inbox(data_dir: Path, kinds: tuple[str, ...] = KINDS) -> tuple[list[Listed], list[PassedOver]]:
    """Regular, non-hidden files of inbox/<kind>/ in read order, found with lstat (no link
    is followed), and the other entries, which are passed over and never opened."""
    found, passed = [], []
    for kind in kinds:
        folder = Path(data_dir) / "inbox" / kind
        if not folder.is_dir() or folder.is_symlink():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # partial copies by convention
                st = entry.stat(follow_symlinks=False)
                why = _what(st.st_mode)
                if why:
                    passed.append(PassedOver(kind, entry.name, why))
                    continue
                found.append(Listed(kind, Path(entry.path), st.st_size,
                                    datetime.fromtimestamp(st.st_mtime, timezone.utc)))
    found.sort(key=read_order)
    passed.sort(key=lambda p: (KINDS.index(p.kind), natural_key(p.name)))
    return found, passed


def settle(data_dir: Path, quiet: timedelta, most: timedelta, kinds: tuple[str, ...] = KINDS,
           now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
           sleep: Callable[[float], None] = time.sleep,
           log: Callable[[str], None] = lambda message: None) -> tuple[list[Listed], list[PassedOver]]:
    """The inbox once its files are complete: a file is complete when its size and
    modification time have not changed for `quiet` (its mtime is `quiet` old, or it was
    seen unchanged for `quiet`: a future mtime cannot stall it). Waits (one `log` line)
    at most `most`; files still changing then are passed over with a reason, the others
    are returned in read order. Shared by `redress run` and the served watch."""
    started = now()
    first_seen: dict[Path, tuple[tuple[int, datetime], datetime]] = {}
    logged = False
    while True:
        listed, passed = list_inbox(data_dir, kinds)
        t = now()
        changing = []
        for f in listed:
            state = (f.size_bytes, f.modified)
            seen = first_seen.get(f.path)
            if seen is None or seen[0] != state:
                first_seen[f.path] = seen = (state, t)
            if t - f.modified < quiet and t - seen[1] < quiet:
                changing.append(f)
        if not changing:
            return listed, passed
        if t - started >= most:
            late = {f.path for f in changing}
            passed += [PassedOver(f.kind, f.name, f"still being changed after waiting {most.total_seconds():g} s; "
                                  "read by a later run") for f in changing]
            passed.sort(key=lambda p: (KINDS.index(p.kind), natural_key(p.name)))
            return [f for f in listed if f.path not in late], passed
        if not logged:
            log(f"waiting for {len(changing)} inbox file(s) still being copied in "
                f"(quiet {quiet.total_seconds():g} s, at most {most.total_seconds():g} s)")
            logged = True
        wait = min(max(quiet - (t - min(f.modified, first_seen[f.path][1])) for f in changing),
                   most - (t - started))
        sleep(max(0.05, min(wait.total_seconds(), quiet.total_seconds() or 0.05)))


# ---------------------------------------------------------------- hashing


def _utf8_problem(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    return None


def hash_file(f: Listed, check_text: bool) -> tuple[str, str | None, tuple[int, int, int, int]]:
    """(sha256, why the bytes are not UTF-8 text or None, the file's signature), reading
    the file once. Opened
    without following links and without blocking; raises FileChanged when what is
    opened is not the listed regular file, or it changes while being read."""
    try:
        fd = os.open(f.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise FileChanged("replaced by a link or a special file since it was listed") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        before = os.fstat(fd)
        if not stat_.S_ISREG(before.st_mode):
            raise FileChanged("replaced by a special file since it was listed")
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")("strict") if check_text else None
        problem, first = None, True
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
            if decoder is None or problem:
                continue
            if first:
                problem, first = _utf8_problem(block[:4]), False
            if problem is None and b"\0" in block:
                problem = "NUL bytes (UTF-16 or UTF-32?)"
            if problem is None:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    problem = "not valid UTF-8"
        if decoder is not None and problem is None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                problem = "not valid UTF-8 at its end"
        after = os.fstat(fd)
    now_ = os.stat(f.path, follow_symlinks=False)
    if not (_signature(before) == _signature(after) == _signature(now_)) or before.st_size != f.size_bytes:
        raise FileChanged("changed while it was being read")
    return digest.hexdigest(), problem, _signature(before)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a regular inbox file (no link followed)."""
    st = os.stat(path, follow_symlinks=False)
    listed = Listed("scope", Path(path), st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))
    return hash_file(listed, check_text=False)[0]


def inbox_files(data_dir: Path, quiet: timedelta = timedelta(0), most: timedelta = timedelta(0),
                kinds: tuple[str, ...] = KINDS, log: Callable[[str], None] = lambda message: None,
                sleep: Callable[[float], None] = time.sleep) -> Inbox:
    """The complete regular files of the inbox in read order, hashed (and, for text
    formats, checked to be UTF-8) in one read each; every entry not read is in
    `passed_over` with its reason. See the module docstring for the rules."""
    listed, passed = settle(data_dir, quiet, most, kinds, log=log, sleep=sleep)
    inbox = Inbox(passed_over=passed)
    for f in listed:
        try:
            sha, problem, signature = hash_file(f, SUFFIXES.get(f.path.suffix.lower()) in TEXT_FORMATS)
        except FileChanged as exc:
            inbox.passed_over.append(PassedOver(f.kind, f.name, f"{exc}; read by a later run"))
            continue
        except FileNotFoundError:
            inbox.passed_over.append(PassedOver(f.kind, f.name, "removed while the inbox was being read"))
            continue
        inbox.files.append(InboxFile(f.kind, f.path, sha, f.size_bytes, problem, signature))
    return inbox


# ---------------------------------------------------------------- reading


def unreadable(exc: Exception, detail: str) -> FileRejected:
    """unreadable_file with what the sender must change, where the reader's error says it."""
    message = str(exc).lower()
    if "utf-8" in message or "utf8" in message:
        return FileRejected(UNREADABLE_FILE, NOT_UTF8)
    if "more fields" in message:
        return FileRejected(UNREADABLE_FILE, "a row has more fields than the header "
                                               "(quote values that contain commas)")
    return FileRejected(UNREADABLE_FILE, f"{detail}: {type(exc).__name__}")


def _refuse_unknown_zones(path: Path) -> None:
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


def _trimmed(expr: pl.Expr) -> pl.Expr:
    trimmed = expr.str.strip_chars()
    return pl.when(trimmed == "").then(None).otherwise(trimmed)


# A column of type Null (pandas writes an all-empty column so) is all missing values:
# read as empty text, not refused.
UNTEXTABLE = (pl.Binary, pl.Duration, pl.Object)


def _parquet_text(name: str, dtype: pl.DataType) -> pl.Expr:
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


def _has_untextable(dtype: pl.DataType) -> bool:
    if isinstance(dtype, UNTEXTABLE):
        return True
    if isinstance(dtype, pl.Struct):
        return any(_has_untextable(f.dtype) for f in dtype.fields)
    if isinstance(dtype, (pl.List, pl.Array)):
        return _has_untextable(dtype.inner)
    return False


def header_name(name: str) -> str:
    """A column name as given, without the whitespace and invisible format characters
    (a second byte-order mark, a zero-width space) that exports leave at its ends: they
    would make `customer_id` another, ignored column and lose every value under it."""
    start, end = 0, len(name)
    while start < end and (name[start].isspace() or unicodedata.category(name[start]) == "Cf"):
        start += 1
    while end > start and (name[end - 1].isspace() or unicodedata.category(name[end - 1]) == "Cf"):
        end -= 1
    return name[start:end]


def _look_alike(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", header_name(name).casefold()).strip("_")


def refuse_look_alikes(columns: dict[str, str], wanted: tuple[str, ...]) -> None:
    """A column that is not one of `wanted` but reads as one (`Customer_ID`,
    `customer id`) would be ignored as an extra column and its values lost: the file
    is refused as missing that column, saying which name to use."""
    for name in columns:
        if name in wanted:
            continue
        meant = _look_alike(name)
        if meant in wanted and meant not in columns:
            raise FileRejected(MISSING_COLUMN, f"column {name[:60]!r} is not named exactly {meant!r}: rename it")


def _columns(names: list[str]) -> dict[str, str]:
    """Trimmed name -> name in the file; a name given twice is ambiguous (either column
    could be the one meant), so the file is unreadable."""
    columns: dict[str, str] = {}
    for name in names:
        key = header_name(name)
        if key in columns:
            raise FileRejected(UNREADABLE_FILE, f"column {key[:60]!r} is given twice")
        columns[key] = name
    return columns


def _csv_width(path: Path) -> int:
    """At least the number of fields of the widest row: one more than the most commas on
    a line (read raw, quotes not parsed, so a quoted comma only makes it larger). A row
    wider still (a \x1f byte cuts a raw line short) fails loudly when read."""
    raw = pl.scan_csv(path, has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.String},
                      glob=False, encoding="utf8", truncate_ragged_lines=True)
    most = raw.select(pl.col("line").str.count_matches(",", literal=True).max()).collect().item()
    return (most or 0) + 1


def _csv_frame(path: Path) -> pl.LazyFrame:
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
    _columns([n for n in names if n])
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


def _jsonl_frame(path: Path) -> pl.LazyFrame:
    """The lines as JSON objects, one text column per key of any line (module docstring).
    Lines are read raw by Polars (no glob, no schema window) and unpacked by DuckDB's
    JSON reader, which keeps every key of every line."""
    lines = (pl.scan_csv(path, has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
                         new_columns=["line"], glob=False, encoding="utf8", truncate_ragged_lines=False)
             .with_row_index("row_number", offset=1)
             .with_columns(pl.col("line").str.strip_prefix("\ufeff"))
             .filter(pl.col("line").str.strip_chars().fill_null("") != "")
             .collect())
    if lines.height == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    with duckdb.connect() as con:
        con.register("lines", lines)
        bad = con.execute("""
            SELECT min(row_number) FROM lines
            WHERE NOT json_valid(line) OR json_type(CASE WHEN json_valid(line) THEN line END) <> 'OBJECT'
        """).fetchall()[0][0]
        if bad is not None:
            raise FileRejected(UNREADABLE_FILE, f"line {bad} is not a JSON object")
        con.execute("""
            CREATE TABLE pairs AS
            SELECT l.row_number, e.key, CASE WHEN e.type = 'NULL' THEN NULL
                                              WHEN e.type = 'VARCHAR' THEN e.value ->> '$'
                                              ELSE e.value::VARCHAR END AS value
            FROM lines l, json_each(l.line) e""")
        keys = [k for (k,) in con.execute("SELECT DISTINCT key FROM pairs ORDER BY key").fetchall()]
        names = {}
        for key in keys:
            names.setdefault(header_name(key), []).append(key)
        con.register("keymap", pl.DataFrame({"key": keys, "name": [header_name(k) for k in keys]},
                                            schema={"key": pl.String, "name": pl.String}))
        twice = con.execute("""
            SELECT row_number, name FROM pairs JOIN keymap USING (key)
            GROUP BY ALL HAVING count(*) > 1 ORDER BY row_number LIMIT 1""").fetchall()
        if twice:
            raise FileRejected(UNREADABLE_FILE, f"line {twice[0][0]} gives the key {twice[0][1][:60]!r} twice")
        # one column per trimmed key: at most one raw key per line (checked above)
        select = ", ".join(f"max(value) FILTER (WHERE name = ${i + 1}) AS c{i}" for i in range(len(names)))
        wide = con.sql(f"""
            SELECT row_number{', ' + select if select else ''}
            FROM lines LEFT JOIN (pairs JOIN keymap USING (key)) USING (row_number)
            GROUP BY row_number ORDER BY row_number""", params=list(names)).pl()
    return wide.rename({"row_number": ROW, **{f"c{i}": name for i, name in enumerate(names)}}).lazy()


def _refuse_cr_line_ends(path: Path) -> None:
    """Old Mac exports end lines with a lone CR, which no CSV or JSON Lines reader takes
    as a line end: the whole file would read as one header line and look empty."""
    with path.open("rb") as fh:
        head = fh.read(BLOCK)
    if b"\r" in head and b"\n" not in head:
        raise FileRejected(UNREADABLE_FILE, "its lines end with a lone CR (old Mac line ends): "
                                              "save it with Windows (CRLF) or Unix (LF) line ends")


def read_text_frame(path: Path, required: tuple[str, ...], wanted: tuple[str, ...],
                    typed: tuple[str, ...] = ()) -> pl.LazyFrame:
    """The file as text columns `wanted` (missing optional ones as NULL), trimmed, blank
    as NULL, with a 1-based row_number (Int64), as the module docstring says per format.
    Each column of `typed` that the file holds as a typed Parquet timestamp is also
    passed on as it is (zone or not), under `typed_name(column)`, after the text ones.
    Raises FileRejected (unreadable_file, empty_file, missing_column: SPEC "File rules")."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise FileRejected(UNREADABLE_FILE, f"unknown file type {path.suffix[:20]!r} (use .csv, .parquet or .jsonl)")
    if path.stat().st_size == 0:
        raise FileRejected(EMPTY_FILE, "the file is empty")
    if fmt in ("csv", "jsonl"):
        _refuse_cr_line_ends(path)
    try:
        if fmt == "csv":
            frame = _csv_frame(path)
        elif fmt == "parquet":
            _refuse_unknown_zones(path)
            frame = pl.scan_parquet(path, glob=False).with_row_index(ROW, offset=1)
        else:
            frame = _jsonl_frame(path)
        schema = frame.collect_schema()
    except FileRejected:
        raise
    except pl.exceptions.NoDataError:
        raise FileRejected(EMPTY_FILE, "the file is empty") from None
    except (pl.exceptions.PolarsError, duckdb.Error, pl.exceptions.PanicException) as exc:
        # not OSError: a share that drops is retried by the task, never quarantined.
        # A panic of Polars on a file's content is that file's fault, never the run's.
        raise unreadable(exc, f"cannot be read as {fmt}") from None
    columns = _columns([n for n in schema.names() if n != ROW])
    refuse_look_alikes(columns, wanted)
    missing = [c for c in required if c not in columns]
    if missing:
        raise FileRejected(MISSING_COLUMN, f"missing column(s): {', '.join(missing)}")

    def text(name: str) -> pl.Expr:
        if name not in columns:
            return pl.lit(None, pl.String).alias(name)
        dtype = schema[columns[name]]
        if _has_untextable(dtype):
            raise FileRejected(UNREADABLE_FILE, f"column {name} is of type {dtype}, which has no text form")
        as_text = _parquet_text(columns[name], dtype) if fmt == "parquet" else pl.col(columns[name])
        return _trimmed(as_text).alias(name)

    # A typed timestamp also goes on typed (SPEC: "taken as it is"), so the warehouse
    # does not parse back the text it was printed as; the text stays for quarantine.
    # Cut to microseconds here, as its text is when parsed: DuckDB rounds a nanosecond
    # timestamp on its cast to TIMESTAMPTZ, which can carry 23:59:59.9999996 to the
    # next day, out of a window its text is in. (cast_time_unit floors, as the text's
    # cut digits do, before 1970 too.)
    kept = [pl.col(columns[c]).dt.cast_time_unit("us").alias(typed_name(c)) for c in typed
            if c in columns and isinstance(schema[columns[c]], pl.Datetime)]
    return frame.select(pl.col(ROW).cast(pl.Int64).alias("row_number"), *(text(c) for c in wanted), *kept)


def typed_name(column: str) -> str:
    """The name under which `read_text_frame` passes a typed timestamp column on as it is."""
    return f"__redress_typed_{column}__"


def stage(frame: pl.LazyFrame, target: Path) -> int:
    """Write the frame as Parquet (streaming) and return its row count; reading errors
    that only show once the data is read make the file unreadable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        frame.sink_parquet(target)
    except pl.exceptions.PolarsError as exc:
        raise unreadable(exc, "cannot be read") from None
    rows = pl.scan_parquet(target, glob=False).select(pl.len()).collect().item()
    if rows == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    return rows


TIMESTAMPS = {"customers": ("created_at", "closed_at"), "scope": ("accessed_at",)}


def customers_frame(path: Path) -> pl.LazyFrame:
    """A customers snapshot, normalised for identity and bank checks: the text columns,
    the typed timestamps (`read_text_frame`), then email_norm, phone_e164,
    bank_account_digits and bank_valid. The master's identity keys are computed here,
    once per snapshot (redress/rules/identity.py), and stored by `promote_customers`."""
    raw = read_text_frame(path, CUSTOMER_COLUMNS, CUSTOMER_COLUMNS, TIMESTAMPS["customers"])
    account = pl.col("bank_account").str.replace_all(r"[\s-]", "")
    bank_valid = (
        pl.col("bank_code").str.contains(r"^[0-9]{3}$").fill_null(False)
        & account.str.contains(r"^[0-9]{10,16}$").fill_null(False)
    )
    return raw.with_columns(
        email_norm("email").alias("email_norm"),
        phone_e164("phone").alias("phone_e164"),
        account.alias("bank_account_digits"),
        bank_valid.alias("bank_valid"),
    )


def scope_frame(path: Path) -> pl.LazyFrame:
    return read_text_frame(path, SCOPE_REQUIRED, SCOPE_COLUMNS, TIMESTAMPS["scope"])


# Rows per Arrow batch handed from Polars to DuckDB: bounds what is held between them.
BATCH_ROWS = 1 << 17


class FrameStream:
    """A LazyFrame as a stream of Arrow batches that DuckDB reads as a table, so a file
    is read once (Polars, streaming) and written once (into the warehouse), never staged.
    Memory is bounded by a few batches. A reading error that only shows once the data is
    read (a ragged CSV row, a broken Parquet page) is kept in `error`: DuckDB reports it
    as its own error, and `rejected` turns it back into the file's unreadable_file."""

    def __init__(self, frame: pl.LazyFrame):
        self.frame = frame
        self.error: Exception | None = None

    def reader(self):
        import pyarrow as pa

        schema = pl.DataFrame(schema=self.frame.collect_schema()).to_arrow().schema

        def batches():
            try:
                for chunk in self.frame.collect_batches(chunk_size=BATCH_ROWS):
                    yield from chunk.to_arrow().to_batches()
            except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
                self.error = exc
                raise

        return pa.RecordBatchReader.from_batches(schema, batches())

    def failure(self) -> Exception | None:
        """Why the stream stopped, as the caller must see it: the file's FileRejected when
        Polars failed on its content, an OSError as it is (a share that drops is retried
        by the task, never quarantined), None when the stream did not fail."""
        if isinstance(self.error, (pl.exceptions.PolarsError, pl.exceptions.PanicException)):
            return unreadable(self.error, "cannot be read")
        return self.error


def _source(source: Path | pl.LazyFrame) -> pl.LazyFrame:
    # A Path is a staged Parquet of our own (tests, older callers): read as it was written.
    return pl.scan_parquet(source, glob=False) if isinstance(source, Path) else source


def _load(con: duckdb.DuckDBPyConnection, frame: pl.LazyFrame, sql_text: str, params: list) -> int:
    """Run `sql_text`, which reads the frame as the table `src`, with `params`; returns
    the rows it wrote. A failure of the file's own content is FileRejected; any other
    DuckDB error goes up as it is (a full disk is not the sender's fault)."""
    stream = FrameStream(frame)
    con.register("src", stream.reader())  # replaces the one a failed load left
    try:
        rows = con.execute(sql_text, params).fetchall()[0][0]
    except duckdb.Error:
        # Nothing more can run in a failed transaction (not even unregister) until the
        # caller rolls back; the view goes with the connection or the next load.
        failure = stream.failure()
        if failure is not None:
            raise failure from None
        raise
    con.unregister("src")
    return rows


@contextmanager
def loading(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Settings for loading files, wrapped around a whole transaction: DuckDB on one
    thread, and on leaving, its thread count restored and the session back in UTC (a
    loader sets the policy's timezone; no SET can run in a failed transaction, so the
    caller rolls back inside this block). One thread appends whole row groups in the
    stream's order; several each leave partial row groups that the commit's checkpoint
    rewrites: measured on 6.4M scope rows, twice the CPU and a warehouse file twice the
    size. Polars reads the file on its own threads meanwhile."""
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute("SET threads = ?", [threads])
        con.execute("SET TimeZone = 'UTC'")


def ts(col: str, schema: pl.Schema | None = None) -> str:
    """SQL: the column as TIMESTAMPTZ in the session timezone. A typed timestamp that
    `read_text_frame` passed on (`typed_name`, in `schema`) is taken as it is (a naive
    one in the session timezone); text is NULL unless ISO 8601."""
    if schema is not None and typed_name(col) in schema:
        return f"CAST({sql.identifier(typed_name(col))} AS TIMESTAMPTZ)"
    return f"CASE WHEN regexp_full_match({col}, {sql.literal(ISO_8601)}) THEN TRY_CAST({col} AS TIMESTAMPTZ) END"


# customers_staging holds the columns of customers in their order, under the staging
# names of MASTER_COLUMNS, among the snapshot's own text columns and the suite's
# booleans, so that promoting it renames and drops columns instead of copying rows.
STAGING_COLUMNS = (
    "row_number", "customer_id", "name", "email", "phone", "email_norm", "phone_e164", "status",
    "created_at", "closed_at", "created_at_ts", "closed_at_ts", "is_test", "is_test_bool",
    "payout_method", "payout_method_or_default", "bank_code", "bank_account", "bank_account_digits", "bank_valid",
)
# customers' column <- its staging column (redress/warehouse/__init__.py, in that order; file_sha256 is added)
MASTER_COLUMNS = {
    "customer_id": "customer_id", "email": "email", "phone": "phone", "email_norm": "email_norm",
    "phone_e164": "phone_e164", "status": "status", "created_at": "created_at_ts", "closed_at": "closed_at_ts",
    "is_test": "is_test_bool", "payout_method": "payout_method_or_default", "bank_code": "bank_code",
    "bank_account": "bank_account_digits", "bank_valid": "bank_valid",
}


def load_customers_staging(con: duckdb.DuckDBPyConnection, source: Path | pl.LazyFrame, timezone: str) -> int:
    """customers_staging: the snapshot as given (`customers_frame`, read once, streamed
    in; or a Parquet of it at a Path) plus the typed columns and the booleans its suite
    (expectations/customers_staging.json) checks, each true when the row breaks that
    rule. Returns its row count; raises FileRejected (unreadable_file, empty_file) and
    then leaves no customers_staging. SPEC "Input: customers snapshot".

    Besides the SPEC's rules, a customer_id or email an output cannot carry
    (redress/rules/printable.py: a control, format, line-separator or non-character, or a
    customer_id over 140 characters, pain.001's Cdtr/Nm) rejects the snapshot here,
    rather than failing every run later at the bank file."""
    from redress.rules.printable import MAX_CUSTOMER_ID_CHARS, UNPRINTABLE

    frame = _source(source)
    schema = frame.collect_schema()
    true_words = ", ".join(sql.literal(w) for w in TRUE_WORDS)
    words = ", ".join(sql.literal(w) for w in TRUE_WORDS + FALSE_WORDS)
    con.execute("SET TimeZone = ?", [timezone])
    try:
        with loading(con):
            rows = _load(con, frame, f"""
                CREATE OR REPLACE TABLE customers_staging AS
                SELECT *,
                       created_at_ts IS NULL AS created_at_invalid,
                       closed_at IS NOT NULL AND closed_at_ts IS NULL AS closed_at_invalid,
                       status = 'closed' AND closed_at IS NULL AS closed_at_missing,
                       coalesce(status <> 'closed', TRUE) AND closed_at IS NOT NULL AS closed_at_unexpected,
                       is_test IS NOT NULL AND lower(is_test) NOT IN ({words}) AS is_test_invalid,
                       -- length() counts code points, as XML Schema's maxLength does
                       coalesce(regexp_matches(customer_id, {sql.literal(UNPRINTABLE)}), FALSE) AS customer_id_unprintable,
                       coalesce(length(customer_id) > {MAX_CUSTOMER_ID_CHARS}, FALSE) AS customer_id_too_long,
                       coalesce(regexp_matches(email, {sql.literal(UNPRINTABLE)}), FALSE) AS email_unprintable
                FROM (
                    SELECT row_number, customer_id, name, email, phone, email_norm, phone_e164, status,
                           created_at, closed_at,
                           {ts('created_at', schema)} AS created_at_ts, {ts('closed_at', schema)} AS closed_at_ts,
                           is_test, coalesce(lower(is_test) IN ({true_words}), FALSE) AS is_test_bool,
                           payout_method, coalesce(payout_method, 'voucher') AS payout_method_or_default,
                           bank_code, bank_account, bank_account_digits, bank_valid
                    FROM src
                )
            """, [])
    finally:
        con.execute("SET TimeZone = 'UTC'")
    if rows == 0:
        con.execute("DROP TABLE customers_staging")
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    return rows


def promote_customers(con: duckdb.DuckDBPyConnection, sha: str) -> int:
    """The validated customers_staging becomes the current customer master (run inside
    the caller's transaction): its columns other than customers' are dropped, the others
    renamed (MASTER_COLUMNS), file_sha256 added, and the table renamed, so no row is
    copied or sorted (every reader of customers orders or joins explicitly). The
    identity keys stored are the ones computed once when the snapshot was read
    (`customers_frame`). Replacing the table also drops columns an earlier version kept
    (the customer's name). Returns the master's row count."""
    kept = set(MASTER_COLUMNS.values())
    for column in STAGING_COLUMNS + tuple(_staging_checks(con)):
        if column not in kept:
            con.execute(f"ALTER TABLE customers_staging DROP COLUMN {sql.identifier(column)}")
    for column, staged in MASTER_COLUMNS.items():
        if column != staged:
            con.execute(f"ALTER TABLE customers_staging RENAME COLUMN {sql.identifier(staged)} "
                        f"TO {sql.identifier(column)}")
    con.execute(f"ALTER TABLE customers_staging ADD COLUMN file_sha256 VARCHAR DEFAULT {sql.literal(sha)}")
    con.execute("ALTER TABLE customers_staging ALTER COLUMN file_sha256 DROP DEFAULT")  # filled; no later default
    customers.replace_with_staging(con)
    return con.execute("SELECT count(*) FROM customers").fetchall()[0][0]


def _staging_checks(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The suite's boolean columns of customers_staging: those after STAGING_COLUMNS."""
    names = [n for (n,) in con.execute("""
        SELECT column_name FROM information_schema.columns
        WHERE table_name = 'customers_staging' ORDER BY ordinal_position""").fetchall()]
    return [n for n in names if n not in STAGING_COLUMNS]


def load_scope_rows(con: duckdb.DuckDBPyConnection, source: Path | pl.LazyFrame, sha: str, timezone: str) -> int:
    """Append a scope file (`scope_frame`, read once and streamed in; or a Parquet of it
    at a Path) to scope_rows; returns the rows appended, and raises FileRejected
    (unreadable_file, empty_file) having appended none (the caller's transaction is
    rolled back). Not sorted on the way in: readers order by (file_sha256, row_number).
    No path is spliced into the SQL text. Call it inside `loading` (see there)."""
    frame = _source(source)
    con.execute("SET TimeZone = ?", [timezone])
    # On failure the transaction is aborted: the caller's ROLLBACK inside `loading`
    # sets the session back to UTC.
    rows = _load(con, frame, scope_rows.append_sql(ts('accessed_at', frame.collect_schema())), [sha])
    con.execute("SET TimeZone = 'UTC'")
    if rows == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    return rows
