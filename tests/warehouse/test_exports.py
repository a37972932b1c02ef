"""redress/warehouse/exports.py: analyst exports in partitions, rewritten only where the table changed.

Every test checks the files against the table itself (same rows, same order), which
files were written again (a new inode) and which were left alone (same inode and
mtime), on a warehouse built by hand in a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import stat

import duckdb
import pytest
import polars as pl
import pyarrow.parquet as pq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from redress.warehouse import connect, exports
from redress.warehouse.exports import EMPTY, FINGERPRINTS, TABLES, Export, partition_file_name, write_exports
from redress.runtime.permissions import umask_for
from share_group import other_group


def scope_rows(con, sha: str, n: int, category: str = "email") -> None:
    """Rows 1..n of scope file `sha`, customers C00001.. (one statement: DuckDB's
    executemany takes about a millisecond a row)."""
    con.execute("""
        INSERT INTO scope_exposures
        SELECT $sha, i, printf('C%05d', i), 'customer_id', $category, '2025-06-01 00:00:00+00', 'confirmed', NULL
        FROM range(1, $n + 1) t(i) ORDER BY i""", {"sha": sha, "n": n, "category": category})


def ledger_rows(con, run_id: str, n: int, start: int = 0) -> None:
    con.execute("""
        INSERT INTO ledger
        SELECT printf('%s-%05d', $run, i), printf('C%05d', i), 5000 + i, 'KRW', 'voucher', 'B1', 'P1', $run, 1,
               'issued', NULL, $run
        FROM range($start, $start + $n) t(i) ORDER BY i""", {"run": run_id, "start": start, "n": n})


def warehouse(data):
    data.mkdir(exist_ok=True)
    return connect(data / "warehouse.duckdb")


def stamps(folder) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every exported file, by path relative to exports/."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*.parquet"))}


def assert_exports_equal_tables(data) -> None:
    """Each table's export holds the table's rows (as DuckDB reads them back); each
    partition file holds one partition value's rows, sorted by the table's key."""
    folder = data / "exports"
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        def back(path):
            return con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(path)]).fetchall()

        for table, spec in TABLES.items():
            hidden = f"EXCLUDE ({', '.join(exports.HIDDEN[table])})" if table in exports.HIDDEN else ""
            expected = con.execute(f"SELECT * {hidden} FROM {table} ORDER BY {spec.order}").fetchall()
            if spec.partition is None:
                assert back(folder / f"{table}.parquet") == expected, table
                continue
            files = sorted((folder / table).glob("*.parquet"))
            values = [v for (v,) in con.execute(f"SELECT DISTINCT {spec.partition} FROM {table}").fetchall()]
            assert [p.name for p in files] == (sorted(partition_file_name(v) for v in values)
                                               if values else [EMPTY]), table
            whole = []
            if not values:
                assert back(folder / table / EMPTY) == [], table
            for value in values:
                rows = back(folder / table / partition_file_name(value))
                assert rows == con.execute(f"SELECT * {hidden} FROM {table} WHERE {spec.partition} = ? ORDER BY {spec.order}",
                                           [value]).fetchall()
                whole += rows
            assert sorted(whole, key=repr) == sorted(expected, key=repr), table


def test_the_customers_times_as_written_are_not_exported_even_from_an_earlier_table(tmp_path):
    """customers keeps created_at_raw and closed_at_raw for a new policy timezone
    (redress/inbox/retime.py); the analysts' copy has the typed times only."""
    data = tmp_path / "d"
    with warehouse(data) as con:
        con.execute("""INSERT INTO customers BY NAME SELECT 'C1' AS customer_id, 'active' AS status,
                       '2024-01-01T09:00:00' AS created_at_raw, '2024-01-01 00:00:00+00'::TIMESTAMPTZ AS created_at,
                       false AS is_test, 'voucher' AS payout_method, false AS bank_valid, 'f0' AS file_sha256""")
    write_exports(data)
    columns = pq.read_schema(data / "exports" / "customers.parquet").names
    assert "created_at" in columns and not {"created_at_raw", "closed_at_raw"} & set(columns)
    assert_exports_equal_tables(data)
    with warehouse(data) as con:  # as a master an earlier version promoted: no such columns
        con.execute("ALTER TABLE customers DROP COLUMN created_at_raw")
        con.execute("ALTER TABLE customers DROP COLUMN closed_at_raw")
    write_exports(data)
    assert pq.read_schema(data / "exports" / "customers.parquet").names == columns


