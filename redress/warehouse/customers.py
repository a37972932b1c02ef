"""Writes of `customers`: the current customer master (SPEC "Input: customers
snapshot"), and of `former_addresses` and `former_bank_accounts`, the contacts and bank
accounts its customers had in earlier masters. The one module that writes the three tables (redress/warehouse/schema.py OWNERS);
every function runs inside the caller's transaction when there is one.
"""

from __future__ import annotations

import duckdb

from redress.vocabulary import LIVE_STATUSES, sql_list
from redress.warehouse import claims, table_exists


def replace_with_staging(con: duckdb.DuckDBPyConnection, sha: str) -> None:
    """`customers_staging`, already holding exactly customers' columns in their order
    (redress/inbox/customers.py promote_customers), becomes `customers`: renamed, so no
    row is copied or sorted. First each contact a customer of the master it replaces had
    and no longer has in it (an email or phone changed, or the customer gone) is kept in
    `former_addresses`, with `sha`, the new snapshot's SHA-256: once, whatever the
    snapshots that follow (a contact that comes back and goes again keeps its first row).
    Likewise each bank account (bank code and account, or none) a customer had and no
    longer has is kept in `former_bank_accounts`: an account changed, set where there was
    none, or taken away, and the account of a customer the new master leaves out (found
    by the fix review: one who left and came back with another account was not counted)."""
    if table_exists(con, "customers"):
        con.execute("""
            INSERT INTO former_addresses
            WITH changed AS (
                SELECT o.customer_id,
                       unnest([CASE WHEN o.email_norm IS DISTINCT FROM n.email_norm THEN o.email_norm END,
                               CASE WHEN o.phone_e164 IS DISTINCT FROM n.phone_e164 THEN o.phone_e164 END]) AS address
                FROM customers o LEFT JOIN customers_staging n USING (customer_id)
                WHERE o.email_norm IS DISTINCT FROM n.email_norm OR o.phone_e164 IS DISTINCT FROM n.phone_e164)
            SELECT DISTINCT c.address, c.customer_id, ? FROM changed c
            ANTI JOIN former_addresses f USING (customer_id, address)
            WHERE c.address IS NOT NULL
            ORDER BY c.customer_id, c.address""", [sha])
        con.execute("""
            INSERT INTO former_bank_accounts
            SELECT DISTINCT o.customer_id, o.bank_code, o.bank_account, ? FROM customers o
            LEFT JOIN customers_staging n USING (customer_id)
            WHERE (n.customer_id IS NULL OR (o.bank_code, o.bank_account) IS DISTINCT FROM (n.bank_code, n.bank_account))
              AND NOT EXISTS (SELECT 1 FROM former_bank_accounts f
                              WHERE f.customer_id = o.customer_id AND f.bank_code IS NOT DISTINCT FROM o.bank_code
                                AND f.bank_account IS NOT DISTINCT FROM o.bank_account)
            ORDER BY o.customer_id""", [sha])
    con.execute("DROP TABLE IF EXISTS customers")
    con.execute("ALTER TABLE customers_staging RENAME TO customers")


def left_out(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int, int]:
    """(customers of the current master that `customers_staging` does not hold, those of
    them with money paid or held in the ledger, those whose held money a claim cancelled
    with nothing paid since, and that money in won): who a new snapshot leaves out, before
    it is promoted. Such a customer gets no decision under it and is paid nothing more;
    what they had is not taken back (SPEC "Ledger": no clawback). A claimant's transfer
    not yet issued (a plan superseded, say) is not paid either until a snapshot holds
    them again: counted apart, since customer service has promised it (found by the
    lifecycle review: the money was in no line of any report)."""
    return con.execute(f"""
        WITH gone AS (SELECT o.customer_id FROM customers o ANTI JOIN customers_staging n USING (customer_id)),
        unpaid AS ({claims.unpaid_claims_sql()})
        SELECT (SELECT count(*) FROM gone),
               (SELECT count(*) FROM gone WHERE customer_id IN (
                   SELECT customer_id FROM ledger WHERE status IN {sql_list(LIVE_STATUSES)})),
               (SELECT count(*) FROM unpaid WHERE customer_id IN (SELECT customer_id FROM gone)),
               (SELECT coalesce(sum(cancelled_amount), 0) FROM unpaid
                WHERE customer_id IN (SELECT customer_id FROM gone))""").fetchall()[0]


def retime(con: duckdb.DuckDBPyConnection, created_at: str, closed_at: str, params: dict) -> int:
    """Every customer gets `created_at` and `closed_at`, SQL of ours over the row's
    columns with the named `params` (redress/inbox/retime.py); returns the rows."""
    return con.execute(f"UPDATE customers SET created_at = {created_at}, closed_at = {closed_at}",
                       params).fetchall()[0][0]


def update_identity_keys(con: duckdb.DuckDBPyConnection, master: str) -> None:
    """Store the identity keys of `master` (a Parquet file of customer_id, email_norm,
    phone_e164, email_stored, phone_stored, as `sql.file_path` gives it, bound) for the
    customers whose stored keys differ (a warehouse written under an older rule)."""
    con.execute("""
        UPDATE customers SET email_norm = m.email_norm, phone_e164 = m.phone_e164
        FROM read_parquet(?, hive_partitioning = false) m
        WHERE customers.customer_id = m.customer_id
          AND (m.email_norm IS DISTINCT FROM m.email_stored OR m.phone_e164 IS DISTINCT FROM m.phone_stored)
    """, [master])
