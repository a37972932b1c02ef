"""Writes of `ledger` and `batches`: every payment issued, once, and the batch that
carries it, and the payment results finance sends back (SPEC "Ledger: paying exactly
once, whatever the scope does", "Disbursement batches", "Input: returns from finance").
The one module that writes these tables (redress/warehouse/schema.py OWNERS); every
function runs inside the caller's transaction and only executes statements.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from redress.vocabulary import (CANCELLED, CLAIM, FINANCE_OUTCOMES, FINANCE_RAILS, ISSUED, RETURNED, SETTLED, sql_list,
                                sql_literal)
from redress.warehouse.quarantine import ACCEPTED_ROW


def issue_planned(con: duckdb.DuckDBPyConnection, *, currency: str, policy_id: str, run_id: str,
                  created_at: datetime, manifests: dict[str, str], payments: str = "SELECT * FROM planned_payments",
                  params: list | tuple = ()) -> None:
    """The staged plan (`planned_payments`, `planned_batches`, which the emission suites
    passed: redress/checks/emission_checks.py) as issued payments and their batches,
    each batch's folder `outbox/batches/<batch_id>`. `payments`: SQL of ours giving
    the plan's payments (with `params`), by default the staged table; an approval whose
    gate fingerprint read them from the plan file gives that file's
    (emission_checks.planned_payments_sql). The payments go in as staged, in the plan
    file's order (batch_id, payment_id), not sorted again (30M rows at 33.7M): every
    reader of the ledger orders explicitly (redress/warehouse/exports.py, the reports,
    explain). `manifests`: each batch id's manifest.json SHA-256, as its folder was
    written (`redress verify` holds the folder to it)."""
    con.execute(f"""
        INSERT INTO ledger BY NAME
        SELECT payment_id, customer_id, amount, ? AS currency, rail, batch_id, ? AS policy_id,
               ? AS run_id, attempt, ? AS status, NULL AS status_reason, ? AS updated_run_id
        FROM ({payments})""", [currency, policy_id, run_id, ISSUED, run_id, *params])
    released = pl.DataFrame({"batch_id": list(manifests), "manifest_sha256": list(manifests.values())},
                            schema={"batch_id": pl.String, "manifest_sha256": pl.String})
    con.register("released_manifests", released)
    try:
        con.execute("""
            INSERT INTO batches BY NAME
            SELECT b.batch_id, b.rail, ? AS currency, b.value_date, b.item_count, b.control_sum, ? AS policy_id,
                   ? AS run_id, ? AS created_at, 'outbox/batches/' || b.batch_id AS folder, m.manifest_sha256
            FROM planned_batches b LEFT JOIN released_manifests m USING (batch_id)
            ORDER BY b.batch_id""", [currency, policy_id, run_id, created_at])
    finally:
        con.unregister("released_manifests")


def restore_batch(con: duckdb.DuckDBPyConnection, manifest: dict, payments: str) -> int:
    """A batch rebuilt from its verified outbox folder (redress/outbox/recovery.py): its
    payments from `payments` (the folder's payments.parquet, as `sql.file_path` gives
    it), those the ledger does not hold yet, as issued, and its `batches` row from the
    manifest (with `manifest_sha256`, the SHA-256 of the manifest file itself). Returns
    the payments added."""
    m = manifest
    # The path is bound, glob characters escaped, folder names not read as columns (redress/sql.py).
    added = con.execute("""
        INSERT INTO ledger BY NAME
        SELECT payment_id, customer_id, amount, currency, rail, ? AS batch_id, ? AS policy_id,
               ? AS run_id, attempt, ? AS status, NULL AS status_reason, ? AS updated_run_id
        FROM read_parquet(?, hive_partitioning = false) WHERE payment_id NOT IN (SELECT payment_id FROM ledger)
        ORDER BY payment_id""",
        [m["batch_id"], m["policy_id"], m["run_id"], ISSUED, m["run_id"], payments],
    ).fetchall()[0][0]
    con.execute(
        "INSERT INTO batches (batch_id, rail, currency, value_date, item_count, control_sum, policy_id, "
        "run_id, created_at, folder, manifest_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [m["batch_id"], m["rail"], m["currency"], m["value_date"], m["item_count"], m["control_sum"],
         m["policy_id"], m["run_id"], m["created_at"], f"outbox/batches/{m['batch_id']}", m["manifest_sha256"]])
    return added


def apply_results(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, int]:
    """Apply the checked rows of `returns_staging` to the ledger, inside the caller's
    transaction. `failures` (row_number, reason; a NULL row_number fails the whole file)
    must be registered on `con`: a failing row is never applied, and nothing is when the
    whole file fails. Returns (payments whose status moved, rows that asked for the status
    the payment already had). Only an `issued` payment sent out (FINANCE_RAILS: never one
    held on `claim`) moves, to `settled` or `returned`: the guard holds even if the ledger
    changed since the checks ran. SPEC "Input: returns from finance"."""
    accepted = f"""
        FROM returns_staging s
        WHERE {ACCEPTED_ROW}"""
    already = con.execute(f"SELECT count(*) {accepted} AND s.already_applied").fetchall()[0][0]
    applied = con.execute(f"""
        UPDATE ledger SET status = s.status, status_reason = s.reason, updated_run_id = ?
        {accepted}
          AND NOT s.already_applied  -- a later copy of a settled row: counted, not applied again
          AND ledger.payment_id = s.payment_id AND ledger.status = {sql_literal(ISSUED)}
          AND ledger.rail IN {sql_list(FINANCE_RAILS)}
          AND s.status IN {sql_list(FINANCE_OUTCOMES)}
    """, [run_id]).fetchall()[0][0]
    return applied, already


def results_money(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """What `returns_staging`'s rows do to the money, read before apply_results (the same
    rows, `failures` registered as for it), in whole won: `returned_krw` and
    `settled_krw`, the payments its accepted rows move; `not_applied_krw`, the payments
    sent out (FINANCE_RAILS) and still `issued` that a quarantined row names, not a
    malformed one, whose fields may be misplaced: their result waits for finance to send
    it again. Found by review: the summary gave row counts only, and a return held back
    by a quarantined line was nowhere in money."""
    (returned, settled, not_applied), = con.execute(f"""
        WITH accepted AS (SELECT s.* FROM returns_staging s WHERE {ACCEPTED_ROW}),
        moving AS (
            SELECT DISTINCT l.payment_id, l.amount, a.status FROM accepted a JOIN ledger l USING (payment_id)
            WHERE l.status = {sql_literal(ISSUED)} AND l.rail IN {sql_list(FINANCE_RAILS)}
              AND a.status IN {sql_list(FINANCE_OUTCOMES)}),
        held_back AS (
            -- a malformed row's fields may be misplaced: it names no payment here
            SELECT DISTINCT l.payment_id, l.amount FROM returns_staging s JOIN ledger l USING (payment_id)
            WHERE s.malformed IS NULL AND l.status = {sql_literal(ISSUED)} AND l.rail IN {sql_list(FINANCE_RAILS)}
              AND l.payment_id NOT IN (SELECT payment_id FROM moving)
              AND NOT ({ACCEPTED_ROW}))
        SELECT (SELECT coalesce(sum(amount), 0) FROM moving WHERE status = {sql_literal(RETURNED)}),
               (SELECT coalesce(sum(amount), 0) FROM moving WHERE status = {sql_literal(SETTLED)}),
               (SELECT coalesce(sum(amount), 0) FROM held_back)""").fetchall()
    return {"returned_krw": int(returned), "settled_krw": int(settled), "not_applied_krw": int(not_applied)}


def cancel_claimed(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """The held claim payments (rail `claim`, status `issued`) of every person with an
    accepted row in `claims_staging` become `cancelled`, inside the caller's transaction
    (`failures` registered on `con`, as for apply_results). A cancelled payment no
    longer counts as paid, so the disburse stage of the same run pays what is owed by
    bank transfer to the claimed account. Returns the payments cancelled. SPEC "Input:
    claims from customer service", "Ledger"."""
    return con.execute(f"""
        UPDATE ledger SET status = {sql_literal(CANCELLED)}, status_reason = 'claimed', updated_run_id = ?
        WHERE rail = {sql_literal(CLAIM)} AND status = {sql_literal(ISSUED)}
          AND customer_id IN (
              SELECT s.customer_id FROM claims_staging s WHERE {ACCEPTED_ROW})
    """, [run_id]).fetchall()[0][0]
