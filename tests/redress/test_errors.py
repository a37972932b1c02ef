"""Failures of the machine are one line, mapped in one place (issue 9, item 4)."""

from __future__ import annotations

import errno

import duckdb
import pytest

from redress.errors import machine_error


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"), (errno.EACCES, "permission denied"),
    (errno.EPERM, "not permitted"), (errno.EDQUOT, "quota"), (errno.EIO, "input/output"),
])
def test_machine_failures_are_one_line(code, words):
    line = machine_error(OSError(code, "text from the OS", "/data/outbox/batches/x"))
    assert words in line and "/data/outbox/batches/x" in line and "\n" not in line


def test_other_errors_keep_their_traceback():
    assert machine_error(OSError(errno.ENOENT, "gone")) is None  # a file vanishing mid-run is a bug
    assert machine_error(ValueError("a bug")) is None


@pytest.mark.parametrize("text, words", [
    ('IO Error: Could not write file "/d/w.duckdb.wal": No space left on device', "no space left"),
    ('IO Error: Cannot open file "/d/x": Permission denied', "permission denied"),
    ('IO Error: The file "/d/w.duckdb" exists, but it is not a valid DuckDB database file!', "not a DuckDB"),
])
def test_duckdb_reports_of_the_same_failures_are_one_line(text, words):
    line = machine_error(duckdb.IOException(text))
    assert words in line and "\n" not in line
