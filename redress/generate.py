"""A synthetic breach: a customers snapshot and forensic scope files with known defects.

Every value is a pure function of (seed, row index, purpose) through DuckDB's hash(), and
every row has a fixed place, so the same seed and size give byte-identical files whatever
the thread count. Nothing loops over rows in Python: 33.7 million customers is one pass of
SQL over range(N).

Customers get a role from a seeded bijection of their index (a "rank"), so each kind of
planted defect uses customers of its own and the counts in generated.json are exact.
This module writes the files and the manifest; the SQL they are made of is in
`redress/generate_sql.py`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zoneinfo
from pathlib import Path

import duckdb

from redress import sql
from redress.errors import RedressError
from redress.generate_sql import DEFECTS, MALFORMED, customers_sql, fixed_offset, macros, planted_counts
from redress.generate_sql import planted_sql, rank_ranges, revision_sql

SNAPSHOT = "customers_2025-11-29.parquet"
INITIAL = "scope_01_initial.csv"
REVISION = "scope_02_revision.parquet"
ADDRESSBOOK = "scope_03_addressbook.jsonl"
RESENT = "scope_01_initial_resent.csv"
CORRUPT = "scope_04_corrupt.parquet"
MIN_CUSTOMERS = 100
MAX_CUSTOMERS = 199_999_999  # one mobile number each (010, then 019: 8 free digits each); ids fit C + 9 digits
MEMORY_LIMIT = "3GB"  # the big files stream; this keeps a shared machine safe
COLUMNS = "customer_id, email, phone, data_category, accessed_at, confidence, source"


def _check(out: Path, customers: int, seed: int, timezone: str) -> None:
    for name, value in (("customers", customers), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RedressError(f"{name} must be a whole number, not {value!r}")
    if not MIN_CUSTOMERS <= customers <= MAX_CUSTOMERS:
        raise RedressError(f"customers must be from {MIN_CUSTOMERS} to {MAX_CUSTOMERS:,}, not {customers:,}")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise RedressError(f"unknown timezone {timezone!r}") from None
    sql.check_path(out)
    sql.check_printable(out, "the folder")  # a data folder every command then refuses (redress/settings.py)
    inbox = out / "inbox"
    if inbox.is_dir() and any(p.is_file() for p in inbox.rglob("*")):
        raise RedressError(f"{inbox} already holds files; generate into a folder with an empty inbox")


def _write(con, folders: dict[str, Path], customers: int, seed: int, counts: dict[str, int]) -> None:
    scope = folders["scope"]
    # The two big files stream from range() in index order, which preserve_insertion_order
    # keeps, a UNION ALL's second part after its first. An ORDER BY there gives the same
    # bytes but sorts ~70M wide rows: it ran out of 3 GB even spilling to disk.
    # Paths are bound (redress/sql.py): an output folder's name is never SQL text.
    con.execute(f"COPY ({customers_sql(customers)}) TO ? (FORMAT parquet)", [str(folders["customers"] / SNAPSHOT)])
    con.execute(f"CREATE TEMP TABLE planted AS {planted_sql(counts, rank_ranges(counts))}")
    shuffled = f"ORDER BY hash(kind, k, {seed}), kind, k"  # seeded, and total so the order is fixed
    con.execute(f"CREATE TEMP TABLE revision_defects AS SELECT {COLUMNS} FROM planted WHERE file = 2 {shuffled}")
    con.execute(f"COPY (SELECT {COLUMNS} FROM planted WHERE file = 1 {shuffled}) TO ? (FORMAT csv, HEADER)",
                [str(scope / INITIAL)])
    _append_malformed(con, scope / INITIAL, counts[MALFORMED], seed)
    con.execute(f"""COPY (SELECT {COLUMNS} FROM ({revision_sql(customers)}) UNION ALL FROM revision_defects)
                    TO ? (FORMAT parquet)""", [str(scope / REVISION)])
    strings = ", ".join(f"coalesce({c}, '') AS {c}" for c in COLUMNS.split(", "))  # every JSON value a string
    con.execute(f"COPY (SELECT {strings} FROM planted WHERE file = 3 {shuffled}) TO ? (FORMAT json)",
                [str(scope / ADDRESSBOOK)])
    shutil.copyfile(scope / INITIAL, scope / RESENT)  # the same file dropped twice
    # a transfer cut short: Parquet's leading magic, then nothing a reader can use
    (scope / CORRUPT).write_bytes(b"PAR1\x15\x04\x15\x00transfer interrupted at 4%\n")


def _append_malformed(con, path: Path, count: int, seed: int) -> None:
    """`count` lines at the end of the initial CSV as a hand-edited export has them: each
    third one's free-text source has text after a closing quote (`"waf log" server 3`, a
    stray quote), the others an unquoted comma (`waf log, server 7`: one field more than
    the header). redress quarantines each alone as `malformed_row` and reads the rest of
    the file. Each repeats a member row of the file (its customer_id, category and time),
    so what anyone is paid does not depend on it."""
    repeated = con.execute(f"""
        SELECT customer_id, data_category, accessed_at FROM planted WHERE file = 1 AND kind = 'member'
        ORDER BY hash(k, {int(seed)}, 'malformed'), k LIMIT ?""", [count]).fetchall()
    with path.open("a", encoding="utf-8", newline="") as fh:
        for n, (customer_id, category, accessed_at) in enumerate(repeated, start=1):
            source = f'"waf log" server {n}' if n % 3 == 0 else f"waf log, server {n}"
            fh.write(f"{customer_id},,,{category},{accessed_at},confirmed,{source}\n")


def _manifest(con, scope: Path, customers: int, seed: int, timezone: str, counts: dict[str, int]) -> dict:
    per_file = con.execute("SELECT file, kind, count(*) FROM planted WHERE kind <> 'member' GROUP BY ALL").fetchall()
    per_file.append((1, MALFORMED, counts[MALFORMED]))  # lines appended to the initial CSV (_append_malformed)
    kinds = DEFECTS + [MALFORMED, "non_member_rows", "ambiguous_rows"]
    planted = {kind: sum(c for _, k, c in per_file if k == kind) for kind in kinds}
    # the CSV's sound rows by a reader that skips a line it cannot read (its columns given:
    # DuckDB's sniffer gives up on a stray quote), then the lines appended
    csv = ("(SELECT * FROM read_csv(?, header = true, auto_detect = false, columns = ?, delim = ',', quote = '\"', "
           "escape = '\"', ignore_errors = true, hive_partitioning = false))")
    readers = {INITIAL: csv, REVISION: "read_parquet(?, hive_partitioning = false)",
               ADDRESSBOOK: "read_json(?, format = 'newline_delimited', hive_partitioning = false)", RESENT: csv}
    text = {c: "VARCHAR" for c in COLUMNS.split(", ")}
    rows = {name: con.execute(f"SELECT count(*) FROM {reader}",
                              [sql.file_path(scope / name), *([text] if reader == csv else [])]).fetchall()[0][0]
            + (counts[MALFORMED] if reader == csv else 0)
            for name, reader in readers.items()}
    return {
        "seed": seed,
        "customers": customers,
        "timezone": timezone,
        "files": {"customers": [SNAPSHOT], "scope": [INITIAL, REVISION, ADDRESSBOOK, RESENT, CORRUPT],
                  "duplicate": [RESENT], "unreadable": [CORRUPT]},
        "scope_rows": rows,
        **planted,
        # initial customers k = 0, 3, 6, ... repeat in file 2 (planted_sql)
        "duplicate_exposure_rows": (counts["initial_customers"] + 2) // 3,
        "shared_email_pairs": counts["shared_email_pairs"],
        "shared_phone_pairs": counts["shared_phone_pairs"],
        "test_accounts": counts["test_accounts"],
        "duplicate_files": 1,
        "unreadable_files": 1,
        # rows of the accepted files (1-3) that become member exposures
        "member_rows": rows[INITIAL] + rows[REVISION] + rows[ADDRESSBOOK] - sum(planted.values()),
        "planted_per_file": {name: {kind: c for f, kind, c in sorted(per_file) if f == number}
                             for number, name in ((1, INITIAL), (2, REVISION), (3, ADDRESSBOOK))},
    }


def generate(out: Path, customers: int, seed: int, *, timezone: str = "Asia/Seoul") -> dict:
    """Write out/inbox/customers/… and out/inbox/scope/… ; return (and write to out/generated.json) the manifest of what was planted."""
    out = Path(out).absolute()  # DuckDB reads a leading `~` as the home folder (redress/sql.py)
    _check(out, customers, seed, timezone)
    counts = planted_counts(customers)
    folders = {name: out / "inbox" / name for name in ("customers", "scope", "returns", "claims")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="redress-generate-") as spill:
        # spill into a private temp dir, never the cwd; keep insertion order (see _write)
        con = duckdb.connect(config={"temp_directory": spill, "preserve_insertion_order": True,
                                     "memory_limit": MEMORY_LIMIT})
        try:
            con.execute("SET TimeZone = ?", [timezone])  # validated above; naive stamps are its wall clock
            for macro in macros(seed, customers, rank_ranges(counts), fixed_offset(timezone)):
                con.execute(macro)
            _write(con, folders, customers, seed, counts)
            manifest = _manifest(con, folders["scope"], customers, seed, timezone, counts)
        except duckdb.Error as error:
            raise RedressError(f"could not generate the synthetic breach: {error}".splitlines()[0]) from error
        finally:
            con.close()
    (out / "generated.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    return manifest
