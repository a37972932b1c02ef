"""A warehouse written by an earlier version, brought to this schema (schema.py): each
change is idempotent and cheap when there is nothing to do."""

from __future__ import annotations

import re

import duckdb

from redress.vocabulary import APPROVED, EXPIRED, REJECTED, SUPERSEDED
from redress.warehouse.quarantine import masked_account
from redress.warehouse.schema import create_statement


# In `catalog`, beside the columns of an `ingested_files` keyed without its kind (an
# earlier version's): no column can be named so.
FILES_KEYED_WITHOUT_KIND = "#keyed without kind"


def catalog(con: duckdb.DuckDBPyConnection) -> dict[str, frozenset[str]]:
    """The warehouse's tables (not views) and their columns, names lower-cased (and
    FILES_KEYED_WITHOUT_KIND among `ingested_files`' when its key is an earlier
    version's): one catalog query, which a run pays on each of its some forty opens of
    the warehouse. Restricting both catalog functions to the warehouse's own schema
    matters: the same question asked of every database's tables took 11 ms on a fresh
    connection, this 3.5 ms. The key is read from the table's own statement in the same
    query: asked of duckdb_constraints() apart, it cost a fresh connection 9.6 ms more."""
    found: dict[str, set[str]] = {}
    for table, column, statement in con.execute(
        "SELECT lower(c.table_name), lower(c.column_name), "
        "       CASE WHEN lower(c.table_name) = 'ingested_files' THEN t.sql END "
        "FROM duckdb_columns() c JOIN duckdb_tables() t USING (table_oid) "
        "WHERE c.database_name = current_database() AND c.schema_name = 'main' "
        "  AND t.database_name = current_database() AND t.schema_name = 'main'").fetchall():
        found.setdefault(table, set()).add(column)
        if statement is not None and not re.search(r"PRIMARY KEY\s*\(\s*kind\b", statement, re.IGNORECASE):
            found[table].add(FILES_KEYED_WITHOUT_KIND)
    return {table: frozenset(columns) for table, columns in found.items()}


