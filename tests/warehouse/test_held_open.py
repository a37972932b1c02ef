"""A run holds its warehouse's DuckDB instance open while the file is small
(redress.warehouse.held_open): every `connect` inside is a connection to that instance,
not an open of the file, Great Expectations' too; a warehouse grown past HOLD_MAX_BYTES
is let go.

Which instance a connection is on shows in a global setting (`threads`): one
connection's SET is seen by the next only on the same instance."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import redress.warehouse as warehouse
from redress.checks.suites import validate_table
from redress.warehouse import connect, held_open


def threads_seen_after_setting_one(path: Path) -> int:
    with connect(path) as con:
        con.execute("SET threads = 1")
    with connect(path) as con:
        return con.execute("SELECT current_setting('threads')").fetchall()[0][0]


def read_only_open_refused(path: Path) -> bool:
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        assert "different configuration" in str(exc)
        return True
    return False


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    connect(path).close()  # made, with its tables
    return path


def test_connections_inside_are_on_the_held_instance_and_none_is_left_after(path):
    default = duckdb.connect().execute("SELECT current_setting('threads')").fetchall()[0][0]
    assert default != 1  # else the setting cannot tell one instance from another
    assert threads_seen_after_setting_one(path) == default  # each connect opened the file afresh
    with held_open(path):
        assert threads_seen_after_setting_one(path) == 1
        with held_open(path):  # nested: the outer one holds
            with connect(path, read_only=True) as con:  # a run's reader: the held instance too
                assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 1
        assert threads_seen_after_setting_one(path) == 1
        assert read_only_open_refused(path)  # DuckDB: one instance per file and process
    assert not read_only_open_refused(path)  # closed on leaving: nothing of it is left
    assert threads_seen_after_setting_one(path) == default


def unique_ids_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "ids.json"
    suite.write_text("""{"name": "ids", "expectations": [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"},
         "meta": {"reason": "DUPLICATE_ID"}}]}""")
    return suite


def test_great_expectations_validates_on_the_held_instance_and_leaves_it_held(path, tmp_path, monkeypatch):
    monkeypatch.setattr("redress.checks.suites.EXPECTATIONS_DIR", tmp_path)
    unique_ids_suite(tmp_path)
    with held_open(path):
        with connect(path) as con:
            con.execute("CREATE TABLE probe AS SELECT * FROM (VALUES (1), (2), (2)) AS t(id)")
            con.execute("SET threads = 1")  # seen only while this instance stays open
        result = validate_table(path, "probe", "ids", index_column=None)
        assert [(r.reason, r.success, r.unexpected_count, r.element_count) for r in result.results] == [
            ("DUPLICATE_ID", False, 2, 3)]
        assert read_only_open_refused(path)  # never let go
        with connect(path) as con:
            assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 1
    # Not held: GX opens the file itself, read-only, and closes it after.
    result = validate_table(path, "probe", "ids", index_column=None)
    assert [(r.success, r.unexpected_count) for r in result.results] == [(False, 2)]
    assert not read_only_open_refused(path)


def test_a_warehouse_past_the_bound_is_not_held_or_is_let_go_as_it_grows(path, monkeypatch):
    size = path.stat().st_size
    monkeypatch.setattr(warehouse, "HOLD_MAX_BYTES", size - 1)
    with held_open(path):  # too big from the start
        assert not read_only_open_refused(path)
    monkeypatch.setattr(warehouse, "HOLD_MAX_BYTES", size)
    with held_open(path):
        assert read_only_open_refused(path)
        with connect(path) as con:
            con.execute("CREATE TABLE filler AS SELECT range AS n, repeat('x', 100) AS text FROM range(200000)")
            con.execute("CHECKPOINT")
        assert path.stat().st_size > size
        connect(path).close()  # the first connect past the bound lets the instance go
        assert not read_only_open_refused(path)
