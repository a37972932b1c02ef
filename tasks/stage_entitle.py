"""Stage 3, entitle: the entitlement of every customer with an accepted exposure."""

from __future__ import annotations

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.warehouse import connect
from tasks.entitlements import entitlements
from tasks.stage_validate import export


@task(name="compute entitlements", cache_policy=NO_CACHE)
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
    result = entitlements(pl.scan_parquet(exposures), pl.scan_parquet(customers), policy)
    result = result.with_columns(pl.lit(ctx.run_id).alias("run_id"))
    with connect(ctx.warehouse) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM entitlements")
        con.execute("""
            INSERT INTO entitlements BY NAME
            SELECT customer_id, policy_id, run_id, reason, tier, categories, exposed_categories,
                   base_amount, amount, rail FROM result""")
        con.execute("COMMIT")
    by_reason = result.group_by("reason").agg(pl.len().alias("customers"), pl.col("amount").sum()).sort("reason")
    summary = {r["reason"]: {"customers": r["customers"], "amount": r["amount"]} for r in by_reason.to_dicts()}
    logger.info("entitlements by reason: %s", summary)
    return summary
