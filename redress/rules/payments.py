"""What is owed now: SPEC "Ledger: paying exactly once, whatever the scope does".

owed = entitlement amount - the customer's issued and settled payments. A new payment
for owed when it reaches the minimum; nothing when 0 < owed < minimum (it stays owed);
an overpayment exception, never a clawback, when owed < 0.
"""

from __future__ import annotations

import polars as pl

from redress.policy import Policy
from redress.vocabulary import BANK_TRANSFER, CLAIM, ELIGIBLE, LIVE_STATUSES, RETURNED


def _paid(ledger: pl.LazyFrame) -> pl.LazyFrame:
    return ledger.group_by("customer_id").agg(
        pl.col("amount").filter(pl.col("status").is_in(LIVE_STATUSES)).sum().alias("paid"),
        (pl.col("status") == RETURNED).sum().cast(pl.Int64).alias("returns"),
        ((pl.col("status") == RETURNED) & (pl.col("rail") == BANK_TRANSFER)).sum().cast(pl.Int64)
        .alias("bank_returns"),
    )


def new_payments(entitlements: pl.LazyFrame, ledger: pl.LazyFrame, policy: Policy) -> pl.DataFrame:
    """customer_id, amount, rail, attempt for every payment to issue now, by customer_id.

    attempt counts this customer's returned payments + 1; a bank transfer returned
    max_attempts times is held as a claim instead.
    """
    owed = (
        entitlements.filter(pl.col("reason") == ELIGIBLE)
        .join(_paid(ledger), on="customer_id", how="left")
        .with_columns(
            (pl.col("amount") - pl.col("paid").fill_null(0)).alias("owed"),
            (pl.col("returns").fill_null(0) + 1).cast(pl.Int32).alias("attempt"),
            pl.when((pl.col("rail") == BANK_TRANSFER) & (pl.col("bank_returns").fill_null(0) >= policy.max_attempts))
            .then(pl.lit(CLAIM)).otherwise(pl.col("rail")).alias("rail"),
        )
    )
    return (
        owed.filter(pl.col("owed") >= max(policy.minimum_amount, 1))
        .select("customer_id", pl.col("owed").alias("amount"), "rail", "attempt")
        .collect()
        .sort("customer_id")
    )


def overpayments(entitlements: pl.LazyFrame, ledger: pl.LazyFrame) -> pl.DataFrame:
    """customer_id, entitled, paid, overpaid for every customer paid more than entitled."""
    return (
        _paid(ledger)
        .join(entitlements.select("customer_id", "amount"), on="customer_id", how="left")
        .with_columns(pl.col("amount").fill_null(0).alias("entitled"))
        .with_columns((pl.col("paid") - pl.col("entitled")).alias("overpaid"))
        .filter(pl.col("overpaid") > 0)
        .select("customer_id", "entitled", "paid", "overpaid")
        .collect()
        .sort("customer_id")
    )
