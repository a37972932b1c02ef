"""Finance's payment results: SPEC "Input: returns from finance".

Each new file of inbox/returns/ (CSV: payment_id, status, reason) is checked by the
`returns_staging` suite: an unknown payment_id, a settled payment being returned, a
malformed or repeated row is quarantined with its reason, never applied. The accepted
rows update the ledger in one transaction with the file's record, so a file is applied
once or not at all. A returned payment no longer counts as paid: the disburse stage of
the same run reissues it with attempt + 1, or holds it as a claim after max_attempts.
Never retried by Prefect: it changes payment statuses.

A payment's status moves once, issued -> settled or issued -> returned: a result for a
returned (reissued) payment is quarantined as result_after_return, and the UPDATE below
touches only issued rows, so no path can move a status twice. A repeated `settled` for
a settled payment changes nothing and is counted as `already_settled` in the stage
result and the log, not quarantined (it agrees with the ledger; banks resend).
"""

from __future__ import annotations

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.runtime.faults import checkpoint
from redress.warehouse import connect
from redress import inbox as io
from redress.inbox.new_files import each_new_file, record
from redress.checks.quality import check
from redress.checks.suites import failing_rows_of


def apply_results(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, int]:
    """Apply the checked rows of `returns_staging` to the ledger, inside the caller's
    transaction. `failures` (row_number, reason; a NULL row_number fails the whole file)
    must be registered on `con`: a failing row is never applied, and nothing is when the
    whole file fails. Returns (payments whose status moved, rows that asked for the status
    the payment already had). Only an `issued` payment moves, to `settled` or `returned`:
    the guard holds even if the ledger changed since the checks ran. SPEC "Input: returns
    from finance"."""
    from redress.checks.returns_checks import OPEN_STATUS

    accepted = """
        FROM returns_staging s
        WHERE s.row_number NOT IN (SELECT row_number FROM failures WHERE row_number IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM failures WHERE row_number IS NULL)"""
    already = con.execute(f"SELECT count(*) {accepted} AND s.already_applied").fetchall()[0][0]
    applied = con.execute(f"""
        UPDATE ledger SET status = s.status, status_reason = s.reason, updated_run_id = ?
        {accepted}
          AND ledger.payment_id = s.payment_id AND ledger.status = '{OPEN_STATUS}'
          AND s.status IN ('settled', 'returned')
    """, [run_id]).fetchall()[0][0]
    return applied, already


def _apply_file(ctx: RunContext, f: io.InboxFile) -> dict:
    from redress.checks.returns_checks import create_returns_staging

    staged = ctx.work_dir / f"returns-{f.sha256[:16]}.parquet"
    rows = io.stage(io.read_text_frame(f.path, ("payment_id", "status"), io.RETURNS_COLUMNS), staged)
    with connect(ctx.warehouse) as con:
        create_returns_staging(con, staged)
    checked = check(ctx, "returns_staging", "returns_staging", label=f"returns_staging-{f.name}")
    failures = failing_rows_of(ctx.warehouse, checked)
    with connect(ctx.warehouse) as con:
        con.register("failures", failures)
        con.execute("BEGIN")
        con.execute("""
            INSERT INTO quarantine
            SELECT ?, 'returns', ?, ?, f.row_number, f.reason, NULL,
                   to_json(struct_pack(payment_id := s.payment_id, status := s.status,
                                       reason := s.reason))::VARCHAR
            FROM failures f LEFT JOIN returns_staging s USING (row_number)
            ORDER BY f.row_number, f.reason""", [ctx.run_id, f.sha256, f.name])
        applied, already = apply_results(con, ctx.run_id)
        whole_file = failures.filter(failures["row_number"].is_null()).height > 0
        if whole_file:
            reasons = ", ".join(sorted(set(failures["reason"].to_list())))
            entry = record(con, f, ctx, "rejected", f"not applied: {reasons}", rows)
        else:
            entry = record(con, f, ctx, "accepted", rows=rows)
        entry["applied"] = applied
        entry["already_settled"] = already
        entry["quarantined"] = failures.height
        con.execute("DROP TABLE returns_staging")
        checkpoint("returns:before-commit")
        con.execute("COMMIT")
    return entry


@task(name="apply returns", cache_policy=NO_CACHE, timeout_seconds=1800)
def apply_returns(ctx: RunContext) -> list[dict]:
    entries = each_new_file(ctx, ("returns",), lambda f: _apply_file(ctx, f))
    get_run_logger().info(
        "returns: %s applied, %s already settled, %s quarantined",
        sum(e.get("applied", 0) for e in entries), sum(e.get("already_settled", 0) for e in entries),
        sum(e.get("quarantined", 0) for e in entries),
    )
    return entries
