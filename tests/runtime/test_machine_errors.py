"""Failures of the machine are one line, mapped in one place (issue 9, item 4)."""

from __future__ import annotations

import errno

import duckdb
import polars as pl
import pytest

from redress.runtime.machine_errors import machine_error


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"), (errno.EACCES, "permission denied"),
    (errno.EPERM, "not permitted"), (errno.EDQUOT, "quota"), (errno.EIO, "input/output"),
    (errno.ELOOP, "a loop of symbolic links"), (errno.ENOTDIR, "a file where a folder should be"),
    (errno.EISDIR, "a folder where a file should be"), (errno.EEXIST, "something already there where a folder"),
])
def test_machine_failures_are_one_line(code, words):
    line = machine_error(OSError(code, "text from the OS", "/data/outbox/batches/x"))
    assert words in line and "/data/outbox/batches/x" in line and "\n" not in line


def test_a_file_in_the_place_of_a_folder_to_make_is_one_line(tmp_path):
    """As when `exports/ledger` is a file: the exports' mkdir(exist_ok=True) raises EEXIST."""
    (tmp_path / "ledger").write_text("not a folder")
    with pytest.raises(FileExistsError) as raised:
        (tmp_path / "ledger").mkdir(exist_ok=True)
    line = machine_error(raised.value)
    assert line == (f"something already there where a folder should be made: {tmp_path / 'ledger'} "
                    "(fix it, then run again: nothing is paid twice)")


def test_other_errors_keep_their_traceback():
    assert machine_error(OSError(errno.ENOENT, "gone")) is None  # a file vanishing mid-run is a bug
    assert machine_error(ValueError("a bug")) is None
    assert machine_error(RuntimeError("a bug that mentions a Symlink loop from x")) is None


def test_a_loop_of_symbolic_links_resolved_by_pathlib_is_one_line(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(RuntimeError) as raised:  # Python 3.11's pathlib: not an OSError
        (tmp_path / "loop").resolve()
    line = machine_error(raised.value)
    assert line.startswith(f"a loop of symbolic links: '{tmp_path / 'loop'}'") and "\n" not in line


@pytest.mark.parametrize("text, words", [
    ('IO Error: Could not write file "/d/w.duckdb.wal": No space left on device', "no space left"),
    ('IO Error: Cannot open file "/d/x": Permission denied', "permission denied"),
    ('IO Error: The file "/d/w.duckdb" exists, but it is not a valid DuckDB database file!', "not a DuckDB"),
    ("Error: Corrupt database file: computed checksum 123 does not match stored checksum 456 in block at location 7",
     "not a DuckDB"),  # a damaged block (found by review)
])
def test_duckdb_reports_of_the_same_failures_are_one_line(text, words):
    line = machine_error(duckdb.IOException(text))
    assert words in line and "\n" not in line


@pytest.mark.parametrize("raised", [
    OSError("No space left on device (os error 28)"),  # Polars' write_csv, no errno set
    pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)"),
])
def test_rust_io_errors_with_their_errno_in_their_text_are_one_line(raised):
    """Found by review: a full disk while Polars wrote a batch's payments.csv was a
    traceback (its OSError has no errno), and the run was later reported as killed."""
    line = machine_error(raised)
    assert line.startswith("no space left on the device (") and line.endswith("nothing is paid twice)")
    assert "\n" not in line
    assert machine_error(ValueError("no such thing (os error 28)")) is None  # only I/O errors


def test_a_warehouse_cut_short_is_one_line_saying_what_to_do(tmp_path):
    """Found by review: a truncated warehouse.duckdb gave a traceback from run, explain and
    recover-ledger ("Could not read enough bytes"). Another file cut short is named."""
    from redress.warehouse import connect

    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        con.execute("CREATE TABLE filler AS SELECT range AS n, repeat('x', 200) AS t FROM range(200000)")
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    with pytest.raises(duckdb.Error) as raised:
        with duckdb.connect(str(path)) as con:
            con.execute("SELECT sum(n), max(t) FROM filler").fetchall()
    assert machine_error(raised.value).startswith("not a DuckDB warehouse (the file is damaged or is something else)")
    other = duckdb.IOException('IO Error: Could not read enough bytes from file "/d/in/x.parquet": attempted ...')
    assert machine_error(other) == ("/d/in/x.parquet ends before its end: it was cut short (a copy stopped half-way, "
                                    "a full disk?) (fix it, then run again: nothing is paid twice)")


