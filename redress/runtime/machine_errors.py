"""Failures of the machine rather than of the data (disk full, a read-only or forbidden
folder, a warehouse file that is not DuckDB's, a warehouse held by another process) are
expected: `machine_error` turns them into one line, in this one place, for the CLI's
top-level handler and the flow's failure path alike.
"""

from __future__ import annotations

import errno
import logging
import re

from redress.errors import RedressError

# errno -> what the user should hear about it (the path is added when known)
OS_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error (a failing disk or network share?)",
    errno.ELOOP: "a loop of symbolic links",
    errno.ENOTDIR: "a file where a folder should be",
    errno.EISDIR: "a folder where a file should be",
    # mkdir on a path taken: a file where exist_ok=True wants a folder (exports/ledger
    # made a file, say), or anything where a new folder is made
    errno.EEXIST: "something already there where a folder should be made",
}
# pathlib's resolve() (Python 3.11) reports a loop of symbolic links as RuntimeError.
SYMLINK_LOOP = re.compile(r"^Symlink loop from (.+)$")
# Rust's I/O errors (Polars' reads and writes) carry their errno only in their text:
# "No space left on device (os error 28)" (found by review: a full disk while Polars wrote
# a batch's CSV was a traceback, and the run was later reported as killed).
RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
# A file that ends before DuckDB's reading of it does: the warehouse cut short (a copy
# stopped half-way, a full disk), or another file DuckDB reads (found by review: a
# truncated warehouse.duckdb was a traceback).
CUT_SHORT = re.compile(r'Could not read enough bytes from file "(.+?)"')
WAREHOUSE_DAMAGED = ("not a DuckDB warehouse (the file is damaged or is something else): restore it from backup, "
                     "or move it away and run `redress recover-ledger`")

# DuckDB reports the same failures as text inside its own exceptions.
DUCKDB_PHRASES = {
    "no space left on device": "no space left on the device",
    "disk quota exceeded": "disk quota exceeded",
    "read-only file system": "the file system is read-only",
    "permission denied": "permission denied",
    "not a valid duckdb database file": WAREHOUSE_DAMAGED,
    # a block of it damaged (found by review: zeroed bytes were a traceback from run and explain)
    "corrupt database file": WAREHOUSE_DAMAGED,
}


# The end of every machine failure's line: what to do, and that doing it is safe.
RERUN = " (fix it, then run again: nothing is paid twice)"


def prefect_server_failed(method: str, path: str, status: int) -> str:
    """One line for the Prefect API answering a request with a server error: its own
    database, most often, cannot be written (found by the platform review: a full
    PREFECT_HOME ended a run in a traceback of Prefect's)."""
    from prefect.settings import get_current_settings

    home = get_current_settings().home
    return (f"the Prefect server failed ({status} for {method} {path}): its database could not be written, most "
            f"often because its disk is full (redress's own server keeps it in PREFECT_HOME, {home})"
            + RERUN)


def machine_error(exc: BaseException) -> str | None:
    """One line for an expected failure of the machine, or None for anything else
    (a bug keeps its traceback). Never names personal data: only paths and errno text."""
    if isinstance(exc, RedressError):
        return str(exc)
    # Libraries between us and the failure (SQLAlchemy under Great Expectations) wrap it.
    for inner in (getattr(exc, "orig", None), exc.__cause__):
        if isinstance(inner, BaseException) and inner is not exc:
            line = machine_error(inner)
            if line is not None:
                return line
    if type(exc).__name__ == "PrefectHTTPStatusError" and exc.response.status_code >= 500:
        return prefect_server_failed(exc.request.method, exc.request.url.path, exc.response.status_code)
    if isinstance(exc, OSError) and exc.errno in OS_ERRORS:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{OS_ERRORS[exc.errno]}{where}{RERUN}"
    if type(exc) is RuntimeError and (loop := SYMLINK_LOOP.match(str(exc))):
        return f"{OS_ERRORS[errno.ELOOP]}: {loop[1]}{RERUN}"
    import polars as pl

    rust = RUST_OS_ERROR.search(str(exc))
    if rust and int(rust[1]) in OS_ERRORS and isinstance(exc, (OSError, pl.exceptions.PolarsError)):
        first = str(exc).splitlines()[0]
        return f"{OS_ERRORS[int(rust[1])]} ({first}){RERUN}"
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return None
    if isinstance(exc, duckdb.Error):
        return duckdb_error_line(str(exc))
    return None


def duckdb_error_line(text: str) -> str | None:
    """machine_error for the text of a DuckDB error, wherever it is found: raised, or
    caught by Great Expectations and kept as an expectation's exception message
    (redress/checks/suites.py; found by a test: a warehouse locked while a suite read it
    read as the suite failing on missing columns). None when it is no machine failure."""
    held = re.search(r'Could not set lock on file "(.+?)"', text)
    if held:  # the warehouse taken by another process between two steps of a run
        from pathlib import Path

        from redress.warehouse import open_error

        return open_error(Path(held[1]), RuntimeError(text))
    cut = CUT_SHORT.search(text)
    if cut:
        from redress.warehouse import FILE_NAME

        if cut[1].endswith(FILE_NAME):
            return WAREHOUSE_DAMAGED
        return f"{cut[1]} ends before its end: it was cut short (a copy stopped half-way, a full disk?){RERUN}"
    for phrase, meaning in DUCKDB_PHRASES.items():
        if phrase in text.lower():
            first = text.splitlines()[0] if text else ""
            return f"{meaning} ({first})"
    return None


class _ExpectedWithoutTraceback(logging.Filter):
    """Drops the traceback from a log record whose exception is expected: a RedressError
    or a machine failure `machine_error` says in one line. The record, its one line, stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and machine_error(exc) is not None:
            record.exc_info, record.exc_text = None, None
        return True


_EXPECTED = _ExpectedWithoutTraceback()


def drop_expected_tracebacks() -> None:
    """Prefect logs a flow's or a task's exception with its traceback ("Encountered
    exception during execution", "Task run failed"): for an expected one, kept in the
    logs of a served run's UI and on a `--verbose` console, the line is enough (found
    by review: a missing customers snapshot was a full traceback there). Idempotent;
    the flows call it when imported."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if _EXPECTED not in logger.filters:
            logger.addFilter(_EXPECTED)