def test_partitioned_layout_holds_every_row_and_owner_only(tmp_path):
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 30)
        scope_rows(con, "b" * 64, 20)
        ledger_rows(con, "R20251201-001", 12)
    written = write_exports(data)
    folder = data / "exports"
    assert sorted(str(p.relative_to(folder)) for p in written) == sorted(
        [f"{t}.parquet" for t, s in TABLES.items() if s.partition is None]
        + [f"scope_exposures/{'a' * 64}.parquet", f"scope_exposures/{'b' * 64}.parquet",
           "ledger/R20251201-001.parquet"]
        # tables without rows: one empty file each, with their columns
        + [f"{t}/{EMPTY}" for t in ("non_member_exposures", "review", "quarantine", "notifications")])
    assert pl.read_parquet(folder / "scope_exposures" / f"{'a' * 64}.parquet").height == 30
    assert pl.read_parquet(folder / "ledger" / "R20251201-001.parquet")["amount"].sum() == sum(
        5000 + i for i in range(12))
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.rglob("*") if p.is_file())
    assert all(oct(p.stat().st_mode & 0o777) == "0o700" for p in [folder, *folder.iterdir()] if p.is_dir())
    assert_exports_equal_tables(data)


def modes(folder) -> dict[str, set]:
    """The modes (with set-group-id) and groups of exports/ and everything in it."""
    every = [folder, *folder.rglob("*")]
    return {"files": {stat.S_IMODE(p.stat().st_mode) for p in every if p.is_file()},
            "folders": {stat.S_IMODE(p.stat().st_mode) for p in every if p.is_dir()},
            "groups": {p.stat().st_gid for p in every}}


@pytest.mark.parametrize("shared", [False, True])
def test_exports_are_the_owners_or_the_share_groups_as_every_output(tmp_path, shared):
    """exports/ is the analysts' copy: with REDRESS_SHARE_GROUP its files are 0640 and
    its folders 0750 (set-group-id, the group's), as outbox/, reports/ and quarantine/;
    without, 0600 and 0700. Never anyone else's."""
    group = other_group()
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 5)
        ledger_rows(con, "R20251201-001", 3)
    # under the umask a run sets (redress/runtime/permissions.py), whatever an earlier test
    # in this process left (a command sets it for good: the test failed after one, under load)
    previous = os.umask(umask_for(group.gr_name if shared else None))
    try:
        write_exports(data, group.gr_name if shared else None)
    finally:
        os.umask(previous)
    got = modes(data / "exports")
    assert len(list((data / "exports").rglob("*.parquet"))) >= len(TABLES)
    if shared:
        assert got == {"files": {0o640}, "folders": {0o750 | stat.S_ISGID}, "groups": {group.gr_gid}}
    else:
        assert got["files"] == {0o600} and got["folders"] == {0o700}


def test_kept_files_take_the_share_group_named_after_them_and_lose_it_after(tmp_path):
    """A file is kept while its rows are unchanged: naming a share group later gives the
    kept files its modes and group (else the analysts could read only what changed), and
    unsetting it takes them back; nothing is written again for it."""
    group = other_group()
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 5)
        ledger_rows(con, "R20251201-001", 3)
    folder = data / "exports"
    write_exports(data)
    before = stamps(folder)
    assert write_exports(data, group.gr_name) == []
    assert stamps(folder) == before
    assert modes(folder) == {"files": {0o640}, "folders": {0o750 | stat.S_ISGID}, "groups": {group.gr_gid}}
    assert write_exports(data) == []
    assert stamps(folder) == before
    assert modes(folder)["files"] == {0o600} and modes(folder)["folders"] == {0o700}


