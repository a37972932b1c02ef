"""A warehouse written by an earlier version, brought to this schema (schema.py): each
change is idempotent and cheap when there is nothing to do."""

from __future__ import annotations

import duckdb

from redress.warehouse.quarantine import masked_account


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a warehouse written by an earlier version to this schema; idempotent and
    cheap when there is nothing to do.

    Earlier versions kept every customer's name, which no output reads, and copied
    rejected customers rows whole (bank account included) into quarantine, and every
    notification's message text, which the outbox file holds and nothing reads back."""
    con.execute("ALTER TABLE customers DROP COLUMN IF EXISTS name")
    # Approval before release: who released a run's plan, when, with what note.
    for column, kind in (("approved_by", "VARCHAR"), ("approved_at", "TIMESTAMPTZ"), ("approval_note", "VARCHAR")):
        con.execute(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {column} {kind}")
    # The report's exposure counts, kept so an approval's page does not count them again.
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS exposures VARCHAR")
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
