"""What is owed now: SPEC "Ledger: paying exactly once, whatever the scope does".

owed = entitlement amount - the customer's issued and settled payments. A new payment
for owed when it reaches the minimum; nothing when 0 < owed < minimum (it stays owed);
an overpayment exception, never a clawback, when owed < 0.

A claim (SPEC "Input: claims from customer service") cancels the person's held claim
payments, so they are owed again, and moves them to the bank rail: the claimed account
is paid by transfer, attempt + 1. A claimed transfer returned `max_attempts` times
(counting only transfers issued after the latest cancellation) is held on `claim` again.
"""

from __future__ import annotations

import polars as pl

from redress.policy import Policy
from redress.vocabulary import BANK_TRANSFER, CANCELLED, CLAIM, ELIGIBLE, LIVE_STATUSES, RETURNED


def _paid(ledger: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer: paid (issued + settled), returns and cancellations (each one more
    attempt), and bank returns since the latest cancellation (all of them when none)."""
    # A ledger without attempts (a history with no claim in it) counts every bank return.
    since_claim = (pl.col("attempt") > pl.col("attempt").filter(pl.col("status") == CANCELLED).max().fill_null(0)
                   if "attempt" in ledger.collect_schema().names() else pl.lit(True))
    return ledger.group_by("customer_id").agg(
        pl.col("amount").filter(pl.col("status").is_in(LIVE_STATUSES)).sum().alias("paid"),
        pl.col("status").is_in((RETURNED, CANCELLED)).sum().cast(pl.Int64).alias("returns"),
        ((pl.col("status") == RETURNED) & (pl.col("rail") == BANK_TRANSFER) & since_claim)
        .sum().cast(pl.Int64).alias("bank_returns"),
    )


def new_payments(entitlements: pl.LazyFrame, ledger: pl.LazyFrame, policy: Policy,
                 claimants: pl.LazyFrame | None = None) -> pl.DataFrame:
    """customer_id, amount, rail, attempt for every payment to issue now, by customer_id.

    ledger: customer_id, amount, status, rail, attempt. claimants: customer_id of every
    person with an applied claim (none when None). attempt counts this customer's
    returned and cancelled payments + 1; a claimant on the claim or bank rail is paid by
    bank transfer (to the claimed account: the disburse stage); a bank transfer returned
    max_attempts times (since the latest claim) is held as a claim instead.
    """
    claimed = (claimants if claimants is not None else pl.LazyFrame(schema={"customer_id": pl.String}))
    claimed = claimed.select("customer_id").unique().with_columns(pl.lit(True).alias("claimed"))
    owed = (
        entitlements.filter(pl.col("reason") == ELIGIBLE)
        .join(_paid(ledger), on="customer_id", how="left")
        .join(claimed, on="customer_id", how="left")
        .with_columns(
            pl.when(pl.col("claimed").fill_null(False) & pl.col("rail").is_in((CLAIM, BANK_TRANSFER)))
            .then(pl.lit(BANK_TRANSFER)).otherwise(pl.col("rail")).alias("rail"),
        )
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
