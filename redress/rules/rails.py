"""Which rail a payment takes: SPEC "Payout rail", first matching case wins."""

from __future__ import annotations

import polars as pl

from redress.vocabulary import BANK_TRANSFER, CLAIM, CLOSED, VOUCHER


def rail() -> pl.Expr:
    """Needs status, payout_method and bank_valid. Transfers returned max_attempts times
    move to claim in the ledger stage, which knows the payment history."""
    closed = pl.col("status") == CLOSED
    return (
        pl.when(closed & pl.col("bank_valid")).then(pl.lit(BANK_TRANSFER))
        .when(closed).then(pl.lit(CLAIM))
        .when((pl.col("payout_method") == BANK_TRANSFER) & pl.col("bank_valid")).then(pl.lit(BANK_TRANSFER))
        .otherwise(pl.lit(VOUCHER))
    )