def test_a_revision_rewrites_only_the_partitions_that_changed(tmp_path):
    """A new scope file, a new run's payments, one return on an earlier run: those three
    partitions are written again; every other partition file keeps its inode and mtime."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 100)
        scope_rows(con, "b" * 64, 50)
        ledger_rows(con, "R20251201-001", 40)
        ledger_rows(con, "R20251202-001", 40, start=100)
    write_exports(data)
    folder = data / "exports"
    before = stamps(folder)
    assert write_exports(data) == []  # nothing changed: nothing written
    assert stamps(folder) == before

    with warehouse(data) as con:
        scope_rows(con, "c" * 64, 101)  # the revision: one new file, 1% more rows
        ledger_rows(con, "R20251203-001", 5, start=200)
        con.execute("UPDATE ledger SET status = 'returned', updated_run_id = 'R20251203-001' "
                    "WHERE payment_id = 'R20251202-001-00100'")
    written = {str(p.relative_to(folder)) for p in write_exports(data)}
    assert {f"scope_exposures/{'c' * 64}.parquet", "ledger/R20251203-001.parquet",
            "ledger/R20251202-001.parquet"} <= written
    after = stamps(folder)
    for unchanged in (f"scope_exposures/{'a' * 64}.parquet", f"scope_exposures/{'b' * 64}.parquet",
                      "ledger/R20251201-001.parquet", "customers.parquet"):
        assert after[unchanged] == before[unchanged], unchanged
    assert after["ledger/R20251202-001.parquet"][0] != before["ledger/R20251202-001.parquet"][0]
    returned = pl.read_parquet(folder / "ledger" / "R20251202-001.parquet").filter(pl.col("status") == "returned")
    assert returned["payment_id"].to_list() == ["R20251202-001-00100"]
    assert_exports_equal_tables(data)


def test_a_partition_that_is_gone_loses_its_file_and_the_old_one_file_layout_goes(tmp_path):
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 10)
        scope_rows(con, "b" * 64, 10)
    (data / "exports").mkdir()
    (data / "exports" / "scope_exposures.parquet").write_bytes(b"from an earlier version")
    (data / "exports" / ".tmp-runs.parquet").write_bytes(b"left by a crash")
    write_exports(data)
    with warehouse(data) as con:
        con.execute("DELETE FROM scope_exposures WHERE file_sha256 = ?", ["b" * 64])
    write_exports(data)
    assert sorted(p.name for p in (data / "exports" / "scope_exposures").iterdir()) == [f"{'a' * 64}.parquet"]
    assert not (data / "exports" / "scope_exposures.parquet").exists()
    assert not list((data / "exports").glob(".tmp-*"))
    assert_exports_equal_tables(data)


def test_incremental_exports_are_byte_identical_to_a_fresh_export_of_the_same_warehouse(tmp_path):
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 60)
        ledger_rows(con, "R20251201-001", 30)
    write_exports(data)
    with warehouse(data) as con:
        scope_rows(con, "b" * 64, 61, category="phone")
        ledger_rows(con, "R20251202-001", 30, start=50)
    write_exports(data)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(data / "warehouse.duckdb", fresh / "warehouse.duckdb")
    write_exports(fresh)
    mine = {k: (data / "exports" / k).read_bytes() for k in stamps(data / "exports")}
    theirs = {k: (fresh / "exports" / k).read_bytes() for k in stamps(fresh / "exports")}
    assert mine == theirs


def test_a_lost_or_unreadable_record_rewrites_every_file_and_a_deleted_file_comes_back(tmp_path):
    data = tmp_path / "data"
    with warehouse(data) as con:
        ledger_rows(con, "R20251201-001", 3)
    write_exports(data)
    folder = data / "exports"
    (folder / "ledger" / "R20251201-001.parquet").unlink()
    assert [p.relative_to(folder).as_posix() for p in write_exports(data)] == ["ledger/R20251201-001.parquet"]
    (folder / FINGERPRINTS).write_text("{not json", encoding="utf-8")
    assert len(write_exports(data)) == len(stamps(folder))
    assert_exports_equal_tables(data)


def test_a_partition_value_that_is_not_a_plain_name_cannot_leave_the_folder():
    for value in ("../../etc/passwd", "a/b", ".hidden", "x.", "", None, "é"):
        name = partition_file_name(value)
        assert "/" not in name and name.startswith("_") and name.endswith(".parquet")
    assert partition_file_name("R20251201-001") == "R20251201-001.parquet"
    assert partition_file_name("../x") != partition_file_name("..x")


OPS = st.lists(st.tuples(st.sampled_from(["add", "return", "delete"]), st.integers(0, 3), st.integers(1, 6)),
               min_size=1, max_size=6)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_after_any_changes_the_exports_equal_the_tables_and_unchanged_partitions_are_untouched(tmp_path_factory, ops):
    data = tmp_path_factory.mktemp("prop") / "data"
    folder = data / "exports"
    with warehouse(data) as con:
        ledger_rows(con, "R20251201-000", 2)
    write_exports(data)
    for step, (op, run, n) in enumerate(ops):
        run_id = f"R20251201-00{run}"
        with warehouse(data) as con:
            before_rows = dict(con.execute("SELECT run_id, list(ledger ORDER BY payment_id) FROM ledger "
                                           "GROUP BY ALL").fetchall())
            if op == "add":
                ledger_rows(con, run_id, n, start=1000 * step)
            elif op == "return":
                con.execute("UPDATE ledger SET status = 'returned' WHERE run_id = ? AND status = 'issued' "
                            "AND payment_id IN (SELECT min(payment_id) FROM ledger WHERE run_id = ? AND status = 'issued')",
                            [run_id, run_id])
            else:
                con.execute("DELETE FROM ledger WHERE run_id = ?", [run_id])
            after_rows = dict(con.execute("SELECT run_id, list(ledger ORDER BY payment_id) FROM ledger "
                                          "GROUP BY ALL").fetchall())
        before = stamps(folder)
        write_exports(data)
        after = stamps(folder)
        for rid, rows in after_rows.items():
            key = f"ledger/{rid}.parquet"
            if before_rows.get(rid) == rows:
                assert after[key] == before[key], key
        assert_exports_equal_tables(data)


def test_an_export_stopped_midway_never_shows_analysts_half_or_twice_a_partition(tmp_path, monkeypatch):
    """A run killed while rewriting a partition: an analyst's read of the whole folder
    (`read_parquet('exports/<table>/*.parquet')`, as the docstring tells them) still
    gives the previous rows, once each, and no file DuckDB cannot read; the next export
    then gives exactly the table and leaves nothing else behind."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 30)
        ledger_rows(con, "R20251201-001", 5)
    write_exports(data)
    folder = data / "exports"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 30, category="phone")  # the partition changes: it is written again
        ledger_rows(con, "R20251201-001", 2, start=50)

    replace = os.replace

    def killed(src, dst):  # the machine stops once the first partition file is copied
        if str(dst).endswith(".parquet"):
            raise OSError("killed")
        replace(src, dst)

    monkeypatch.setattr("redress.warehouse.exports.os.replace", killed)
    try:
        write_exports(data)
    except OSError:
        pass
    monkeypatch.undo()

    def whole(table):
        with duckdb.connect() as con:
            return con.execute("SELECT count(*), count(DISTINCT (file_sha256, row_number, customer_id, data_category))"
                               " FROM read_parquet(?, hive_partitioning = false)" if table == "scope_exposures" else
                               "SELECT count(*), count(DISTINCT payment_id)"
                               " FROM read_parquet(?, hive_partitioning = false)",
                               [str(folder / table / "*.parquet")]).fetchall()[0]

    assert whole("scope_exposures") == (30, 30)
    assert whole("ledger") == (5, 5)
    # a copy cut short (the machine stopped while it was written) is not read either
    for path in folder.rglob("*"):
        if path.is_file() and path.name.startswith(".tmp-"):
            path.write_bytes(path.read_bytes()[:10])
    assert whole("scope_exposures") == (30, 30)
    write_exports(data)
    assert whole("scope_exposures") == (60, 60)
    assert whole("ledger") == (7, 7)
    assert [p for p in folder.rglob(".tmp-*")] == []
    assert_exports_equal_tables(data)


