"""Writes of `plans`, `plan_payments` and `plan_batches`: a run's disbursement plan
while it waits for approval, and what became of it (SPEC "Approval before release").
The one module that writes these tables (redress/warehouse/schema.py OWNERS); every
function runs inside the caller's transaction, if any, and only executes statements.

States (redress/vocabulary.py PLAN_STATES): a plan is saved `waiting`; it leaves that
state once, to `approved` (in the transaction that commits its ledger rows), `rejected`,
`superseded` (a later run started) or `expired` (nobody decided in time).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb

from redress.vocabulary import APPROVED, EXPIRED, REJECTED, SUPERSEDED, WAITING
from redress.warehouse import export


PAYMENT_COLUMNS = ("payment_id", "customer_id", "amount", "rail", "attempt", "batch_id", "value_date",
                   "bank_code", "bank_account")


def save(con: duckdb.DuckDBPyConnection, *, run_id: str, policy_id: str, policy_sha256: str,
         planned_at: datetime, expires_at: datetime, summary: dict, gate_fingerprint: str | None = None) -> None:
    """The staged plan (`planned_payments` and `planned_batches`: both passed the emission
    suites, redress/checks/emission_checks.py) kept as run `run_id`'s waiting plan, with
    PAYMENT_COLUMNS of each payment; `summary` is redress.rules.plans.plan_summary's,
    stored with `gate_fingerprint` (what the suites passed) under that key, which `read`
    takes out again."""
    con.execute(f"""
        INSERT INTO plan_payments BY NAME
        SELECT ? AS run_id, {', '.join(PAYMENT_COLUMNS)} FROM planned_payments""", [run_id])
    con.execute("""
        INSERT INTO plan_batches BY NAME
        SELECT ? AS run_id, batch_id, rail, value_date, item_count, control_sum
        FROM planned_batches ORDER BY batch_id""", [run_id])
    totals = summary["totals"]
    con.execute(
        "INSERT INTO plans (run_id, state, policy_id, policy_sha256, planned_at, expires_at, payments, amount, "
        "batches, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, WAITING, policy_id, policy_sha256, planned_at, expires_at, totals["payments"],
         totals["amount_krw"], totals["batches"],
         json.dumps({**summary, "gate_fingerprint": gate_fingerprint}, sort_keys=True)])


def supersede_waiting(con: duckdb.DuckDBPyConnection, by_run_id: str, at: datetime) -> list[str]:
    """Every plan still waiting, but `by_run_id`'s, becomes `superseded` by that run:
    its payments are planned afresh from the ledger as it is. Returns their run ids."""
    return [r[0] for r in con.execute("""
        UPDATE plans SET state = ?, decided_at = ?, decided_by = ?
        WHERE state = ? AND run_id <> ? RETURNING run_id""",
        [SUPERSEDED, at, by_run_id, WAITING, by_run_id]).fetchall()]


def decide(con: duckdb.DuckDBPyConnection, run_id: str, state: str, *, by: str | None, note: str | None,
           at: datetime) -> bool:
    """Move plan `run_id` from `waiting` to `state` (approved, rejected or expired);
    False when it was not waiting (someone else decided first): nothing changes then."""
    if state not in (APPROVED, REJECTED, EXPIRED):
        raise ValueError(f"not a decision: {state!r}")
    moved = con.execute(
        "UPDATE plans SET state = ?, decided_at = ?, decided_by = ?, note = ? WHERE run_id = ? AND state = ? "
        "RETURNING run_id", [state, at, by, note, run_id, WAITING]).fetchall()
    return bool(moved)


def read(con: duckdb.DuckDBPyConnection, run_id: str) -> dict | None:
    """Plan `run_id` as a dict of its `plans` columns (summary parsed, as it was given to
    `save`) and `gate_fingerprint` (None for a plan saved without one), or None."""
    cur = con.execute("SELECT * FROM plans WHERE run_id = ?", [run_id])
    names, rows = [d[0] for d in cur.description], cur.fetchall()  # fetched whole: the connection is free again
    if not rows:
        return None
    plan = dict(zip(names, rows[0]))
    plan["summary"] = json.loads(plan["summary"])
    plan["gate_fingerprint"] = plan["summary"].pop("gate_fingerprint", None)
    return plan


def export_payments(con: duckdb.DuckDBPyConnection, run_id: str, target: Path) -> Path:
    """Plan `run_id`'s payments (PAYMENT_COLUMNS), by batch_id and payment_id, as the
    Parquet file `target` (returned)."""
    return export(con, f"SELECT {', '.join(PAYMENT_COLUMNS)} FROM plan_payments WHERE run_id = ? "
                  "ORDER BY batch_id, payment_id", target, [run_id])
