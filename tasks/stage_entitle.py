"""Stage 3, entitle: the entitlement of every customer with an accepted exposure."""

from __future__ import annotations

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress import sql
from redress.context import RunContext
from redress.warehouse import connect, export
from tasks.entitlements import entitlements_of, exposure_summary


@task(name="compute entitlements", cache_policy=NO_CACHE, timeout_seconds=1800)
def compute_entitlements(ctx: RunContext) -> dict:
    logger = get_run_logger()
    policy = ctx.policy()
    with connect(ctx.warehouse) as con:
        exposures = export(
            con, "SELECT customer_id, data_category, accessed_at, confidence FROM scope_exposures",
            ctx.work_dir / "exposures.parquet",
        )
        customers = export(
            con, "SELECT customer_id, status, closed_at, is_test, payout_method, bank_valid FROM customers",
            ctx.work_dir / "customers.parquet",
        )
    summary_file = ctx.work_dir / "exposure_summary.parquet"
    result = ctx.work_dir / "entitlements.parquet"
    # glob=False: the data folder's name may hold glob characters (redress/sql.py)
    exposure_summary(pl.scan_parquet(exposures, glob=False), pl.scan_parquet(customers, glob=False),
                     policy).sink_parquet(summary_file)
    entitlements_of(pl.scan_parquet(summary_file, glob=False), policy).sink_parquet(result)
    with connect(ctx.warehouse) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM entitlements")
        con.execute("""
            INSERT INTO entitlements BY NAME
            SELECT customer_id, policy_id, ? AS run_id, reason, tier, categories, exposed_categories,
                   base_amount, amount, rail FROM read_parquet(?) ORDER BY customer_id""", [ctx.run_id, sql.file_path(result)])
        con.execute("COMMIT")
        rows = con.execute("""
            SELECT reason, count(*), sum(amount) FROM entitlements GROUP BY ALL ORDER BY reason""").fetchall()
    summary = {reason: {"customers": n, "amount": int(total)} for reason, n, total in rows}
    logger.info("entitlements by reason: %s", summary)
    return summary