@pytest.mark.parametrize("record", [
    '{"scope_exposures": []}', '{"scope_exposures": null}', '{"scope_exposures": {"files": []}}',
    '{"scope_exposures": {"columns": 3, "files": {"x.parquet": 5}}}', '[]', '"text"', '{"ledger": {"files": null}}',
])
def test_a_fingerprint_record_edited_into_any_shape_rewrites_the_files_without_a_traceback(tmp_path, record):
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 3)
        ledger_rows(con, "R20251201-001", 3)
    write_exports(data)
    folder = data / "exports"
    (folder / "scope_exposures" / f"{'a' * 64}.parquet").write_bytes(b"edited by hand")
    (folder / FINGERPRINTS).write_text(record, encoding="utf-8")
    written = {p.relative_to(folder).as_posix() for p in write_exports(data)}
    assert f"scope_exposures/{'a' * 64}.parquet" in written
    assert_exports_equal_tables(data)


def test_a_partition_file_replaced_by_hand_is_written_again(tmp_path):
    """An analyst saves a filtered copy over a partition file (same name, other rows):
    the rows' fingerprint has not changed, but the file has, so it is written again."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 20)
        scope_rows(con, "b" * 64, 20)
    write_exports(data)
    folder = data / "exports"
    part = folder / "scope_exposures" / f"{'a' * 64}.parquet"
    pl.read_parquet(part).head(3).write_parquet(part)
    written = [p.relative_to(folder).as_posix() for p in write_exports(data)]
    assert written == [f"scope_exposures/{'a' * 64}.parquet"]
    assert pl.read_parquet(part).height == 20
    assert write_exports(data) == []  # and then nothing more
    assert_exports_equal_tables(data)


def test_an_empty_partitioned_table_still_reads_as_an_empty_table_with_its_columns(tmp_path):
    """No review rows, no payments yet: `read_parquet('exports/review/*.parquet')` gives
    zero rows with the table's columns (as the one-file export did), not 'No files found'.
    Once the table has rows, the empty file goes and the glob reads exactly them."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 3)
    write_exports(data)
    folder = data / "exports"

    def read(table):
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            got = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false)",
                              [str(folder / table / "*.parquet")])
            columns = [d[0] for d in got.description]
            rows = got.fetchall()
            expected = con.execute(f"SELECT * FROM {table}")
            return rows, columns, sorted(expected.fetchall(), key=repr), [d[0] for d in expected.description]

    for table, spec in TABLES.items():
        if spec.partition is None or table == "scope_exposures":
            continue
        rows, columns, expected_rows, expected_columns = read(table)
        assert (rows, columns) == ([], expected_columns), table
    with warehouse(data) as con:
        ledger_rows(con, "R20251201-001", 2)
    write_exports(data)
    rows, columns, expected_rows, expected_columns = read("ledger")
    assert (sorted(rows, key=repr), columns) == (expected_rows, expected_columns) and len(rows) == 2
    assert_exports_equal_tables(data)