def test_a_failure_wrapped_by_a_library_is_still_one_line():
    class Wrapped(Exception):  # as SQLAlchemy wraps the DB-API error in .orig
        def __init__(self, orig):
            super().__init__("(wrapped) " + str(orig))
            self.orig = orig

    assert "no space left" in machine_error(Wrapped(OSError(errno.ENOSPC, "full", "/d/x")))
    try:
        try:
            raise OSError(errno.EROFS, "ro", "/d/y")
        except OSError as cause:
            raise RuntimeError("while writing") from cause
    except RuntimeError as outer:
        assert "read-only" in machine_error(outer)


def test_a_lock_reported_through_great_expectations_names_the_holder():
    class OperationalError(Exception):  # SQLAlchemy's wrapper, as GX's connection test raises it
        def __init__(self, orig):
            super().__init__(str(orig))
            self.orig = orig

    locked = duckdb.IOException('IO Error: Could not set lock on file "/d/warehouse.duckdb": Conflicting lock is '
                                "held in /usr/bin/python3 (PID 4242). See also https://duckdb.org/docs")
    try:
        raise RuntimeError("Attempt to connect to datasource failed") from OperationalError(locked)
    except RuntimeError as gx_error:
        line = machine_error(gx_error)
    assert "PID 4242" in line and "/d/warehouse.duckdb" in line and "\n" not in line


@pytest.mark.parametrize("name", ["prefect.flow_runs", "prefect.task_runs"])
def test_prefect_logs_an_expected_failure_as_its_line_and_a_bug_with_its_traceback(name):
    """Found by review: with --verbose (and in a served run's logs) a missing customers
    snapshot was "Encountered exception during execution: RedressError(...)" and a full
    traceback. An expected failure keeps its line only; anything else its traceback."""
    import io
    import logging

    from redress.errors import RedressError
    from redress.runtime.machine_errors import drop_expected_tracebacks

    drop_expected_tracebacks()
    drop_expected_tracebacks()  # idempotent: one filter
    logger = logging.getLogger(name)
    assert sum(type(f).__name__ == "_ExpectedWithoutTraceback" for f in logger.filters) == 1
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    try:
        for exc in (RedressError("no valid customers snapshot"), OSError(errno.ENOSPC, "full", "/d/x"),
                    ValueError("a bug")):
            try:
                raise exc
            except Exception as raised:
                logger.exception("Encountered exception during execution: %r", raised)
    finally:
        logger.removeHandler(handler)
    logged = out.getvalue()
    assert logged.count("Traceback") == 1 and "ValueError: a bug" in logged
    assert "Encountered exception during execution: RedressError('no valid customers snapshot')\n" in logged


@pytest.mark.parametrize("status, line", [(500, True), (503, True), (404, False), (409, False)])
def test_a_prefect_server_error_is_one_line_naming_its_home(status, line):
    """Found by the platform review: a full PREFECT_HOME ended a run in Prefect's
    traceback (500 on set_state). A server error is one line naming where redress's own
    server keeps its database; a client error (a bug of ours) keeps its traceback."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.settings import get_current_settings

    request = httpx.Request("POST", "http://127.0.0.1:1/api/flow_runs/x/set_state")
    error = PrefectHTTPStatusError("failed", request=request, response=httpx.Response(status, request=request))
    said = machine_error(error)
    if not line:
        assert said is None
        return
    assert said == (f"the Prefect server failed ({status} for POST /api/flow_runs/x/set_state): its database could not "
                    "be written, most often because its disk is full (redress's own server keeps it in PREFECT_HOME, "
                    f"{get_current_settings().home}) (fix it, then run again: nothing is paid twice)")


@pytest.mark.parametrize("free_mb, said", [(0, ": PREFECT_HOME ({home}) has only 0 MB free, too little for its database"),
                                          (63, ": PREFECT_HOME ({home}) has only 63 MB free, too little for its database"),
                                          (64, ""), (10_000, "")])
def test_a_server_that_would_not_start_names_a_full_prefect_home(monkeypatch, free_mb, said):
    import shutil

    from prefect.settings import get_current_settings

    from redress.runtime import prefect_server

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 40, 0, free_mb << 20))
    assert prefect_server._short_of_disk() == said.format(home=get_current_settings().home)


def test_without_verbose_prefects_failures_to_send_logs_print_nothing(monkeypatch):
    """Prefect's log sender writes each failure to reach its server on stderr unless
    logging.raiseExceptions is off (found by the platform review: 60 lines above the
    command's one line); --verbose keeps them."""
    import logging

    from flows.cli import _quiet_prefect

    monkeypatch.setattr(logging, "raiseExceptions", True)
    _quiet_prefect(verbose=True)
    assert logging.raiseExceptions is True
    _quiet_prefect(verbose=False)
    assert logging.raiseExceptions is False
