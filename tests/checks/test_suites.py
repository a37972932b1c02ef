"""Expectation suites run by Great Expectations inside DuckDB (redress/checks/suites.py,
redress/checks/gx_duckdb.py). Every warehouse lives in tmp_path."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import duckdb
import great_expectations as gx
import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given, settings, strategies as st
from great_expectations.execution_engine import sqlalchemy_execution_engine as gx_sql
from great_expectations.expectations.metrics.util import get_sqlalchemy_column_metadata
from sqlalchemy.engine import URL
from polars.testing import assert_frame_equal

from redress.checks import gx_duckdb
from redress.warehouse import connect
from redress.checks.suites import UNEXPECTED_ROWS, failing_rows, failing_rows_of, load_suite, validate_table

STAGING_COLUMNS = """
    row_number BIGINT, customer_id VARCHAR, name VARCHAR, email VARCHAR, phone VARCHAR,
    status VARCHAR, created_at VARCHAR, closed_at VARCHAR, is_test VARCHAR,
    payout_method VARCHAR, bank_code VARCHAR, bank_account VARCHAR,
    created_at_ts TIMESTAMPTZ, closed_at_ts TIMESTAMPTZ, closed_at_missing BOOLEAN,
    closed_at_unexpected BOOLEAN, closed_at_invalid BOOLEAN, is_test_invalid BOOLEAN,
    created_at_invalid BOOLEAN, customer_id_unprintable BOOLEAN, customer_id_too_long BOOLEAN,
    email_unprintable BOOLEAN