# A table of our own for `_write`: a partition column, a text slice column with NULLs,
# repeats and non-ASCII, a second key column, and columns of each kind the warehouse has.
CUT = Export("part, key, n NULLS FIRST", "part")
CUT_TABLE = ("CREATE TABLE cut (part VARCHAR, key VARCHAR, n BIGINT, seen_at TIMESTAMP WITH TIME ZONE, "
             "flag BOOLEAN, note VARCHAR)")
keys = st.one_of(st.none(), st.sampled_from(["", "A", "a", "Z9", "ä", "é", "İ", "한", "😀", "a\x00b"]),
                 st.text(max_size=6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(rows=[("p1", "a", None), ("p1", "b", None), ("p1", "c", 1), ("p1", "d", 2), ("p1", "e", 3)],  # a cut
         slice_rows=2, group_rows=2, spec=Export("part, n NULLS FIRST, key", "part"))  # inside the NULLs first
@given(rows=st.lists(st.tuples(st.sampled_from(["p1", "p2"]), keys, st.one_of(st.none(), st.integers(-3, 3))),
                     max_size=60),
       slice_rows=st.integers(1, 25), group_rows=st.integers(1, 9),
       spec=st.sampled_from([CUT, Export("part, n NULLS FIRST, key", "part")]))
def test_a_partition_written_a_range_at_a_time_has_the_bytes_of_one_sort(tmp_path, monkeypatch, rows, slice_rows,
                                                                          group_rows, spec):
    """However a partition is cut into ranges of its sort key (a sort per range), the
    file holds the partition's rows in the table's order, NULLs where it puts them, in row groups
    of ROW_GROUP_ROWS, byte for byte the file of one sort of the whole partition."""
    rows = sorted(set(rows), key=repr)  # (part, key, n) is the table's key: unique
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(CUT_TABLE)
    for part, key, n in rows:  # a few dozen rows of a test table
        con.execute("INSERT INTO cut VALUES (?, ?, ?, TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_seconds(?), ?, ?)",
                    [part, key, n, n or 0, n is None or n % 2 == 0, None if n else "x"])
    monkeypatch.setattr(exports, "ROW_GROUP_ROWS", group_rows)
    count = sum(1 for part, _, _ in rows if part == "p1")
    files = {}
    for label, cut in (("whole", 10**9), ("cut", slice_rows)):
        monkeypatch.setattr(exports, "SLICE_ROWS", cut)
        files[label] = tmp_path / f"{label}.parquet"
        exports._write(con, "cut", spec, "p1", files[label], count, 0o600)
    assert files["whole"].read_bytes() == files["cut"].read_bytes()
    back = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(files["cut"])]).fetchall()
    assert back == con.execute(f"SELECT * FROM cut WHERE part = 'p1' ORDER BY {spec.order}").fetchall()
    assert pq.ParquetFile(files["cut"]).metadata.num_row_groups == -(-count // group_rows)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    ranges = exports._slices(con, "cut", spec, "part = ?", ["p1"], count)
    assert len(ranges) == 1 if count <= slice_rows else len(ranges) >= min(-(-count // slice_rows), 2)


def test_a_big_partition_is_sorted_in_several_ranges_and_reads_back_whole(tmp_path, monkeypatch):
    """The warehouse's own tables: a scope file of 5,000 rows with SLICE_ROWS 700 is cut
    into several ranges (each sorted alone), and so is a run's quarantine of 4,000 rows of
    one kind and one file (cut inside that run of values); the exports equal the tables."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 5000)
        ledger_rows(con, "R20251201-001", 3000)
        con.execute("INSERT INTO quarantine SELECT 'R20251201-001', 'scope', 'f', 'all bad.csv', "
                    "CASE WHEN i % 500 = 0 THEN NULL ELSE i END, 'bad_row', NULL, '{}', NULL FROM range(4000) t(i)")
    monkeypatch.setattr(exports, "SLICE_ROWS", 700)
    monkeypatch.setattr(exports, "ROW_GROUP_ROWS", 1000)
    ranges = []
    slices = exports._slices
    monkeypatch.setattr(exports, "_slices", lambda *a: ranges.append(slices(*a)) or ranges[-1])
    write_exports(data)
    assert sorted(len(r) for r in ranges)[-3:] == [5, 6, 8]  # the ledger, the quarantine, the scope file
    assert pq.ParquetFile(data / "exports" / "scope_exposures" / f"{'a' * 64}.parquet").metadata.num_row_groups == 5
    assert_exports_equal_tables(data)


def _exported_then_changed(tmp_path):
    """A warehouse with one scope file, exported, then 50 more rows in that file: (the
    data folder, the file's export, its bytes before the change)."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 50)
    write_exports(data)
    part = data / "exports" / "scope_exposures" / f"{'a' * 64}.parquet"
    before = part.read_bytes()
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 50, category="phone")
    return data, part, before


def _left_as_before_then_repaired(data, part, before: bytes, monkeypatch) -> None:
    """After a failed export: the file's previous bytes, no `.partial` beside it, and
    the next export (the failure undone) equal to the tables."""
    assert part.read_bytes() == before
    assert [p.name for p in part.parent.iterdir()] == [part.name]
    monkeypatch.undo()
    write_exports(data)
    assert_exports_equal_tables(data)


def test_a_write_that_fails_midway_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    """The disk fills while the third range is read: the error reaches the caller, the
    previous export of the partition is still there, whole, and no `.partial` is left."""
    data, part, before = _exported_then_changed(tmp_path)
    monkeypatch.setattr(exports, "SLICE_ROWS", 10)
    monkeypatch.setattr(exports, "ROW_GROUP_ROWS", 7)
    calls = []
    sql = duckdb.DuckDBPyConnection.sql

    def full(self, query, **kwargs):
        if query.startswith("SELECT * FROM scope_exposures"):
            calls.append(query)
            if len(calls) == 3:
                raise duckdb.IOException("No space left on device")
        return sql(self, query, **kwargs)

    monkeypatch.setattr(duckdb.DuckDBPyConnection, "sql", full)
    with pytest.raises(duckdb.IOException):
        write_exports(data)
    _left_as_before_then_repaired(data, part, before, monkeypatch)



@pytest.mark.parametrize("closes_failing", [1, 2])
def test_a_footer_that_fails_leaves_the_previous_file_no_partial_one_and_the_first_error(
        tmp_path, monkeypatch, closes_failing):
    """The disk fills as the footer is written (the writer's close): the error reaches
    the caller as it was, even when the close tried again on the way out fails too,
    the previous file is still there, whole, and no `.partial` is left (review of the
    notify writers, issue 10: the same kind of cleanup)."""
    import pyarrow.parquet as pq

    data, part, before = _exported_then_changed(tmp_path)
    close, failed = pq.ParquetWriter.close, []

    def full(self):
        if len(failed) < closes_failing:
            failed.append(1)
            raise OSError(28, "No space left on device" if len(failed) == 1 else "a second error")
        return close(self)

    monkeypatch.setattr(pq.ParquetWriter, "close", full)
    with pytest.raises(OSError, match="No space left on device"):
        write_exports(data)
    _left_as_before_then_repaired(data, part, before, monkeypatch)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["scope", "customers"]), st.one_of(st.none(), st.text(max_size=3)),
                               st.one_of(st.none(), st.integers(-2, 2)), st.sampled_from(["bad_row", "a"])),
                     max_size=30))
