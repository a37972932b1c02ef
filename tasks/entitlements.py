"""Eligibility and entitlement: SPEC "Eligibility and entitlement".

One row per customer with at least one accepted exposure. The first rule that applies
gives the reason code; amounts are whole minor units, integer arithmetic only.
"""

from __future__ import annotations

from datetime import timezone

import polars as pl

from redress.policy import Policy
from tasks.rails import rail

REASONS = (
    "TEST_ACCOUNT",
    "UNCONFIRMED_ONLY",
    "OUTSIDE_WINDOW",
    "STATUS_NOT_ELIGIBLE",
    "CLOSED_BEFORE_BREACH",
    "BELOW_MINIMUM",
    "ELIGIBLE",
)


def _sorted_join(col: pl.Expr) -> pl.Expr:
    return col.unique().sort().str.join(",")


def entitlements(exposures: pl.LazyFrame, customers: pl.LazyFrame, policy: Policy) -> pl.DataFrame:
    """exposures: customer_id, data_category, accessed_at, confidence.
    customers: customer_id, status, closed_at, is_test, payout_method, bank_valid.
    """
    tier_of = pl.col("data_category").replace_strict(policy.categories, return_dtype=pl.Int32)
    counted_conf = pl.col("confidence").is_in(list(policy.confidence))
    start, end = (t.astimezone(timezone.utc) for t in (policy.window_start, policy.window_end))
    # Instants are compared in UTC: Polars refuses to compare timestamps of two zones, and
    # a caller's frame may carry any zone (the warehouse's Parquet export is UTC).
    in_window = pl.col("accessed_at").dt.convert_time_zone("UTC").is_between(start, end, closed="both")
    counted = counted_conf & in_window

    per_customer = exposures.group_by("customer_id").agg(
        counted_conf.any().alias("_any_conf"),
        counted.any().alias("_any_counted"),
        tier_of.filter(counted).max().alias("tier"),
        _sorted_join(pl.col("data_category").filter(counted)).alias("categories"),
        _sorted_join(pl.col("data_category")).alias("exposed_categories"),
    )
    frame = per_customer.join(customers, on="customer_id", how="left").collect()
    missing = frame.filter(pl.col("status").is_null()).height
    if missing:
        # Cannot happen when exposures were resolved against this master.
        raise ValueError(f"{missing} exposed customers are not in the customer master")

    base = pl.col("tier").replace_strict(policy.tiers, default=0, return_dtype=pl.Int64).fill_null(0)
    reason_1_to_5 = (
        pl.when(pl.col("is_test")).then(pl.lit("TEST_ACCOUNT"))
        .when(~pl.col("_any_conf")).then(pl.lit("UNCONFIRMED_ONLY"))
        .when(~pl.col("_any_counted")).then(pl.lit("OUTSIDE_WINDOW"))
        .when(~pl.col("status").is_in(list(policy.statuses))).then(pl.lit("STATUS_NOT_ELIGIBLE"))
        .when((pl.col("status") == "closed") & (pl.col("closed_at").dt.convert_time_zone("UTC") < start))
        .then(pl.lit("CLOSED_BEFORE_BREACH"))
    )
    frame = frame.with_columns(base.alias("base_amount"), reason_1_to_5.alias("_reason"))
    passing_sum = int(frame.filter(pl.col("_reason").is_null())["base_amount"].sum() or 0)
    amount = pro_rata(pl.col("base_amount"), policy.total_cap, passing_sum)
    frame = frame.with_columns(
        pl.when(pl.col("_reason").is_null()).then(amount).otherwise(0).alias("_amount")
    )
    reason = (
        pl.when(pl.col("_reason").is_not_null()).then(pl.col("_reason"))
        .when(pl.col("_amount") < policy.minimum_amount).then(pl.lit("BELOW_MINIMUM"))
        .otherwise(pl.lit("ELIGIBLE"))
    )
    return (
        frame.with_columns(reason.alias("reason"))
        .with_columns(
            pl.when(pl.col("reason") == "ELIGIBLE").then(pl.col("_amount")).otherwise(0)
            .cast(pl.Int64).alias("amount"),
            rail().alias("rail"),
            pl.lit(policy.id).alias("policy_id"),
            pl.col("categories").fill_null(""),
        )
        .select(
            "customer_id", "policy_id", "reason", "tier", "categories", "exposed_categories",
            "base_amount", "amount", "rail",
        )
        .sort("customer_id")
    )


def pro_rata(base: pl.Expr, total_cap: int, passing_sum: int) -> pl.Expr:
    """floor(base x cap / sum) when a cap is set and exceeded, else base.

    Computed in 128-bit integers: base x cap can pass 2^63 for a large fund.
    """
    if total_cap <= 0 or passing_sum <= total_cap:
        return base
    scaled = base.cast(pl.Int128) * pl.lit(total_cap, pl.Int128) // pl.lit(passing_sum, pl.Int128)
    return scaled.cast(pl.Int64)