"""

# One clean row as SQL literals; each bad row below changes it to break exactly one rule.
CLEAN = {
    "customer_id": "'c{n}'", "name": "'Kim'", "email": "'kim@example.com'",
    "phone": "'010-1234-5678'", "status": "'active'", "created_at": "'2024-01-01T00:00:00'",
    "closed_at": "NULL", "is_test": "'false'", "payout_method": "'voucher'",
    "bank_code": "NULL", "bank_account": "NULL",
    "created_at_ts": "TIMESTAMPTZ '2024-01-01 00:00:00+09'", "closed_at_ts": "NULL",
    "closed_at_missing": "false", "closed_at_unexpected": "false", "closed_at_invalid": "false",
    "is_test_invalid": "false", "created_at_invalid": "false",
    "customer_id_unprintable": "false", "customer_id_too_long": "false", "email_unprintable": "false",
}

BAD_ROWS = [  # (change to the clean row, the one reason it must be reported with)
    ({"customer_id": "NULL"}, "missing_customer_id"),
    ({"customer_id": "'dup'"}, "duplicate_customer_id"),
    ({"customer_id": "'dup'"}, "duplicate_customer_id"),
    ({"name": "NULL"}, "missing_name"),
    ({"status": "NULL"}, "unknown_status"),
    ({"status": "'Active'"}, "unknown_status"),
    ({"created_at": "'yesterday'", "created_at_ts": "NULL", "created_at_invalid": "true"},
     "invalid_timestamp"),
    ({"status": "'closed'", "closed_at": "'soon'", "closed_at_invalid": "true"},
     "invalid_timestamp"),
    ({"status": "'closed'", "closed_at_missing": "true"}, "missing_closed_at"),
    ({"closed_at": "'2025-01-01'", "closed_at_ts": "TIMESTAMPTZ '2025-01-01 00:00:00+09'",
      "closed_at_unexpected": "true"}, "unexpected_closed_at"),
    ({"is_test": "'maybe'", "is_test_invalid": "true"}, "invalid_is_test"),
    ({"payout_method": "'cash'"}, "unknown_payout_method"),
    ({"customer_id": "'c\x01{n}'", "customer_id_unprintable": "true"}, "unprintable_customer_id"),
    ({"customer_id": "'" + "c" * 141 + "'", "customer_id_too_long": "true"}, "customer_id_too_long"),
    ({"email": "'kim\u202e@example.com'", "email_unprintable": "true"}, "unprintable_email"),
]


def staging_warehouse(path: Path, changes: list[dict], *, drop: str | None = None) -> Path:
    """A warehouse with a customers_staging table: row n is CLEAN with changes[n-1]."""
    rows = []
    for n, change in enumerate(changes, start=1):
        values = {**CLEAN, **change}
        rows.append(f"({n}, " + ", ".join(values[c].format(n=n) for c in CLEAN) + ")")
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE customers_staging ({STAGING_COLUMNS})")
        con.execute("INSERT INTO customers_staging VALUES " + ", ".join(rows))
        if drop:
            con.execute(f"ALTER TABLE customers_staging DROP COLUMN {drop}")
    return path


def frame(pairs: list[tuple[int | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(pairs, schema={"row_number": pl.Int64, "reason": pl.String}, orient="row")


# --- the shim -------------------------------------------------------------------------


@pytest.fixture
def tiny_table(tmp_path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t (row_number BIGINT, customer_id VARCHAR)")
        con.execute("INSERT INTO t VALUES (1, 'a'), (2, NULL), (3, 'c')")
    return path


def one_expectation(warehouse: Path):
    with gx_duckdb.table_batch(warehouse, "t") as batch:
        return batch.validate(
            gx.expectations.ExpectColumnValuesToNotBeNull(column="customer_id"),
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": ["row_number"],
            },
        )


def test_gx_still_has_the_persisted_connection_list_the_shim_extends():
    gx_duckdb.persist_duckdb_connection()
    dialects = gx_sql._PERSISTED_CONNECTION_DIALECTS
    assert "sqlite" in dialects and "duckdb" in dialects
    assert all(isinstance(dialect.value, str) for dialect in dialects)
    assert gx_sql._dialect_requires_persisted_connection(connection_string="duckdb:///w.duckdb")
    # the URL redress gives GX (its own dialect, SkipFailingReflection)
    url = gx_duckdb.warehouse_url(Path("w.duckdb"))
    assert url.startswith("duckdb+redress:") and gx_sql._dialect_requires_persisted_connection(connection_string=url)


def test_with_the_shim_an_expectation_on_a_duckdb_table_returns_a_real_result(tiny_table):
    evr = one_expectation(tiny_table)
    assert not evr.exception_info.get("raised_exception")
    assert evr.success is False
    assert evr.result["element_count"] == 3
    assert evr.result["unexpected_count"] == 1
    assert evr.result["unexpected_index_list"] == [{"row_number": 2, "customer_id": None}]
    assert "customer_id IS NULL" in evr.result["unexpected_index_query"]


def test_gx_still_needs_the_shim(tiny_table, monkeypatch):
    # When this fails, GX reads DuckDB results by itself: the shim can go.
    without = tuple(d for d in gx_sql._PERSISTED_CONNECTION_DIALECTS if d != "duckdb")
    monkeypatch.setattr(gx_sql, "_PERSISTED_CONNECTION_DIALECTS", without)
    monkeypatch.setattr(gx_duckdb, "persist_duckdb_connection", lambda: None)
    evr = one_expectation(tiny_table)
    assert evr.success is False and "element_count" not in evr.result


def test_duckdb_engine_s_reflection_queries_still_fail(tiny_table):
    # When this fails, duckdb-engine reflects DuckDB 2 tables: SkipFailingReflection can go.
    url = URL.create("duckdb", database=str(tiny_table)).render_as_string()  # duckdb-engine's own dialect
    engine = sa.create_engine(url, connect_args={"read_only": True})
    try:
        inspector = sa.inspect(engine)
        with pytest.raises(sa.exc.ProgrammingError, match="REGCLASS"):
            inspector.get_pk_constraint("t")
        with pytest.raises(sa.exc.ProgrammingError, match="pg_collation"):
            inspector.get_columns("t")
    finally:
        engine.dispose()


def _column_metadata(url: str, table: str) -> list[tuple]:
    """GX's column metadata of `table` (the `table.column_types` metric's source), through
    the dialect `url` names: each column's fields as GX gives them, values as text."""
    engine = gx_sql.SqlAlchemyExecutionEngine(connection_string=url, connect_args={"read_only": True})
    try:
        columns = get_sqlalchemy_column_metadata(engine, sa.table(table).name)  # as GX passes it
    finally:
        engine.close()
    return [tuple(sorted((k, str(v)) for k, v in c.items())) for c in columns]


def test_gx_reads_the_same_columns_through_redress_s_dialect_for_every_table(tmp_path):
    """SkipFailingReflection only skips queries that fail: for every warehouse table, a
    staging table and a view (the emission gate validates views), GX's column metadata
    through it is duckdb-engine's."""
    warehouse = staging_warehouse(tmp_path / "warehouse.duckdb", [{}])
    with connect(warehouse) as con:  # every table of the warehouse
        con.execute("CREATE VIEW ledger_view AS SELECT payment_id, amount FROM ledger")
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    assert len(tables) > 10 and {"customers_staging", "ledger", "ledger_view"} <= set(tables)
    gx_duckdb.persist_duckdb_connection()
    theirs = URL.create("duckdb", database=str(warehouse)).render_as_string()
    for table in tables:
        ours = _column_metadata(gx_duckdb.warehouse_url(warehouse), table)
        assert ours and ours == _column_metadata(theirs, table), table