def test_the_sort_key_orders_rows_as_each_table_s_order_does(rows):
    """`sort_key` is what `_slices` cuts on: for every exported table, ordering its rows
    by the key is ordering them by the table's order (NULLS FIRST included), so a range
    of the key is a run of the file."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE q (run_id VARCHAR, kind VARCHAR, file_name VARCHAR, row_number BIGINT, reason VARCHAR)")
    for i, (kind, name, number, reason) in enumerate(rows):
        con.execute("INSERT INTO q VALUES ('R1', ?, ?, ?, ?)", [kind, name, number, f"{reason}{i}"])
    spec = TABLES["quarantine"]
    assert (con.execute(f"SELECT * FROM q ORDER BY {exports.sort_key(spec)}").fetchall()
            == con.execute(f"SELECT * FROM q ORDER BY {spec.order}").fetchall())
    for table, spec in TABLES.items():  # every table's key names its own columns, in its order
        key = exports.sort_key(spec)
        terms = [t.split()[0] for t in spec.order.split(",") if t.split()[0] != spec.partition]
        assert key.startswith("create_sort_key(") and [k.split(",")[0] for k in key[16:-1].split("', ")] == terms, table


def test_text_reaches_the_parquet_writer_with_64_bit_offsets(tmp_path, monkeypatch):
    """DuckDB's Arrow stream with 32-bit string offsets refuses a batch that holds more
    than 2 GiB of one text column ("Arrow Appender: The maximum total string size for
    regular string buffers is 2147483647"): a row group of ROW_GROUP_ROWS rows of 2 KB
    notes or rows as given, or 1,100 quarantined rows of 2 MB, failed the export (and
    every table after it) where DuckDB's COPY wrote it. Reproducing that takes 8 GB of
    memory, so this checks what prevents it: every text column reaches the writer as
    large_string, and the file still reads back as VARCHAR."""
    import pyarrow as pa

    schemas = []
    writer = pq.ParquetWriter

    class Spy(writer):
        def __init__(self, where, schema, **kwargs):
            schemas.append(schema)
            super().__init__(where, schema, **kwargs)

    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 30)
        ledger_rows(con, "R20251201-001", 12)
    monkeypatch.setattr(exports.pq, "ParquetWriter", Spy)
    write_exports(data)
    text = [field.type for schema in schemas for field in schema if field.name in ("customer_id", "file_sha256")]
    assert text and all(pa.types.is_large_string(kind) for kind in text), text
    assert not [field for schema in schemas for field in schema if pa.types.is_string(field.type)]
    assert_exports_equal_tables(data)
    scope = data / "exports" / "scope_exposures" / f"{'a' * 64}.parquet"
    with duckdb.connect() as con:
        kinds = {name: kind for name, kind, *_ in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(scope)]).fetchall()}
    assert (kinds["customer_id"], kinds["accessed_at"]) == ("VARCHAR", "TIMESTAMP WITH TIME ZONE")
    assert pl.read_parquet(scope).schema["customer_id"] == pl.String


def test_files_an_earlier_version_wrote_are_written_again_once(tmp_path):
    """A record without this version's FORMAT (files of DuckDB's COPY, snappy, before
    the sliced writer) rewrites every file once, to the bytes of a fresh export of the
    same warehouse; the next export writes nothing."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 20)
        ledger_rows(con, "R20251201-001", 5)
    write_exports(data)
    folder = data / "exports"
    record = json.loads((folder / FINGERPRINTS).read_text())
    for entry in record.values():
        del entry["format"]
    (folder / FINGERPRINTS).write_text(json.dumps(record))
    before = stamps(folder)
    written = write_exports(data)
    assert sorted(p.relative_to(folder).as_posix() for p in written) == sorted(before)
    assert write_exports(data) == []
    fresh = tmp_path / "fresh"
    shutil.copytree(data, fresh, ignore=shutil.ignore_patterns("exports"))
    write_exports(fresh)
    assert {p: (folder / p).read_bytes() for p in before} == {p: (fresh / "exports" / p).read_bytes() for p in before}


