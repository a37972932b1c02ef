"""The warehouse: one DuckDB file, stable table names (SPEC "The warehouse").

This module opens it (`path`, `connect`, `held_open`); the tables and their comments are in
redress/warehouse/schema.py, and each table is written by one module of this package
(schema.OWNERS), which stages call: a stage opens the transaction and commits, the
owner's functions only execute statements.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from redress.errors import RedressError, WarehouseInUse
from redress.runtime.commands import redress_line
from redress.sql import check_path
from redress.warehouse.quarantine import masked_account  # noqa: F401 (re-exported)
from redress.warehouse.migrations import catalog, migrate
from redress.warehouse.schema import SCHEMA, tables

FILE_NAME = "warehouse.duckdb"
# The data folder's lock file: one run at a time (runs.data_dir_lock).
LOCK_FILE = ".redress.lock"


def path(data_dir: Path) -> Path:
    """The warehouse file of a data folder; DuckDB keeps its write-ahead log beside it
    (`<name>.wal`) and spills to `<name>.tmp/`."""
    return Path(data_dir) / FILE_NAME


def connect(warehouse: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, creating its tables; a warehouse held by another process is a
    one-line error, not a traceback, and so is a path DuckDB cannot use (redress/sql.py).
    Inside `held_open` of the same path, a connection to the instance held open (its
    tables made when it was opened; `read_only` is then not enforced: only a run holds
    it, and a run's readers read)."""
    check_path(warehouse)
    held = held_connection(warehouse)
    if held is not None:
        return held
    try:
        con = duckdb.connect(str(warehouse), read_only=read_only)
    except duckdb.Error as exc:
        line = open_error(warehouse, exc)
        raise (WarehouseInUse if "lock" in str(exc).lower() else RedressError)(line) from None
    # Timestamps are shown and compared in UTC inside the warehouse; the policy's
    # timezone is applied explicitly where a naive timestamp is read.
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB would take 80% of the machine by default; Polars works beside it in the same
    # process, so DuckDB gets 40% and spills the rest of a big join or sort to disk.
    con.execute("SET memory_limit = ?", [memory_limit()])
    if not read_only:
        present = catalog(con)
        # SCHEMA's `CREATE TABLE IF NOT EXISTS` statements only when a table is missing:
        # they took longer than the catalog query.
        if not _TABLES <= present.keys():
            con.execute(SCHEMA)
            present = catalog(con)
        migrate(con, present)
    return con


_TABLES = frozenset(table.lower() for table in tables())

# A run opens the warehouse some forty times, a stage or a step at a time, and each open
# of a small warehouse costs DuckDB 16 to 20 ms (its catalog read, its checkpoint at the
# last close): a quarter of a run of a few hundred customers. So a run holds the
# instance open (`held_open`) and every `connect` of it in the process is a new
# connection to that instance (0.03 ms). Only while the file is at most HOLD_MAX_BYTES:
# an instance held open keeps what it read in its buffer pool, up to DuckDB's memory
# limit, beside Polars's frames; a big warehouse's memory is given back between the
# steps, where a run of millions of customers needs it (its peak), and there the opens
# cost nothing beside the work.
HOLD_MAX_BYTES = 128 << 20
_held: dict[str, duckdb.DuckDBPyConnection] = {}
_held_lock = threading.Lock()


def _key(warehouse: Path) -> str:
    return os.path.abspath(warehouse)  # DuckDB's own key of an instance: the absolute path, links kept


def held_connection(warehouse: Path) -> duckdb.DuckDBPyConnection | None:
    """A new connection to the held instance of `warehouse` (`held_open`), or None: not
    held, or held until now and grown past HOLD_MAX_BYTES (then let go: the caller opens
    the file itself). Great Expectations validates through it (redress/checks/gx_duckdb.py)."""
    key = _key(warehouse)
    with _held_lock:
        anchor = _held.get(key)
        if anchor is None:
            return None
        if _size(key) <= HOLD_MAX_BYTES:
            con = duckdb.connect(key)  # the instance of the held connection, already open
            con.execute("SET TimeZone = 'UTC'")
            return con
        del _held[key]
    anchor.close()
    return None


def _size(key: str) -> int:
    try:
        return os.stat(key).st_size
    except OSError:
        return 0


@contextmanager
def held_open(warehouse: Path) -> Iterator[None]:
    """Hold the warehouse's DuckDB instance open while inside (a flow run: a run or an
    approval), so that each `connect` of it meanwhile, in this process, is a connection
    to it instead of an open of the file; only while the file is at most HOLD_MAX_BYTES
    (see there). Opened with `connect` (its tables made, one-line errors); closed on
    leaving, and checkpointed then as at any last close. Nested or repeated for the same
    path: the outer one holds."""
    key = _key(warehouse)
    with _held_lock:
        outer = key in _held
    if outer or _size(key) > HOLD_MAX_BYTES:
        yield
        return
    anchor = connect(Path(key))
    with _held_lock:
        _held[key] = anchor
    try:
        yield
    finally:
        with _held_lock:
            anchor = _held.pop(key, None)
        if anchor is not None:
            anchor.close()


def open_error(warehouse: Path, exc: Exception) -> str:
    """One line for a warehouse DuckDB cannot open: who holds it (DuckDB names the
    program and PID of the holder), or that the file is not a DuckDB database."""
    text = str(exc)
    holder = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", text)
    if holder:
        return (f"the warehouse {warehouse} is in use by another process (PID {holder[2]}, {holder[1]}): "
                f"close that connection and run again; analysts should read the Parquet files under {warehouse.parent / 'exports'}")
    if "lock" in text.lower():
        return f"the warehouse {warehouse} is locked by another process: close it and run again"
    if "not a valid duckdb database file" in text.lower():
        return (f"not a DuckDB warehouse: {warehouse} (damaged or another kind of file); restore it from backup, "
                f"or move it away and run `{redress_line(warehouse.parent, 'recover-ledger')}` to rebuild the ledger from the outbox")
    if "replaying wal" in text.lower():  # found by the recovery review: DuckDB's words alone
        return (f"the warehouse's log {warehouse.name}.wal does not fit {warehouse} (one of the two restored from a "
                "backup without the other?): restore both files of one backup together, or, to keep this "
                f"{warehouse.name}, move the .wal away (what it held is lost: then run "
                f"`{redress_line(warehouse.parent, 'recover-ledger')}`)")
    return f"cannot open the warehouse {warehouse}: {text.splitlines()[0] if text else type(exc).__name__}"


def memory_limit(share: float = 0.4) -> str:
    """`share` of the machine's memory (40%: a run's), as DuckDB's memory_limit setting."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "4096MB"
    return f"{max(1024, int(total * share) // (1024 * 1024))}MB"


def export(con: duckdb.DuckDBPyConnection, sql: str, target: Path, params: list | tuple = ()) -> Path:
    """A query's result as a Parquet file, for Polars to scan without holding it twice.
    `sql` is query text of ours, `params` its bound values (a path as redress/sql.py
    `file_path` gives it); the target path is bound too."""
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({sql}) TO ? (FORMAT parquet)", [*params, str(target)])
    return target


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the warehouse has this table (a read-only connection to a warehouse of an
    earlier version, which `connect` did not migrate, may lack one)."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return found[0][0] > 0
