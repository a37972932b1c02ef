"""Writes of `plans`, `plan_payments` and `plan_batches`: a run's disbursement plan
while it waits for approval, and what became of it (SPEC "Approval before release").
The one module that writes these tables (redress/warehouse/schema.py OWNERS); every
function runs inside the caller's transaction, if any, and only executes statements.

States (redress/vocabulary.py PLAN_STATES): a plan is saved `waiting`; it leaves that
state once, to `approved` (in the transaction that commits its ledger rows), `rejected`,
`superseded` (a later run started) or `expired` (nobody decided in time). An approval
is `completed` once its last steps are done (people told, report page and exports
written again), a rejection once its report page is: until then repeating the decision
finishes it, and `completed_by` names whose command did those steps (the decider's, or
that of whoever repeated it). A superseded or expired plan is completed once its report
page shows it; until then each run's start writes that page again (`pages_due`).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from redress.vocabulary import APPROVED, EXPIRED, REJECTED, SUPERSEDED, WAITING
from redress.warehouse import export


# Payments sorted at once by export_payments (whole batches beyond it go to the next file).
PART_PAYMENTS = 20_000_000
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


def superseded_by(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """The run ids of the plans run `run_id` superseded (supersede_waiting), in order."""
    return [r[0] for r in con.execute("SELECT run_id FROM plans WHERE state = ? AND decided_by = ? ORDER BY run_id",
                                      [SUPERSEDED, run_id]).fetchall()]


def pages_due(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(run id, state) of the plans no longer waiting whose report page has not yet been
    written again to show it (`complete` not yet recorded for them: the command that
    closed the plan was killed first, or could not write the page), sorted. A run's start
    writes them (tasks/report.py refresh_closed_pages): superseded and expired plans, and
    approvals and rejections killed before their last steps, which a run, starting,
    finishes (their folders published and people told by its disburse and notify; found
    by review: their pages said "waiting" for good, unless someone thought to give the
    decision again)."""
    return [tuple(r) for r in con.execute(
        "SELECT run_id, state FROM plans WHERE state IN (?, ?, ?, ?) AND completed_at IS NULL ORDER BY run_id",
        [SUPERSEDED, EXPIRED, APPROVED, REJECTED]).fetchall()]


def decide(con: duckdb.DuckDBPyConnection, run_id: str, state: str, *, by: str | None, note: str | None,
           at: datetime, os_user: str | None = None) -> bool:
    """Move plan `run_id` from `waiting` to `state` (approved, rejected or expired),
    recording who (`by`, as given; `os_user`, the account of the process recording it),
    when and why; False when it was not waiting (someone else decided first): nothing
    changes then."""
    if state not in (APPROVED, REJECTED, EXPIRED):
        raise ValueError(f"not a decision: {state!r}")
    moved = con.execute(
        "UPDATE plans SET state = ?, decided_at = ?, decided_by = ?, note = ?, decided_os_user = ? "
        "WHERE run_id = ? AND state = ? RETURNING run_id", [state, at, by, note, os_user, run_id, WAITING]).fetchall()
    return bool(moved)


def restore_approval(con: duckdb.DuckDBPyConnection, run_id: str, *, by: str, note: str | None,
                     at: datetime, os_user: str | None) -> bool:
    """Plan `run_id` approved by `by` at `at`, as the manifests of its batches, which
    `redress recover-ledger` restored, say, when the warehouse held it otherwise (a
    restored copy older than the approval), and by `os_user`'s process; its last steps not done (`pages_due`), so
    the next run's start writes its page and its notify tells its people. False when it
    was approved already, or the warehouse holds no such plan."""
    moved = con.execute(
        "UPDATE plans SET state = ?, decided_at = ?, decided_by = ?, note = ?, decided_os_user = ?, "
        "completed_at = NULL, completed_by = NULL WHERE run_id = ? AND state <> ? RETURNING run_id",
        [APPROVED, at, by, note, os_user, run_id, APPROVED]).fetchall()
    return bool(moved)


def finishing(con: duckdb.DuckDBPyConnection, run_id: str, by: str) -> None:
    """Record `by` as who gives the decision on plan `run_id` whose last steps are now
    being done (flows/approval.py `_complete`), before the report page that names them
    is written. A later repeat of an unfinished decision replaces it; a completed plan
    keeps the one whose command completed it."""
    con.execute("UPDATE plans SET completed_by = ? WHERE run_id = ? AND state IN (?, ?) AND completed_at IS NULL",
                [by, run_id, APPROVED, REJECTED])


def complete(con: duckdb.DuckDBPyConnection, run_id: str, at: datetime) -> None:
    """Record that the decision on plan `run_id` has done its last step: for an approved
    or rejected plan (flows/approval.py), repeating it is refused from now on; for a
    superseded or expired one, its report page shows it (`pages_due` no longer lists
    it). A plan already completed keeps its first time; a waiting one is never completed."""
    con.execute("UPDATE plans SET completed_at = ? WHERE run_id = ? AND state IN (?, ?, ?, ?) "
                "AND completed_at IS NULL", [at, run_id, APPROVED, REJECTED, SUPERSEDED, EXPIRED])


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


def batches(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """Plan `run_id`'s batches as stored when its gate passed (batch_id, rail,
    value_date, item_count, control_sum), by batch_id: what finance was shown and what
    an approval must release, whatever its payments say now."""
    return con.sql("SELECT batch_id, rail, value_date, item_count, control_sum FROM plan_batches "
                   "WHERE run_id = $run_id ORDER BY batch_id", params={"run_id": run_id}).pl()


def export_payments(con: duckdb.DuckDBPyConnection, run_id: str, folder: Path,
                    part_payments: int = PART_PAYMENTS) -> list[Path]:
    """Plan `run_id`'s payments (PAYMENT_COLUMNS) as Parquet files in `folder`, returned
    in order: read one after the other they hold every payment by batch_id and
    payment_id. Each file holds whole batches (by `plan_batches`), at most about
    `part_payments` payments unless one batch alone holds more, and its rows are sorted
    by DuckDB on their own: sorted at once, the 132.5 M payments of 150 M customers
    spilled 23 GB to disk. The ranges are cut at batch ids and the first is open below,
    the last above, so a payment whose batch `plan_batches` lacks is still in a file.
    Whatever `folder` held before (a killed approval's files) is removed first."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    batches = con.execute("SELECT batch_id, item_count FROM plan_batches WHERE run_id = ? ORDER BY batch_id",
                          [run_id]).fetchall()
    cuts, held = [], 0  # the first batch id of every file but the first
    for batch_id, count in batches:
        if held and held + count > part_payments:
            cuts.append(batch_id)
            held = 0
        held += count
    bounds = [None, *cuts, None]
    parts = []
    for n, (low, high) in enumerate(zip(bounds, bounds[1:]), start=1):
        where = (" AND batch_id >= ?" if low is not None else "") + (" AND batch_id < ?" if high is not None else "")
        params = [run_id, *(b for b in (low, high) if b is not None)]
        parts.append(export(con, f"SELECT {', '.join(PAYMENT_COLUMNS)} FROM plan_payments WHERE run_id = ?{where} "
                                 "ORDER BY batch_id, payment_id", folder / f"part-{n:05d}.parquet", params))
    return parts
