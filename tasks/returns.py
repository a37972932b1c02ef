"""Finance's payment results: SPEC "Input: returns from finance".

Each new file of inbox/returns/ (CSV: payment_id, status, reason) is checked by the
`returns_staging` suite: an unknown payment_id, a settled payment being returned, a
result for a payment held on `claim` (never sent out: result_for_unsent_payment), a
malformed row (a CSV row with more fields than the header, a JSON Lines line that is no
object: `malformed_row`) or a repeated one is quarantined with its reason, never applied,
and the file's other rows are. The accepted
rows update the ledger in one transaction with the file's record, so a file is applied
once or not at all. A returned payment no longer counts as paid: the disburse stage of
the same run reissues it with attempt + 1, or holds it as a claim after max_attempts.
Never retried by Prefect: it changes payment statuses.

A payment's status moves once, issued -> settled or issued -> returned: a result for a
returned (reissued) payment is quarantined as result_after_return, and the ledger UPDATE
(redress/warehouse/ledger.py apply_results) touches only issued rows of a rail that sends
payments out, so no path can move a status twice, or a held claim payment at all. A
repeated `settled` for a settled payment changes nothing and is counted as
`already_settled` in the stage result and the log, not quarantined (it agrees with the
ledger; banks resend).
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.results import ReturnsFileRead, ReturnsResult
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.warehouse import connect, quarantine
from redress.warehouse.ledger import apply_results, results_money
from redress import inbox as io
from redress.inbox.new_files import each_new_file, record
from redress.checks.quality import EVERY_REASON, check
from redress.checks.suites import failing_rows_of
from redress.vocabulary import ACCEPTED, REJECTED


# The row as quarantine keeps it. A malformed row's named values may be misplaced (an
# unquoted comma shifts every later field; a header in another order puts a reason under
# payment_id): it is kept as written instead, and named by nothing it may not mean.
_SOUND = "s.malformed IS NULL"
ROW_FIELDS = {
    "payment_id": f"CASE WHEN {_SOUND} THEN s.payment_id END", "status": f"CASE WHEN {_SOUND} THEN s.status END",
    "reason": f"CASE WHEN {_SOUND} THEN s.reason END", "malformed": "s.malformed", "as_written": "s.as_written",
}


def _apply_file(ctx: RunContext, f: io.InboxFile, settings: Settings) -> ReturnsFileRead:
    from redress.checks.returns_checks import create_returns_staging

    staged = ctx.work_dir / f"returns-{f.sha256[:16]}.parquet"
    rows = io.stage(io.returns_frame(f.path, ctx.work_dir), staged)
    with connect(ctx.warehouse) as con:
        create_returns_staging(con, staged)
    checked = check(ctx, "returns_staging", "returns_staging", label=f"returns_staging-{f.name}", held=EVERY_REASON)
    failures = failing_rows_of(ctx.warehouse, checked)
    with connect(ctx.warehouse) as con:
        con.register("failures", failures)
        con.execute("BEGIN")
        quarantine.add_failing_rows(
            con, run_id=ctx.run_id, kind="returns", sha256=f.sha256, file_name=f.name, staging="returns_staging",
            row_fields=ROW_FIELDS, detail_sql="s.plan_detail")
        money = results_money(con)
        applied, already = apply_results(con, ctx.run_id)
        whole_file = failures.filter(failures["row_number"].is_null()).height > 0
        if whole_file:
            reasons = ", ".join(sorted(set(failures["reason"].to_list())))
            entry = record(con, f, ctx, REJECTED, f"not applied: {reasons}", rows)
        else:
            entry = record(con, f, ctx, ACCEPTED, rows=rows)
        entry = ReturnsFileRead(**asdict(entry), payments_applied=applied, already_settled=already,
                                rows_quarantined=failures.height, **money)
        con.execute("DROP TABLE returns_staging")
        checkpoint("returns:before-commit", settings)
        con.execute("COMMIT")
    return entry


@task(name="apply returns", task_run_name="apply returns", cache_policy=NO_CACHE, timeout_seconds=1800)
def apply_returns(ctx: RunContext, settings: Settings) -> ReturnsResult:
    """Every new returns file, checked and applied (or quarantined); returns each file
    met, in read order, and the totals (a file not read counts zero everywhere)."""
    entries = [e if isinstance(e, ReturnsFileRead) else ReturnsFileRead(**asdict(e))
               for e in each_new_file(ctx, settings, ("returns",), lambda f: _apply_file(ctx, f, settings))]
    result = ReturnsResult(files=tuple(entries),
                           payments_applied=sum(e.payments_applied for e in entries),
                           already_settled=sum(e.already_settled for e in entries),
                           rows_quarantined=sum(e.rows_quarantined for e in entries))
    get_run_logger().info("returns: %s applied, %s already settled, %s quarantined",
                          *(f"{n:,}" for n in (result.payments_applied, result.already_settled, result.rows_quarantined)))
    return result
