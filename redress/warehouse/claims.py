"""Writes of `claims`: every claim applied, with the bank details the verified person
gave (SPEC "Input: claims from customer service", "The warehouse"). The one module that
writes the table (redress/warehouse/schema.py OWNERS); every function runs inside the
caller's transaction and only executes statements. The customer master is never
written here: the claimed details are read by the disburse stage from this table.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from redress.vocabulary import LIVE_STATUSES, sql_list
from redress.warehouse.quarantine import ACCEPTED_ROW

# The rows of `claims_staging` (redress/checks/claims_checks.py) that no failure names.
ACCEPTED = f"""
    FROM claims_staging s
    WHERE {ACCEPTED_ROW}"""


def record_accepted(con: duckdb.DuckDBPyConnection, *, sha256: str, run_id: str, claimed_at: datetime) -> int:
    """One `claims` row per accepted row of `claims_staging`, with what it cancels (the
    person's held claim amount as checked); call it before the ledger's
    `cancel_claimed`, which changes that amount. Returns the rows added."""
    return con.execute(f"""
        INSERT INTO claims BY NAME
        SELECT s.notified_code AS reference_code, s.customer_id, s.bank_code, s.bank_account_digits AS bank_account,
               s.verified_at_ts AS verified_at, s.verified_by, s.held_amount AS cancelled_amount,
               ? AS file_sha256, s.row_number, ? AS run_id, ? AS claimed_at
        {ACCEPTED}
        ORDER BY s.row_number""", [sha256, run_id, claimed_at]).fetchall()[0][0]


def paying_accounts_sql() -> str:
    """SQL (no parameters): customer_id, bank_code, bank_account where a bank transfer to
    each customer goes, at most one row per customer: their latest claim's account, else
    the master's account when valid (SPEC "Input: claims from customer service": a
    claimant is paid to the claim's account, never the master's). What disburse plans
    with, and what the gate before emission holds every planned transfer to."""
    return f"""
        WITH claimed AS ({latest_bank_details_sql()})
        SELECT customer_id, bank_code, bank_account FROM claimed
        UNION ALL BY NAME
        SELECT customer_id, bank_code, bank_account FROM customers
        WHERE bank_valid AND customer_id NOT IN (SELECT customer_id FROM claimed)"""


def latest_bank_details_sql() -> str:
    """SQL (no parameters): customer_id, bank_code, bank_account of each claimant's
    latest claim, the details the next bank transfer to them is paid to."""
    return """
        SELECT customer_id, arg_max(bank_code, (claimed_at, run_id, file_sha256, row_number)) AS bank_code,
               arg_max(bank_account, (claimed_at, run_id, file_sha256, row_number)) AS bank_account
        FROM claims GROUP BY customer_id"""


def unpaid_claims_sql() -> str:
    """SQL (no parameters): customer_id and cancelled_amount (won) of each claimant whose
    latest claim cancelled held money and no payment of theirs is live (issued or
    settled) from a run started when that claim's run did or later: the claim's transfer
    is not issued yet (its plan waiting, superseded or rejected, or the person left out of
    the master). The amount is the latest claim's alone: earlier claims' money was paid,
    came back or was held again (found by the fix review: all cancellations summed)."""
    return f"""
        WITH latest AS (
            SELECT c.customer_id, arg_max(c.cancelled_amount, (c.claimed_at, c.run_id, c.file_sha256, c.row_number))
                       AS cancelled_amount,
                   arg_max(c.run_id, (c.claimed_at, c.run_id, c.file_sha256, c.row_number)) AS run_id
            FROM claims c GROUP BY c.customer_id)
        SELECT t.customer_id, t.cancelled_amount FROM latest t JOIN runs cr ON cr.run_id = t.run_id
        WHERE t.cancelled_amount > 0 AND NOT EXISTS (
            SELECT 1 FROM ledger l JOIN runs r ON r.run_id = l.run_id
            WHERE l.customer_id = t.customer_id AND l.status IN {sql_list(LIVE_STATUSES)}
              AND r.started_at >= cr.started_at)"""


def shared_accounts_sql() -> str:
    """SQL (no parameters): customer_id, bank_code, bank_account and `people` (how many
    claimants' latest claims name that account: 2 or more) for every claimant whose
    latest claim names the account another claimant's latest claim also names. A claim
    is checked against the person, never against the account: several people's money
    claimed to one account is what claims taken by someone other than the people look
    like, or a family's one account, which only customer service can tell apart. Shown
    to finance (the run's summary, the plan), never refused (found by review)."""
    return f"""
        WITH latest AS ({latest_bank_details_sql()})
        SELECT customer_id, bank_code, bank_account,
               count(*) OVER (PARTITION BY bank_code, bank_account) AS people
        FROM latest QUALIFY people > 1"""
