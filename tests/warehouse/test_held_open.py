"""A run holds its warehouse's DuckDB instance open while the file is small
(redress.warehouse.held_open): every `connect` inside is a connection to that instance,
not an open of the file; a warehouse grown past HOLD_MAX_BYTES is let go; `let_go`
frees it for an opener with settings of its own (Great Expectations, read-only).

Which instance a connection is on shows in a global setting (`threads`): one
connection's SET is seen by the next only on the same instance."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import redress.warehouse as warehouse
from redress.warehouse import connect, held_open, let_go


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


def test_let_go_frees_the_file_for_another_configuration_then_holds_it_again(path):
    with held_open(path):
        with connect(path) as con:
            con.execute("CREATE TABLE probe AS SELECT 'written while held' AS note")
        with let_go(path):
            with duckdb.connect(str(path), read_only=True, config={"memory_limit": "1GB"}) as con:
                assert con.execute("SELECT note FROM probe").fetchall() == [("written while held",)]
        assert read_only_open_refused(path)  # held again
        assert threads_seen_after_setting_one(path) == 1
    with let_go(path):  # not held: nothing to do
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
        with let_go(path):  # nothing held: nothing to let go or hold again
            pass
        assert not read_only_open_refused(path)