@pytest.mark.parametrize("first", [
    "CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN 'infinity'::TIMESTAMPTZ WHEN 2 THEN '-infinity'::TIMESTAMPTZ "
    "ELSE TIMESTAMPTZ '2020-03-29 00:30:00+00' + to_minutes(i % 7 * 30) END",
    "CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN 'infinity'::DATE ELSE DATE '2020-01-01' + (i % 4)::INTEGER END",
    "make_timestamp_ns(1577836800000000000 + i % 5 * 1000 + i % 3)",  # nanoseconds a datetime has not
])
@pytest.mark.parametrize("nulls", ["", " NULLS FIRST"])
def test_a_range_s_first_column_bound_keeps_values_python_cannot_hold(tmp_path, monkeypatch, first, nulls):
    """The first column's bound of a range is made from the cut's value in DuckDB, not
    a Python one: infinity came back as datetime.max (and TIMESTAMP_NS truncated to the
    microsecond), so `column <= datetime.max` left out the rows at infinity that the
    sort key put in the range: a file written in ranges lost rows, silently."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT 'p' AS p, {first} AS a, i AS id FROM range(200) r(i)")
    spec = Export(f"p, a{nulls}, id", "p")
    monkeypatch.setattr(exports, "ROW_GROUP_ROWS", 7)
    files = {}
    for cut in (10**9, 5, 17, 40):
        monkeypatch.setattr(exports, "SLICE_ROWS", cut)
        exports._write(con, "t", spec, "p", tmp_path / f"{cut}.parquet", 200, 0o600)
        files[cut] = (tmp_path / f"{cut}.parquet").read_bytes()
    assert pq.read_table(tmp_path / f"{10**9}.parquet").num_rows == 200
    assert all(data == files[10**9] for data in files.values())


def test_a_column_of_distinct_values_is_written_plain_and_every_other_with_a_dictionary(tmp_path):
    """Which columns get a dictionary is decided by the column's name
    (exports.DISTINCT_COLUMNS), never by the rows: the encodings of every column chunk
    of every file, read back from the files' metadata."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 40)
        ledger_rows(con, "R20251201-001", 25)
    write_exports(data)
    seen = set()
    for path in sorted((data / "exports").rglob("*.parquet")):
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                chunk = meta.row_group(group).column(i)
                dictionary = chunk.dictionary_page_offset is not None
                name = chunk.path_in_schema
                assert dictionary == (name not in exports.DISTINCT_COLUMNS), (path, name)
                seen.add((name, dictionary))
    # both kinds were met: the names the rule is about, and others
    assert {("customer_id", False), ("payment_id", False), ("row_number", False),
            ("rail", True), ("file_sha256", True), ("amount", True)} <= seen


