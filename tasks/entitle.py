"""Stage 3, entitle: the entitlement of every customer with an accepted exposure.

An entitlement depends only on the customer's exposures, their master row and the
policy (redress/warehouse/increments.py). When validate appended new files under an unchanged
basis, only the customers with an exposure in those files are recomputed, from all of
their exposures, and their rows replaced; everyone else's entitlement is what it was.
Every entitlement is recomputed when the last classification was full, or when the
policy caps the budget (`budget.total_cap` > 0): the pro-rata factor then depends on the
base amount of every customer, so one new exposure can change everyone's amount.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress import sql
from redress.context import RunContext
from redress.results import EntitleResult, ReasonTotal
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.warehouse import connect, entitlements
from redress.warehouse import increments
from redress.entitling import entitlements_file, export_inputs


@task(name="compute entitlements", task_run_name="compute entitlements", cache_policy=NO_CACHE, timeout_seconds=1800)
def compute_entitlements(ctx: RunContext, settings: Settings) -> EntitleResult:
    """Returns an EntitleResult (redress/results.py): customers and amount per reason over
    the whole `entitlements` table after the stage."""
    logger = get_run_logger()
    policy = ctx.policy()
    with connect(ctx.warehouse) as con:
        any_entitled, pending = increments.pending_entitlement(con)
    if policy.total_cap > 0:
        mode, why = increments.FULL, "full: the budget cap shares the fund over everyone"
    elif not any_entitled:
        mode, why = increments.FULL, "full: every file was classified again"
    else:
        mode, why = increments.INCREMENTAL, f"incremental: exposures of {len(pending):,} new file(s)"
    logger.info("entitle: %s", why)
    every = mode == increments.FULL
    recomputed = 0
    if every or pending:
        recomputed = _recompute(ctx, policy, {"every": every, "files": pending}, settings)
    with connect(ctx.warehouse) as con:
        rows = con.execute("""
            SELECT reason, count(*), sum(amount) FROM entitlements GROUP BY ALL ORDER BY reason""").fetchall()
    summary = {reason: ReasonTotal(customers=n, amount_krw=int(total)) for reason, n, total in rows}
    logger.info("entitlements by reason: %s", "; ".join(
        f"{reason} {t.customers:,} people, {t.amount_krw:,} {policy.currency}" for reason, t in summary.items()))
    return EntitleResult(mode=mode, why=why, customers_recomputed=recomputed, by_reason=summary)


def _recompute(ctx: RunContext, policy, affected: dict, settings: Settings) -> int:
    """Entitlements of the affected customers (redress/entitling.py), replacing theirs in one
    transaction with the record that their files are entitled. Returns how many."""
    # Everyone exposed (full), or those with an exposure in a file not yet entitled
    # (incremental); the same feeding `redress whatif` uses (redress/entitling.py).
    with connect(ctx.warehouse) as con:
        slices = export_inputs(con, ctx.work_dir, every=affected["every"], files=affected["files"])
    result, _ = entitlements_file(slices, policy, ctx.work_dir)
    with connect(ctx.warehouse) as con:
        con.execute("BEGIN")
        entitlements.replace(con, sql.file_path(result), ctx.run_id, every=affected["every"])
        increments.mark_entitled(con)
        checkpoint("entitle:before-commit", settings)
        con.execute("COMMIT")
        (recomputed,), = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)",
                                     [sql.file_path(result)]).fetchall()
    return int(recomputed)