def test_the_warehouse_is_released_after_validation(tiny_table):
    validate_table(tiny_table, "t", "customers_staging")  # fails: not a staging table
    with duckdb.connect(str(tiny_table)) as con:  # read-write: other settings than GX's
        con.execute("INSERT INTO t VALUES (4, 'd')")
    with pytest.raises(Exception, match="missing_table"):
        validate_table(tiny_table, "missing_table", "customers_staging")
    with duckdb.connect(str(tiny_table)) as con:
        con.execute("INSERT INTO t VALUES (5, 'e')")


def test_a_missing_warehouse_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        validate_table(tmp_path / "none.duckdb", "t", "customers_staging")
    assert list(tmp_path.iterdir()) == []


def test_validation_is_quiet_offline_and_writes_nothing_in_the_cwd(
    tiny_table, tmp_path, monkeypatch, capfd
):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def no_network(*args, **kwargs):
        raise AssertionError("GX tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    validate_table(tiny_table, "t", "customers_staging")
    assert list(cwd.iterdir()) == []
    assert capfd.readouterr().err == ""  # no progress bars, no warnings


# --- customers_staging ------------------------------------------------------------------


def test_each_bad_customers_row_is_reported_once_with_its_reason(tmp_path):
    changes = [{}] + [change for change, _ in BAD_ROWS] + [{"payout_method": "NULL"}]
    warehouse = staging_warehouse(tmp_path / "w.duckdb", changes)
    expected = frame([(n, reason) for n, (_, reason) in enumerate(BAD_ROWS, start=2)])
    assert_frame_equal(failing_rows(warehouse, "customers_staging", "customers_staging"), expected)

    result = validate_table(warehouse, "customers_staging", "customers_staging")
    assert result.success is False
    assert all(r.error is None and r.element_count == len(changes) for r in result.results[1:])
    counts: dict[str, int] = {}
    for r in result.failed:
        counts[r.reason] = counts.get(r.reason, 0) + r.unexpected_count
    assert counts == dict(expected.group_by("reason").len().iter_rows())


def test_a_clean_customers_file_passes(tmp_path):
    closed = {"status": "'closed'", "closed_at": "'2025-01-01'"}
    warehouse = staging_warehouse(tmp_path / "w.duckdb", [{}, {"payout_method": "NULL"}, closed])
    result = validate_table(warehouse, "customers_staging", "customers_staging")
    assert result.success, result.failed
    assert len(result.results) == 15
    assert failing_rows_of(warehouse, result).is_empty()


def test_a_missing_column_fails_the_whole_table(tmp_path):
    warehouse = staging_warehouse(tmp_path / "w.duckdb", [{}], drop="is_test_invalid")
    result = validate_table(warehouse, "customers_staging", "customers_staging")
    failed = {r.reason: r for r in result.failed}
    assert set(failed) == {"missing_column", "invalid_is_test"}
    assert "is_test_invalid" in failed["invalid_is_test"].error
    assert_frame_equal(
        failing_rows_of(warehouse, result),
        frame([(None, "invalid_is_test"), (None, "missing_column")]),
    )


# --- scope_exposures (a gate) ---------------------------------------------------------

CATEGORIES = {"categories": ["name", "email", "phone"]}


def exposures_warehouse(path: Path, rows: list[tuple]) -> Path:
    """The real warehouse schema, with (file, row, customer, matched_by, category,
    confidence) exposures."""
    with connect(path) as con:
        con.executemany(
            "INSERT INTO scope_exposures"
            " VALUES (?, ?, ?, ?, ?, TIMESTAMPTZ '2025-07-01 00:00:00+00', ?, NULL)",
            rows,
        )
    return path


def test_scope_exposures_pass_with_the_policy_categories(tmp_path):
    warehouse = exposures_warehouse(tmp_path / "w.duckdb", [
        ("f1", 1, "c1", "customer_id", "name", "confirmed"),
        ("f1", 2, "c1", "email", "email", "suspected"),
        ("f2", 1, "c2", "phone", "phone", "confirmed"),
    ])
    result = validate_table(warehouse, "scope_exposures", "scope_exposures", parameters=CATEGORIES)
    assert result.success, result.failed


def test_scope_exposures_gate_fails_on_bad_values_and_duplicate_rows(tmp_path):
    warehouse = exposures_warehouse(tmp_path / "w.duckdb", [
        ("f1", 1, "c1", "customer_id", "name", "confirmed"),
        ("f1", 2, "c1", "email", "entrance_code", "confirmed"),  # not a category here
        ("f1", 2, "c2", "phone", "phone", "Confirmed"),  # the same file row again
    ])
    result = validate_table(warehouse, "scope_exposures", "scope_exposures", parameters=CATEGORIES)
    assert {r.reason: r.unexpected_count for r in result.failed} == {
        "gate_failed_unknown_category": 1,
        "gate_failed_invalid_confidence": 1,
        "gate_failed_duplicate_row": 2,
    }
    # The duplicate key is found by the suite's own SQL, which names no index column:
    # the table fails as a whole for it.
    assert_frame_equal(failing_rows_of(warehouse, result), frame([
        (None, "gate_failed_duplicate_row"),
        (2, "gate_failed_invalid_confidence"),
        (2, "gate_failed_unknown_category"),
    ]))


def test_a_row_number_repeated_in_another_file_is_no_duplicate_and_a_triple_counts_three(tmp_path):
    warehouse = exposures_warehouse(tmp_path / "w.duckdb", [
        ("f1", 1, "c1", "customer_id", "name", "confirmed"),
        ("f2", 1, "c1", "customer_id", "name", "confirmed"),  # row 1 of another file: not a duplicate
        ("f3", 7, "c2", "customer_id", "email", "confirmed"),
        ("f3", 7, "c2", "customer_id", "email", "confirmed"),
        ("f3", 7, "c3", "customer_id", "phone", "suspected"),
    ])
    result = validate_table(warehouse, "scope_exposures", "scope_exposures", parameters=CATEGORIES)
    assert {r.reason: r.unexpected_count for r in result.failed} == {"gate_failed_duplicate_row": 3}


def duplicate_key_queries() -> dict[str, str]:
    """suite name -> the SQL of its duplicate-row expectation (as shipped)."""
    queries = {}
    for suite in ("scope_exposures", "scope_rows"):
        found = [e for e in load_suite(suite).expectations if e.expectation_type == UNEXPECTED_ROWS]
        assert len(found) == 1, suite
        queries[suite] = found[0].unexpected_rows_query
    return queries


DUPLICATE_KEY_QUERIES = duplicate_key_queries()  # read once, not per example


KEYS = st.lists(st.tuples(st.sampled_from(["a" * 64, "b" * 64, "c" * 64]), st.integers(1, 6)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(keys=KEYS)
def test_the_duplicate_key_sql_returns_exactly_the_rows_whose_key_repeats(keys):
    """Both suites' SQL against Python's count of each (file_sha256, row_number): every
    row of a repeated key, and nothing else; also with a "hash" under which every key
    collides, so the exact second step is what decides (a real collision of two files'
    hashes is too rare to construct)."""
    counts = Counter(keys)
    expected = sorted(k for k in keys if counts[k] > 1)
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (file_sha256 VARCHAR, row_number BIGINT, other VARCHAR)")
        if keys:
            con.executemany("INSERT INTO t VALUES (?, ?, 'x')", keys)
        for suite, query in DUPLICATE_KEY_QUERIES.items():
            for collide in (False, True):
                sql = query.replace("{batch}", "t")
                if collide:
                    sql = sql.replace("hash(file_sha256)", "0").replace("hash(t.file_sha256)", "0")
                    assert "hash(" not in sql, suite
                assert sorted(con.execute(sql).fetchall()) == expected, (suite, collide)


def test_scope_exposures_without_categories_fails_loudly(tmp_path):
    rows = [("f1", 1, "c1", "customer_id", "name", "confirmed")]
    warehouse = exposures_warehouse(tmp_path / "w.duckdb", rows)
    with pytest.raises(gx.exceptions.SuiteParameterError, match="categories"):
        validate_table(warehouse, "scope_exposures", "scope_exposures")
    with connect(warehouse) as con:  # released all the same
        con.execute("DELETE FROM scope_exposures")


# --- scale ------------------------------------------------------------------------------


def test_a_million_rows_are_checked_in_sql_and_every_failing_row_is_listed(tmp_path):
    """1.5M rows, the first 3,000 sharing 1,500 customer ids: far past the 200 rows GX
    itself lists, and more than its pandas engine should ever hold."""
    warehouse = tmp_path / "w.duckdb"
    rows, dups = 1_500_000, 1_500
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"CREATE TABLE customers_staging ({STAGING_COLUMNS})")
        con.execute(f"""
            INSERT INTO customers_staging
            SELECT i, 'c' || (CASE WHEN i <= {2 * dups} THEN (i + 1) // 2 ELSE i END),
                   'Kim', NULL, NULL, 'active', '2024-01-01', NULL, 'false', 'voucher',
                   NULL, NULL, TIMESTAMPTZ '2024-01-01 00:00:00+00', NULL,
                   false, false, false, false, false, false, false, false
            FROM range(1, {rows} + 1) r(i)
        """)
    result = validate_table(warehouse, "customers_staging", "customers_staging")
    [failed] = result.failed
    assert failed.reason == "duplicate_customer_id"
    assert (failed.unexpected_count, failed.element_count) == (2 * dups, rows)
    failing = failing_rows_of(warehouse, result)
    assert failing["row_number"].to_list() == list(range(1, 2 * dups + 1))
    assert set(failing["reason"]) == {"duplicate_customer_id"}