@pytest.mark.parametrize("writers", [1, 3])
def test_files_written_side_by_side_have_the_bytes_of_files_written_one_at_a_time(tmp_path, monkeypatch,
                                                                                  writers):
    """WRITERS files at once, each on its own cursor: the same bytes, the same record and
    the same list of files written as one writer gives, and a big partition sorted in
    ranges beside them changes nothing either."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 60)
        scope_rows(con, "b" * 64, 45, category="phone")
        ledger_rows(con, "R20251201-001", 30)
        ledger_rows(con, "R20251202-001", 20, start=40)
    monkeypatch.setattr(exports, "SLICE_ROWS", 25)
    monkeypatch.setattr(exports, "ROW_GROUP_ROWS", 16)
    results = {}
    for count in (2, writers):
        fresh = tmp_path / f"writers-{count}"
        fresh.mkdir()
        shutil.copy(data / "warehouse.duckdb", fresh / "warehouse.duckdb")
        monkeypatch.setattr(exports, "WRITERS", count)
        written = [p.relative_to(fresh).as_posix() for p in write_exports(fresh)]
        folder = fresh / "exports"
        record = json.loads((folder / FINGERPRINTS).read_text())
        for entry in record.values():
            for file in entry["files"].values():
                del file["file"]  # sizes are compared with the bytes; mtimes differ
        results[count] = (written, record, {k: (folder / k).read_bytes() for k in stamps(folder)})
        assert_exports_equal_tables(fresh)
    assert results[2] == results[writers]
    assert results[2][1].keys() == {t for t in TABLES}


def test_after_a_writer_fails_no_further_file_is_written_and_its_error_is_raised(tmp_path, monkeypatch):
    """The disk fills while the first scope partition is written: the error is raised,
    no file of a later table is written, none is left partial, and only the tables
    before it are recorded."""
    data = tmp_path / "data"
    with warehouse(data) as con:
        scope_rows(con, "a" * 64, 20)
        scope_rows(con, "b" * 64, 20)
        ledger_rows(con, "R20251201-001", 5)
    write_ = exports._write
    tried = []

    def full(con, table, *args):
        tried.append(table)
        if table == "scope_exposures":
            raise OSError(28, "No space left on device")
        return write_(con, table, *args)

    fingerprints = exports.fingerprints

    def slow(con, table, spec):  # the main thread lags behind the writer, as at scale
        import time
        time.sleep(0.3)
        return fingerprints(con, table, spec)

    monkeypatch.setattr(exports, "_write", full)
    monkeypatch.setattr(exports, "fingerprints", slow)
    with pytest.raises(OSError, match="No space left on device"):
        write_exports(data)
    order = list(TABLES)
    assert all(order.index(t) <= order.index("scope_exposures") for t in tried), tried
    folder = data / "exports"
    assert not (folder / "ledger").exists() or not list((folder / "ledger").glob("*.parquet"))
    assert not list(folder.rglob(f"{exports.TMP_PREFIX}*"))
    record = json.loads((folder / FINGERPRINTS).read_text())
    assert set(record) == {t for t in order[:order.index("scope_exposures")]}
