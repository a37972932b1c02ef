"""Which rail a payment takes: SPEC "Payout rail", first matching case wins."""

from __future__ import annotations

import polars as pl

RAILS = ("bank_transfer", "voucher", "claim")


def rail() -> pl.Expr:
    """Needs status, payout_method and bank_valid. Transfers returned max_attempts times
    move to claim in the ledger stage, which knows the payment history."""
    closed = pl.col("status") == "closed"
    return (
        pl.when(closed & pl.col("bank_valid")).then(pl.lit("bank_transfer"))
        .when(closed).then(pl.lit("claim"))
        .when((pl.col("payout_method") == "bank_transfer") & pl.col("bank_valid")).then(pl.lit("bank_transfer"))
        .otherwise(pl.lit("voucher"))
    )
