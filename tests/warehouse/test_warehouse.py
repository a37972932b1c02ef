"""The warehouse keeps only what a reader needs (issue 9, item 9): masking and migration."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.warehouse import connect, masked_account
from redress.warehouse.schema import tables
from redress.warehouse.quarantine import COLUMNS as QUARANTINE_COLUMNS


def mask(con, value: str | None) -> str | None:
    return con.execute(f"SELECT {masked_account('v')} FROM (SELECT ?::VARCHAR AS v)", [value]).fetchall()[0][0]


MEMORY = duckdb.connect()  # one in-memory database for every example


@settings(deadline=None)
@given(account=st.text(alphabet="0123456789- ", max_size=30) | st.text(max_size=30))
def test_a_masked_account_shows_at_most_its_last_four_characters(account):
    masked = mask(MEMORY.cursor(), account)
    assert masked.startswith("******")
    shown = masked[len("******"):]
    assert shown == (account[-4:] if len(account) > 4 else "")
    if len(account) > 4:
        # Nothing of what is hidden shows: any account with the same last four masks the
        # same. (Not `account not in masked`: '*0000' is in '******0000'.)
        assert mask(MEMORY.cursor(), "9" * (len(account) - 4) + account[-4:]) == masked


def test_a_missing_account_stays_missing():
    with duckdb.connect() as con:
        assert mask(con, None) is None


OLD_CUSTOMERS = """CREATE TABLE customers (customer_id VARCHAR NOT NULL, name VARCHAR NOT NULL, email VARCHAR,
    phone VARCHAR, email_norm VARCHAR, phone_e164 VARCHAR, status VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, closed_at TIMESTAMPTZ, is_test BOOLEAN NOT NULL,
    payout_method VARCHAR NOT NULL, bank_code VARCHAR, bank_account VARCHAR, bank_valid BOOLEAN NOT NULL,
    file_sha256 VARCHAR NOT NULL)"""


def test_an_earlier_warehouse_loses_names_and_full_accounts_when_opened(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:  # as an earlier version left it
        con.execute(OLD_CUSTOMERS)
        con.execute("INSERT INTO customers VALUES ('C1', 'Kim Minji', NULL, NULL, NULL, NULL, 'active', "
                    "'2020-01-01', NULL, false, 'bank_transfer', '004', '1234567890', true, 'f0')")
        con.execute("CREATE TABLE quarantine (run_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL, "
                    "file_name VARCHAR NOT NULL, row_number BIGINT, reason VARCHAR NOT NULL, detail VARCHAR, row_json VARCHAR)")
        old = {"customer_id": "C9", "name": "Choi Hana", "status": "zombie", "bank_account": "9876543210"}
        scope = {"customer_id": "C1", "email": "x@example.com"}
        con.execute(f"INSERT INTO quarantine {QUARANTINE_COLUMNS} VALUES ('R1', 'customers', 'f1', 'c.csv', 2, 'invalid_status', NULL, ?), "
                    "('R1', 'scope', 'f2', 's.csv', 3, 'unknown_category', NULL, ?), "
                    "('R1', 'customers', 'f1', 'c.csv', NULL, 'rejected_file', '1 failure(s)', NULL)",
                    [json.dumps(old), json.dumps(scope)])
    for _ in range(2):  # idempotent
        with connect(warehouse) as con:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'").fetchall()]
            rows = con.execute("SELECT kind, row_number, row_json FROM quarantine ORDER BY kind, row_number").fetchall()
            kept = con.execute("SELECT customer_id, bank_account FROM customers").fetchall()
        assert "name" not in columns
        assert kept == [("C1", "1234567890")]  # the master keeps what bank files need
        assert json.loads(rows[0][2]) == {"customer_id": "C9", "name_given": True, "status": "zombie",
                                          "bank_account": "******3210"}
        assert rows[1] == ("customers", None, None)
        assert json.loads(rows[2][2]) == scope  # scope rows hold no bank data: as given


def test_an_earlier_warehouse_loses_the_message_text_of_notifications_and_keeps_every_row(tmp_path):
    """Issue 10: the message text lives in outbox/notifications only; a warehouse that
    stored it (NOT NULL) is migrated when opened, rows kept, and takes rows without it."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:  # as an earlier version left it
        con.execute("CREATE TABLE notifications (person_key VARCHAR NOT NULL, customer_id VARCHAR, recipient VARCHAR, "
                    "channel VARCHAR NOT NULL, reference_code VARCHAR NOT NULL, template_id VARCHAR NOT NULL, "
                    "language VARCHAR NOT NULL, message VARCHAR NOT NULL, run_id VARCHAR NOT NULL)")
        con.execute("INSERT INTO notifications VALUES ('customer:C1', 'C1', '+821012345678', 'sms', 'ABCDEFGH', "
                    "'member_voucher_v1', 'ko', '안내', 'R20251201-001')")
    for run in ("R20251202-001", "R20251203-001"):  # idempotent
        with connect(warehouse) as con:
            con.execute("INSERT INTO notifications BY NAME SELECT 'customer:' || ? AS person_key, NULL AS customer_id, "
                        "NULL AS recipient, 'none' AS channel, 'ZZZZZZZZ' AS reference_code, "
                        "'non_member_v1' AS template_id, 'ko' AS language, ? AS run_id", [run, run])
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'notifications' "
                "ORDER BY ordinal_position").fetchall()]
    assert "message" not in columns
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT person_key, reference_code, run_id FROM notifications ORDER BY run_id").fetchall() == [
            ("customer:C1", "ABCDEFGH", "R20251201-001"),
            ("customer:R20251202-001", "ZZZZZZZZ", "R20251202-001"),
            ("customer:R20251203-001", "ZZZZZZZZ", "R20251203-001")]


