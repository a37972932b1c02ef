"""Analyst exports: the warehouse's tables as Parquet files that never block a run.

An analyst's connection to `warehouse.duckdb`, even a read-only one, holds a file lock
that stops the next run from writing. So after every successful run each analyst-facing
table (SPEC "The warehouse") is exported under `exports/`: the same columns and rows as
the table, nothing more (but the columns a table keeps for redress's own use, HIDDEN),
sorted by the table's key so the same warehouse gives the same bytes. Files are readable by the owner only (0600, folders 0700), as the warehouse holds
personal data, or by REDRESS_SHARE_GROUP too (0640, 0750), as every output folder
(redress/runtime/permissions.py): exports/ is the analysts' copy. A file kept from an
earlier run is given the same modes and group.

Layout:

    exports/<table>.parquet                  small or rebuilt-every-run tables, one file:
                                             ingested_files, customers, entitlements,
                                             batches, runs, claims
    exports/<table>/<partition>.parquet      large append-mostly tables, one file per
                                             partition, each sorted by the table's key:
        scope_exposures/<file_sha256>.parquet       one per accepted scope file
        non_member_exposures/<file_sha256>.parquet
        review/<file_sha256>.parquet
        quarantine/<run_id>.parquet                 one per run that quarantined rows
        ledger/<run_id>.parquet                     the payments each run issued
        notifications/<run_id>.parquet              the people each run told
    exports/.fingerprints.json               what each file was written from, and its
                                             size and modification time then

A whole table is `read_parquet('exports/<table>/*.parquet')`; a table without rows has
one file, `_empty.parquet`, with its columns and no rows, so that read still works.

The work is proportional to what changed: one aggregate scan per table gives each
partition's fingerprint (row count, and a sum and an xor of the rows' hashes, which no
row order changes), and only a file whose fingerprint (or the table's columns) differs
from the one recorded, which is missing, or whose size or modification time is not the
one recorded when it was written (someone replaced or edited it), is written again; a
partition that is gone loses its file. So a
revision run that adds one scope file writes that file's partition, the new run's
ledger and notifications partitions and the rebuilt tables, and leaves every other
file as it was (same inode, same bytes).

A file is written by pyarrow in row groups of ROW_GROUP_ROWS rows, zstd-compressed,
with a dictionary for every column but those of distinct values (DISTINCT_COLUMNS),
WRITERS files at a time (`write_exports`). A
partition of more than SLICE_ROWS rows (at 150M customers, one scope file of 285M rows)
is sorted one range of its key at a time, so that no sort spills more than a range's
rows; the ranges change no byte of the file (`_write`).

Each file is written under a temporary name and renamed, so a reader sees the previous
file or the new one, never half of one. The temporary name ends in `.partial`, not
`.parquet`: DuckDB's `*.parquet` matches hidden files too, so a copy in progress, or one
a crash left, would otherwise be read beside the file it replaces (rows twice) or fail
the analyst's whole read when cut short. The fingerprints are recorded after the files
they describe: a crash in between leaves a file newer than its record, which the next
export writes again (the same bytes); it never leaves a record newer than its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from redress.warehouse import connect, table_exists
from redress.warehouse import path as warehouse_path
from redress.outbox.files import discard_written, exact_pieces, fsync
from redress.runtime.permissions import output_modes, share_kept


@dataclass(frozen=True)
class Export:
    order: str  # the columns that order the table (ours, never outside text)
    partition: str | None = None  # the column whose values name the partitions


# SPEC "The warehouse": the stable table names, each with the columns that order it.
TABLES = {
    "ingested_files": Export("kind, file_name, file_sha256"),
    "customers": Export("customer_id"),
    "scope_exposures": Export("file_sha256, row_number, data_category", "file_sha256"),
    "non_member_exposures": Export("file_sha256, row_number", "file_sha256"),
    "review": Export("file_sha256, row_number", "file_sha256"),
    "quarantine": Export("run_id, kind, file_name, row_number NULLS FIRST, reason", "run_id"),
    "entitlements": Export("customer_id"),
    "ledger": Export("payment_id", "run_id"),
    "batches": Export("batch_id"),
    "notifications": Export("person_key", "run_id"),
    "runs": Export("run_id"),
    "claims": Export("file_sha256, row_number"),
}
FINGERPRINTS = ".fingerprints.json"
TMP_PREFIX, TMP_SUFFIX = ".tmp-", ".partial"
EMPTY = "_empty.parquet"  # the one file of a partitioned table without rows
# A partition of more rows than this is sorted a range at a time (`_slices`): at 150M
# customers one scope file of 285M rows sorted at once spilled more than the disk had.
SLICE_ROWS = 20_000_000
ROW_GROUP_ROWS = 1 << 20  # rows per row group of every exported file
COMPRESSION, COMPRESSION_LEVEL = "zstd", 1
# Columns whose values are (nearly) one per row, in whichever table: written without a
# dictionary. Every other column (a status, a rail, a run id, an amount, a file's
# SHA-256) gets one. A dictionary for a column of distinct values is built and then
# thrown away page after page: with one on every column the writer took 8.0 s for the
# 10 M customers, with one on these alone 6.4 s, and the file was smaller (279 against
# 288 MB; `exports` in docs/scale-log.md, 2026-12-02 afternoon).
DISTINCT_COLUMNS = frozenset({
    "customer_id", "email", "phone", "email_norm", "phone_e164", "bank_account", "created_at", "closed_at",
    "row_number", "accessed_at", "recipient", "payment_id", "person_key", "reference_code", "row_json",
})
# How the files are written, recorded with them: files written otherwise (by an earlier
# version: DuckDB's COPY, snappy, a dictionary on every column) are written again once,
# so that the same warehouse gives the same bytes whether its exports were brought up to
# date or written afresh.
FORMAT = (f"pyarrow {pa.__version__} {COMPRESSION}-{COMPRESSION_LEVEL} {ROW_GROUP_ROWS} "
          f"plain {','.join(sorted(DISTINCT_COLUMNS))}")
# Files written at once, each on its own DuckDB cursor and writing thread, while the
# main thread reads the next tables' fingerprints. One: with two, DuckDB sorted two
# tables at once (the 10 M customers beside the 19 M scope rows) and the export's peak
# went from 5.9 to 10.8 GB, for 32.2 s against 34.5 s on a quiet machine and no gain on
# a busier one (docs/scale-log.md, 2026-12-02 afternoon). Any number gives the same bytes.
WRITERS = 1


def _tmp(final: Path) -> Path:
    """Where `final` is written before it is renamed: outside every `*.parquet` glob."""
    return final.with_name(f"{TMP_PREFIX}{final.name}{TMP_SUFFIX}")
# A partition value that is a plain name (a SHA-256, a run id) names its file; any
# other value (none today) gets a name from its own SHA-256, so no value can reach
# outside the folder.
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", re.ASCII)


def partition_file_name(value: object) -> str:
    text = "" if value is None else str(value)
    if value is not None and PLAIN.fullmatch(text) and not text.endswith("."):
        return f"{text}.parquet"
    return f"_{hashlib.sha256(('null' if value is None else 'v:' + text).encode('utf-8', 'surrogatepass')).hexdigest()[:16]}.parquet"


# Columns a table keeps for redress's own use, not its readers': the customers' times as
# written, for a policy with a new timezone (redress/inbox/retime.py). Analysts have the
# typed times; at 33.7 M customers the two text columns cost the export about 17 s and
# 1.4 GB of peak memory (docs/scale-log.md, 2026-12-05 late afternoon).
HIDDEN = {"customers": ("created_at_raw", "closed_at_raw")}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    hidden = HIDDEN.get(table, ())
    return ", ".join(f"{name} {kind}" for name, kind in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position", [table]).fetchall() if name not in hidden)


def _relation(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SQL of ours: the table as exported, without the HIDDEN columns it has (a table of
    an earlier version may lack them)."""
    hidden = HIDDEN.get(table)
    if not hidden:
        return table
    present = {name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
    left = [name for name in hidden if name in present]
    return f"(SELECT * EXCLUDE ({', '.join(left)}) FROM {table})" if left else table


# SQL: a table's row count, and the sum and xor of its rows' hashes, as text, over
# `FROM <table> AS _row` (_row: the whole row, as one struct): the same for the same rows
# in any order. Also what the emission gate keeps of its inputs (checks/emission_checks.py).
ROW_FINGERPRINT = "count(*), sum(hash(_row)::HUGEINT)::VARCHAR, bit_xor(hash(_row))::VARCHAR"


def fingerprints(con: duckdb.DuckDBPyConnection, table: str, spec: Export) -> dict[str, tuple[object, list]]:
    """{file name: (partition value, [row count, sum of row hashes, xor of row hashes])}
    from one aggregate scan; independent of the rows' physical order."""
    part = spec.partition or "NULL"
    rows = con.execute(f"SELECT {part} AS part, {ROW_FINGERPRINT} FROM {_relation(con, table)} AS _row "
                       "GROUP BY ALL").fetchall()
    if spec.partition is None:
        rows = rows or [(None, 0, "0", "0")]  # an empty table is still exported, empty
        return {f"{table}.parquet": (None, [rows[0][1], rows[0][2], rows[0][3]])}
    if not rows:
        # No partition: one empty file keeps the table's columns under the folder's
        # glob, which DuckDB otherwise refuses ("No files found"). Its value, NULL,
        # selects no row of an empty table; the name is no partition's (PLAIN names
        # start with a letter or digit, hashed ones are 16 hex digits).
        return {EMPTY: (None, [0, "0", "0"])}
    found: dict[str, tuple[object, list]] = {}
    for value, count, total, xor in rows:
        name = partition_file_name(value)
        if name in found:  # two values, one name: only by a hash collision on 64 bits
            raise RuntimeError(f"exports: partitions of {table} collide on {name}")
        found[name] = (value, [count, total, xor])
    return found


def _file_stamp(path: Path) -> list[int] | None:
    """[size, mtime in ns] of an exported file, None when it is missing: a file replaced
    or edited by hand since it was written no longer matches its record."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


def sort_key(spec: Export) -> str:
    """SQL: DuckDB's `create_sort_key` over the table's order past the partition column
    (one value per file): a BLOB whose byte order is the table's order, NULLs where the
    order puts them, so ranges of it cut a partition anywhere, even inside a run of one
    value of the first column (a quarantine is a few `kind`s)."""
    terms = []
    for term in spec.order.split(","):
        column, *nulls = term.split()
        if column != spec.partition:
            terms.append(f"{column}, 'ASC {' '.join(nulls) or 'NULLS LAST'}'")
    return f"create_sort_key({', '.join(terms)})"


def _first(spec: Export) -> tuple[str, bool]:
    """The first column of the table's order past the partition column, and whether its
    NULLs sort last."""
    column, *nulls = next(term.split() for term in spec.order.split(",") if term.split()[0] != spec.partition)
    return column, nulls != ["NULLS", "FIRST"]


# A row's `sort_key`, and its value of the first column as DuckDB's text with that
# column's type (None when NULL). Not as a Python value: DATE and TIMESTAMP(TZ)
# infinities come back as datetime.max/min and TIMESTAMP_NS without its nanoseconds,
# so a bound made of them excluded rows that the key put inside the range.
Cut = tuple[bytes, str | None, str]


def _slices(con: duckdb.DuckDBPyConnection, table: str, spec: Export, where: str, params: list,
            rows: int) -> list[tuple[Cut | None, Cut | None]]:
    """[(low, high)]: ranges of the partition's `sort_key`, low included, high excluded,
    None open, that together hold every row in the table's order. One range when the
    partition has at most SLICE_ROWS rows; else one per SLICE_ROWS rows, cut at quantiles
    of a sample. The cuts only bound how much is sorted at once: the file's bytes do not
    depend on them (see `_write`)."""
    count = -(-rows // SLICE_ROWS)
    if count <= 1:
        return [(None, None)]
    column, _ = _first(spec)
    sample = con.execute(
        f"SELECT {sort_key(spec)} AS cut_key, {column}::VARCHAR, typeof({column}) "
        f"FROM (SELECT * FROM {_relation(con, table)} WHERE {where}) "
        f"USING SAMPLE reservoir(100000 ROWS) REPEATABLE (7) ORDER BY cut_key", params).fetchall()
    picked = (sample[len(sample) * i // count] for i in range(1, count)) if sample else ()
    cuts = list({key: (key, first, kind) for key, first, kind in picked}.values())  # one cut per key
    bounds = [None, *cuts, None]
    return list(zip(bounds, bounds[1:]))


def _range(spec: Export, low: Cut | None, high: Cut | None) -> tuple[list[str], list]:
    """SQL conditions (ours) and their values for the rows from `low` (included) to
    `high` (excluded): the sort key decides; the first column's bounds, which the key
    implies, let DuckDB skip the row groups outside them without computing a key."""
    key, (column, nulls_last) = sort_key(spec), _first(spec)
    conditions, values = [], []
    # nulls_within: whether rows with a NULL first column can lie on this side of the cut
    for cut, key_op, op, nulls_within in ((low, ">=", ">=", nulls_last), (high, "<", "<=", not nulls_last)):
        if cut is None:
            continue
        conditions.append(f"{key} {key_op} ?")
        values.append(cut[0])
        if cut[1] is not None:
            bound = f"{column} {op} CAST(? AS {cut[2]})"  # cut[2]: DuckDB's typeof, ours too
            conditions.append(f"({bound} OR {column} IS NULL)" if nulls_within else bound)
            values.append(cut[1])
        elif nulls_within:  # the cut's own first column is NULL: so is every row on this side
            conditions.append(f"{column} IS NULL")
    return conditions, values


def _write(con: duckdb.DuckDBPyConnection, table: str, spec: Export, value: object, final: Path, rows: int,
           file_mode: int) -> None:
    """One file: the partition's rows (or the table's) sorted by the table's key, in row
    groups of ROW_GROUP_ROWS rows. A big partition is sorted and written one range of its
    sort key at a time (`_slices`), so DuckDB never spills more than a slice's sort;
    the rows are regrouped into whole row groups before they are written, so the bytes
    are the same for any cuts (tests/warehouse/test_exports.py)."""
    where, params = ("TRUE", []) if spec.partition is None else (f"{spec.partition} IS NOT DISTINCT FROM ?", [value])
    tmp = _tmp(final)
    # Text as Arrow large_string (64-bit offsets): with 32-bit ones DuckDB refuses a batch
    # whose column holds more than 2 GiB of text (a row group of 1M rows of 2 KB notes or
    # rows as given), which DuckDB's COPY wrote. No byte of the file changes (no Arrow
    # schema is stored; Parquet has one string type).
    con.execute("SET arrow_large_buffer_size = true")
    relation = _relation(con, table)
    writer = None
    # One thread encodes and compresses a row group while DuckDB sorts and converts the
    # next (both release the GIL); at most one row group waits for it.
    encoder = ThreadPoolExecutor(max_workers=1)
    writing = None

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal writer
        for low, high in _slices(con, table, spec, where, params, rows):
            bounds, bound = _range(spec, low, high)
            reader = con.sql(f"SELECT * FROM {relation} WHERE {' AND '.join([where, *bounds])} ORDER BY {spec.order}",
                             params=[*params, *bound]).to_arrow_reader(ROW_GROUP_ROWS)
            if writer is None:
                writer = pq.ParquetWriter(tmp, reader.schema, compression=COMPRESSION,
                                          compression_level=COMPRESSION_LEVEL, store_schema=False,
                                          use_dictionary=[n for n in reader.schema.names
                                                          if n not in DISTINCT_COLUMNS])
            yield from reader

    try:
        for group in exact_pieces(batches(), ROW_GROUP_ROWS):
            if writing is not None:
                writing.result()
            writing = encoder.submit(writer.write_table, group.combine_chunks(), ROW_GROUP_ROWS)
        if writing is not None:
            writing.result()
        writer.close()
    except BaseException:
        discard_written([encoder], [writer] if writer is not None else [], [tmp])
        raise
    encoder.shutdown()
    os.chmod(tmp, file_mode)
    fsync(tmp)
    os.replace(tmp, final)


def _record(folder: Path, recorded: dict, file_mode: int) -> None:
    tmp = _tmp(folder / FINGERPRINTS)
    tmp.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, file_mode)
    fsync(tmp)
    os.replace(tmp, folder / FINGERPRINTS)


def _read_record(folder: Path) -> dict:
    """{table: {"columns": str, "format": FORMAT, "files": {name: {"rows": fingerprint,
    "file": [size, mtime_ns]}}}} as recorded. Anything else (none yet, not JSON, or edited into another
    shape) counts as no record for the tables concerned: their files are all written
    again, never a traceback."""
    try:
        recorded = json.loads((folder / FINGERPRINTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {table: entry for table, entry in recorded.items()
            if isinstance(entry, dict) and isinstance(entry.get("columns"), str)
            and isinstance(entry.get("files"), dict)}


def write_exports(data_dir: Path, share_group: str | None = None) -> list[Path]:
    """Bring `exports/` up to date with the warehouse (layout in the module docstring);
    returns the paths written this time, sorted. OSError (disk full...) propagates: the
    caller says it in one line. Its files are the owner's, and `share_group`'s when one
    is named (REDRESS_SHARE_GROUP), kept files included.

    The files are written WRITERS at a time (`_write`, each on a cursor of its own),
    while the next tables' fingerprints are read on `con`; each file's bytes depend only
    on its rows.
    A table's record is written once all its files are, in the order of TABLES. After
    a writer's error no further file is handed over, and the first writer error in
    TABLES order is raised; on any error (Ctrl-C included) the files not started are not
    written and the running one is interrupted and removed."""
    folder = data_dir / "exports"
    dir_mode, file_mode = output_modes(share_group)
    folder.mkdir(mode=dir_mode, exist_ok=True)
    share_kept(folder, share_group)  # the group named since a kept file was written reads it too
    recorded = _read_record(folder)
    # what a crashed export left (older versions named them .tmp-<name>.parquet)
    for leftover in sorted([*folder.glob(f"{TMP_PREFIX}*"), *folder.glob(f"*/{TMP_PREFIX}*")]):
        if leftover.is_file():
            leftover.unlink()
    written: list[Path] = []
    pending: deque[_Table] = deque()  # tables whose files are being written, in TABLES order
    with connect(warehouse_path(data_dir), read_only=True) as con, \
            ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="export") as pool:
        # One cursor per writer (a connection of the same database: two writers'
        # queries run side by side), made here, before any other thread uses `con`.
        cursors: queue.SimpleQueue = queue.SimpleQueue()
        made = [con.cursor() for _ in range(WRITERS)]
        for cursor in made:
            cursor.execute("SET TimeZone = 'UTC'")  # as `connect` sets it
            cursors.put(cursor)
        try:
            for table, spec in TABLES.items():
                if any(job.done() and job.exception() is not None for t in pending for job in t.jobs.values()):
                    break  # a writer failed: no more files handed over; its error is raised below
                if not table_exists(con, table):
                    continue
                where = folder if spec.partition is None else folder / table
                where.mkdir(mode=dir_mode, exist_ok=True)
                if spec.partition is not None and (folder / f"{table}.parquet").exists():
                    (folder / f"{table}.parquet").unlink()  # the one-file layout of earlier versions
                before = recorded.get(table, {})
                columns = _columns(con, table)
                same_columns = before.get("columns") == columns and before.get("format") == FORMAT
                now = fingerprints(con, table, spec)
                old = before.get("files", {}) if same_columns else {}
                jobs = {}
                for name, (value, fingerprint) in sorted(now.items()):
                    final = where / name
                    if old.get(name) != {"rows": fingerprint, "file": _file_stamp(final)}:
                        jobs[name] = pool.submit(_write_on_cursor, cursors, table, spec, value, final, fingerprint[0],
                                                 file_mode)
                pending.append(_Table(table, spec, where, columns, now, jobs))
                while pending and all(job.done() for job in pending[0].jobs.values()):
                    written += _finish(pending.popleft(), folder, recorded, file_mode)
            while pending:
                written += _finish(pending.popleft(), folder, recorded, file_mode)
        except BaseException:
            # The queued files are not started; the running one is interrupted (Ctrl-C
            # must not wait for a 285 M-row partition) and removes its partial file.
            pool.shutdown(wait=False, cancel_futures=True)
            for cursor in made:
                cursor.interrupt()
            raise
        finally:
            pool.shutdown(wait=True)
            while not cursors.empty():
                cursors.get().close()
    fsync(folder)
    return sorted(written)


@dataclass
class _Table:
    """A table whose changed files were handed to the writers (`jobs`: file name ->
    future), with what its record needs."""
    table: str
    spec: Export
    where: Path
    columns: str
    now: dict[str, tuple[object, list]]
    jobs: dict


def _write_on_cursor(cursors: queue.SimpleQueue, table: str, spec: Export, value: object, final: Path,
                     rows: int, file_mode: int) -> None:
    """`_write` on a cursor taken from `cursors` and given back."""
    cursor = cursors.get()
    try:
        _write(cursor, table, spec, value, final, rows, file_mode)
    finally:
        cursors.put(cursor)


def _finish(done: _Table, folder: Path, recorded: dict, file_mode: int) -> list[Path]:
    """Once a table's files are written (an error of a writer is raised here): its gone
    partitions removed, and its record written. Returns the files written."""
    for job in done.jobs.values():
        job.result()
    if done.spec.partition is not None:
        for path in sorted(done.where.iterdir()):  # gone partitions, and what a crash left
            if path.name not in done.now and path.is_file():
                path.unlink()
        fsync(done.where)
    files = {name: {"rows": fingerprint, "file": _file_stamp(done.where / name)}
             for name, (_, fingerprint) in sorted(done.now.items())}
    recorded[done.table] = {"columns": done.columns, "format": FORMAT, "files": files}
    _record(folder, recorded, file_mode)
    return [done.where / name for name in sorted(done.jobs)]