def migrate(con: duckdb.DuckDBPyConnection, tables: dict[str, frozenset[str]] | None = None) -> None:
    """Bring a warehouse written by an earlier version to this schema; idempotent and
    cheap when there is nothing to do. `tables`: the warehouse's `catalog(con)`, when
    the caller has it already.

    Earlier versions kept every customer's name, which no output reads, and copied
    rejected customers rows whole (bank account included) into quarantine, and every
    notification's message text, which the outbox file holds and nothing reads back."""
    tables = catalog(con) if tables is None else tables
    # Each change is asked for only when the catalog shows it is still to do: a run opens
    # the warehouse some forty times, and each ALTER is a write of its own.
    if "name" in tables.get("customers", ()):
        con.execute("ALTER TABLE customers DROP COLUMN IF EXISTS name")
    # A quarantined scope row's resolved customer, for explain; rows of earlier runs have
    # none until the next full classification derives them again.
    if "quarantine" in tables and "customer_id" not in tables["quarantine"]:
        con.execute("ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS customer_id VARCHAR")
    # Approval before release: who released a run's plan, when, with what note; and the
    # report's exposure counts, kept so an approval's page does not count them again.
    for column, kind in (("approved_by", "VARCHAR"), ("approved_at", "TIMESTAMPTZ"), ("approval_note", "VARCHAR"),
                         ("exposures", "VARCHAR"), ("policy_rules_sha256", "VARCHAR"), ("policy_text", "VARCHAR")):
        if column not in tables.get("runs", ()):
            con.execute(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {column} {kind}")
    # Whether a run's payees told otherwise were looked at (runs.told_checked): an
    # earlier version's runs were, by that version's notify (or never will be by it):
    # the next run looks at its own and those of runs stopped since, not the whole ledger.
    if "runs" in tables and "told_checked" not in tables["runs"]:
        con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS told_checked BOOLEAN")
        con.execute("UPDATE runs SET told_checked = true")
    # A decision's last step recorded (plans.completed_at). Plans an earlier version
    # rejected, or approved and told the people of, count as completed, so repeating
    # their decision is still refused; an approved plan whose run told nobody may be an
    # approval killed before its notify, which that version also finished when repeated.
    if "plans" in tables and "completed_at" not in tables["plans"]:
        con.execute("ALTER TABLE plans ADD COLUMN IF NOT EXISTS completed_at TIMESTAMPTZ")
        con.execute("""
            UPDATE plans SET completed_at = decided_at
            WHERE completed_at IS NULL
              AND (state = ? OR (state = ? AND run_id IN (SELECT run_id FROM notifications)))""",
                    [REJECTED, APPROVED])
    # Who finished a decision (plans.completed_by): for one completed before the column
    # existed, its decider, whose command was the only one to give it then. Superseded
    # and expired plans are completed too from this version on, once their report page
    # shows it; those of an earlier version count as completed as that version left their
    # pages, so the next run does not write every old page again.
    if "plans" in tables and "completed_by" not in tables["plans"]:
        con.execute("ALTER TABLE plans ADD COLUMN IF NOT EXISTS completed_by VARCHAR")
        con.execute("UPDATE plans SET completed_by = decided_by WHERE state IN (?, ?) AND completed_at IS NOT NULL "
                    "AND completed_by IS NULL", [APPROVED, REJECTED])
        con.execute("UPDATE plans SET completed_at = decided_at WHERE state IN (?, ?) AND completed_at IS NULL",
                    [SUPERSEDED, EXPIRED])
    # The account of the process that recorded a decision: none recorded before.
    if "plans" in tables and "decided_os_user" not in tables["plans"]:
        con.execute("ALTER TABLE plans ADD COLUMN IF NOT EXISTS decided_os_user VARCHAR")
    # The SHA-256 of each batch's manifest.json as released (redress/outbox/audit.py): the
    # batches of earlier versions have none, and `verify` checks their files against
    # their manifests alone.
    if "batches" in tables and "manifest_sha256" not in tables["batches"]:
        con.execute("ALTER TABLE batches ADD COLUMN IF NOT EXISTS manifest_sha256 VARCHAR")
    # The timezone an accepted file's times were read in (redress/inbox/retime.py). A file
    # an earlier version read has none: the next run takes it as read in its policy's.
    if "timezone" not in tables.get("ingested_files", ()):
        con.execute("ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS timezone VARCHAR")
    # A file is its content within its folder (schema.py): an earlier version keyed
    # `ingested_files` by content and name alone, so the same file moved from the wrong
    # folder to the right one could not be recorded there. DuckDB cannot change a key in
    # place: the table is rebuilt under the new one, in one transaction.
    if FILES_KEYED_WITHOUT_KIND in tables.get("ingested_files", ()):
        _rekey_ingested_files(con)
    # A scope row that is not the header's fields (redress/inbox/scope.py): an earlier
    # version refused its whole file, so every row it kept is sound (NULL).
    if "scope_rows" in tables and "malformed" not in tables["scope_rows"]:
        con.execute("ALTER TABLE scope_rows ADD COLUMN IF NOT EXISTS malformed VARCHAR")
    if "message" in tables.get("notifications", ()):
        con.execute("ALTER TABLE notifications DROP COLUMN IF EXISTS message")
    account = masked_account("json_extract_string(row_json, '$.bank_account')")
    con.execute(f"""
        UPDATE quarantine
        SET row_json = json_merge_patch(row_json, json_object(
            'name', NULL, 'name_given', json_extract_string(row_json, '$.name') IS NOT NULL,
            'bank_account', {account}))::VARCHAR
        WHERE kind = 'customers' AND row_json IS NOT NULL
          AND (json_exists(row_json, '$.name')
               OR NOT starts_with(coalesce(json_extract_string(row_json, '$.bank_account'), '******'), '******'))""")


def _rekey_ingested_files(con: duckdb.DuckDBPyConnection) -> None:
    """`ingested_files` made again as schema.py creates it now, with every row it held:
    in one transaction, so a kill leaves the old table or the new one, never neither."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DROP TABLE IF EXISTS ingested_files_rekeyed")
        con.execute(create_statement("ingested_files").replace("EXISTS ingested_files (",
                                                               "EXISTS ingested_files_rekeyed (", 1))
        con.execute("INSERT INTO ingested_files_rekeyed BY NAME SELECT * FROM ingested_files")
        con.execute("DROP TABLE ingested_files")
        con.execute("ALTER TABLE ingested_files_rekeyed RENAME TO ingested_files")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