def test_an_earlier_warehouse_keys_ingested_files_by_folder_too_and_keeps_every_row(tmp_path):
    """A file is its content within its folder: an earlier version keyed `ingested_files`
    by (content, name) alone, so the same file moved to another folder could not be
    recorded there. Opening it rebuilds the table under the new key, rows kept, once."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:  # as an earlier version left it
        con.execute("CREATE TABLE ingested_files (file_sha256 VARCHAR NOT NULL, file_name VARCHAR NOT NULL, "
                    "kind VARCHAR NOT NULL, size_bytes BIGINT NOT NULL, status VARCHAR NOT NULL, reason VARCHAR, "
                    "rows_read BIGINT, run_id VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL, "
                    "PRIMARY KEY (file_sha256, file_name))")
        con.execute("INSERT INTO ingested_files VALUES ('aa', 'scope.csv', 'customers', 10, 'missing_column', "
                    "'missing column(s): status', NULL, 'R20251201-001', '2025-12-01 09:00:00+00')")
    for _ in range(2):  # idempotent
        with connect(warehouse) as con:
            key = con.execute("SELECT constraint_column_names FROM duckdb_constraints() "
                              "WHERE table_name = 'ingested_files' AND constraint_type = 'PRIMARY KEY'").fetchall()
            assert key == [(["kind", "file_sha256", "file_name"],)]
    with connect(warehouse) as con:  # the same content and name, recorded in the folder it was moved to
        con.execute("INSERT INTO ingested_files BY NAME SELECT 'aa' AS file_sha256, 'scope.csv' AS file_name, "
                    "'scope' AS kind, 10 AS size_bytes, 'accepted' AS status, 3 AS rows_read, "
                    "'R20251202-001' AS run_id, TIMESTAMPTZ '2025-12-02 09:00:00+00' AS ingested_at")
        with pytest.raises(duckdb.ConstraintException):  # but never twice in one folder
            con.execute("INSERT INTO ingested_files BY NAME SELECT 'aa' AS file_sha256, 'scope.csv' AS file_name, "
                        "'scope' AS kind, 10 AS size_bytes, 'accepted' AS status, "
                        "'R20251203-001' AS run_id, TIMESTAMPTZ '2025-12-03 09:00:00+00' AS ingested_at")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT kind, status, reason, rows_read, run_id, timezone FROM ingested_files "
                           "ORDER BY run_id").fetchall() == [
            ("customers", "missing_column", "missing column(s): status", None, "R20251201-001", None),
            ("scope", "accepted", None, 3, "R20251202-001", None)]
        assert "ingested_files_rekeyed" not in {t for (t,) in con.execute("SHOW TABLES").fetchall()}


def test_an_earlier_warehouse_gets_the_runs_exposures_column_and_its_runs_read_as_not_counted(tmp_path):
    """Issue 10: `runs.exposures` (the report's exposure counts) is added to a warehouse
    an earlier version wrote; its runs have none recorded, so their page counts them."""
    from redress.warehouse.runs import record_exposures, recorded_exposures

    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as con:
        con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, outcome) "
                    "VALUES ('R20251201-001', now(), DATE '2025-12-01', '{}', 'p', '', 'succeeded')")
        con.execute("ALTER TABLE runs DROP COLUMN exposures")  # as an earlier version left it
    with connect(warehouse) as con:
        assert recorded_exposures(con, "R20251201-001") is None
        record_exposures(con, "R20251201-001", (64_560_423, 32_261_232, 522_245))
    with connect(warehouse) as con:
        assert recorded_exposures(con, "R20251201-001") == (64_560_423, 32_261_232, 522_245)
        assert recorded_exposures(con, "R20251201-002") is None


@pytest.mark.parametrize("stored", ["[1, 2", "[1, 2, true]", "[1, 2, -3]", "[1.0, 2, 3]", '"[1, 2, 3]"', "[1, 2, 3, 4]",
                                    "{}", "null", "NaN", "[" * 100_000 + "]" * 100_000])
def test_exposures_that_are_not_three_counts_read_as_not_counted(tmp_path, stored):
    """Whatever `runs.exposures` holds that is not three counts reads as None (counted
    again), never an error: a nesting deeper than Python's recursion limit is no
    ValueError to json.loads but a RecursionError, which the page's refresh swallowed
    whole (the page was then not written again at all)."""
    from redress.warehouse.runs import recorded_exposures

    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, outcome, "
                    "exposures) VALUES ('R20251201-001', now(), DATE '2025-12-01', '{}', 'p', '', 'succeeded', ?)",
                    [stored])
        assert recorded_exposures(con, "R20251201-001") is None


@settings(max_examples=15)
@given(missing=st.sets(st.sampled_from(tables()), min_size=1))
def test_opening_a_warehouse_missing_any_tables_creates_exactly_those(scratch_root, missing):
    """`connect` skips SCHEMA when every table is there; with any of them gone (an
    earlier version's warehouse, a table dropped by hand) it creates the missing ones
    and leaves the rows of the others alone. A copy kept in another schema, or a view
    of the same name in a third, does not count as the table."""
    with tempfile.TemporaryDirectory(dir=scratch_root) as folder:
        warehouse = Path(folder, "warehouse.duckdb")
        with connect(warehouse) as con:
            con.execute("INSERT INTO lookups VALUES (now(), 'S001', 'analyst', 'C1', 'customer_id', 'matched')")
            con.execute("CREATE SCHEMA archive")
            con.execute("CREATE SCHEMA views")
            for table in sorted(missing):  # our own table names, from SCHEMA
                con.execute(f"CREATE TABLE archive.{table} AS SELECT * FROM {table}")
                con.execute(f"CREATE VIEW views.{table} AS SELECT * FROM archive.{table}")
                con.execute(f"DROP TABLE {table}")
        with connect(warehouse) as con:
            present = {t for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
            (kept,) = con.execute("SELECT count(*) FROM lookups").fetchall()[0]
        assert present == set(tables())
        assert kept == (0 if "lookups" in missing else 1)


def test_an_earlier_warehouse_gets_plans_completed_at_and_by_and_its_decided_plans_count_as_completed(tmp_path):
    """Issue 10 (a killed approval): `plans.completed_at` and `completed_by` are added to
    a warehouse an earlier version wrote. Its rejected plans, and approved ones whose run
    told people, count as completed (repeating them is still refused), by their decider,
    and superseded ones as their pages were left; an approved plan whose run told nobody may be an approval killed before its notify,
    which is left for a repeated approve to finish, as that version did; a waiting plan
    is not; the migration runs once."""
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as con:
        con.execute("INSERT INTO notifications BY NAME SELECT 'customer:C1' AS person_key, 'C1' AS customer_id, "
                    "NULL AS recipient, 'none' AS channel, 'ZZZZZZZZ' AS reference_code, "
                    "'non_member_v1' AS template_id, 'ko' AS language, 'R20251201-001' AS run_id")
        for run, state, decided in (("R20251130-001", "approved", "2025-11-30 10:00:00+00"),
                                    ("R20251201-001", "approved", "2025-12-01 10:00:00+00"),
                                    ("R20251202-001", "rejected", "2025-12-02 10:00:00+00"),
                                    ("R20251203-001", "superseded", "2025-12-03 10:00:00+00"),
                                    ("R20251204-001", "waiting", None)):
            con.execute("INSERT INTO plans (run_id, state, policy_id, policy_sha256, planned_at, expires_at, payments, "
                        "amount, batches, summary, decided_at, decided_by) VALUES (?, ?, 'p', '', now(), now(), 1, "
                        "10000, 1, '{}', ?::TIMESTAMPTZ, ?)", [run, state, decided, decided and f"by {run}"])
        con.execute("ALTER TABLE plans DROP COLUMN completed_by")  # as an earlier version left it
        con.execute("ALTER TABLE plans DROP COLUMN completed_at")
    for _ in range(2):  # idempotent
        with connect(warehouse) as con:
            rows = con.execute("SELECT run_id, completed_at = decided_at, completed_at IS NULL, completed_by "
                               "FROM plans ORDER BY run_id").fetchall()
    # completed ones were finished by their decider's command, the only one of that version;
    # a superseded plan's page is as that version left it (no run writes it again)
    assert rows == [("R20251130-001", None, True, None), ("R20251201-001", True, False, "by R20251201-001"),
                    ("R20251202-001", True, False, "by R20251202-001"), ("R20251203-001", True, False, None),
                    ("R20251204-001", None, True, None)]
    # a warehouse of the version with completed_at but not completed_by: the same
    with connect(warehouse) as con:
        con.execute("ALTER TABLE plans DROP COLUMN completed_by")
    with connect(warehouse) as con:
        assert con.execute("SELECT run_id, completed_by FROM plans WHERE completed_by IS NOT NULL "
                           "ORDER BY run_id").fetchall() == [("R20251201-001", "by R20251201-001"),
                                                            ("R20251202-001", "by R20251202-001")]


@pytest.mark.parametrize("taken", [["R20251201-007"], ["R20251201-007", "R20251201-²", "R20251201-٣٣٣", "R20251201-x"]])
def test_a_run_id_follows_the_highest_taken_on_disk_whatever_else_lies_there(tmp_path, taken):
    """The next run of a date takes the sequence after the highest one that names a
    report folder or a notification file, read as ASCII digits only: a folder made by
    hand as `R20251201-²` made every run of that date fail (int() refuses what
    str.isdigit takes), and `-٣٣٣` (Arabic-Indic digits) would have counted as 333."""
    from datetime import date

    from redress.warehouse.runs import peek_run_id

    (tmp_path / "reports").mkdir()
    for name in taken:
        (tmp_path / "reports" / name).mkdir()
    (tmp_path / "outbox" / "notifications").mkdir(parents=True)
    (tmp_path / "outbox" / "notifications" / "R20251201-²².parquet").write_bytes(b"")
    assert peek_run_id(tmp_path, date(2025, 12, 1)) == "R20251201-008"
