"""The columns of a batch's payments.parquet and payments.csv: SPEC "Disbursement batches".

Every file has the common fields; a voucher batch adds one voucher_<product> column per
policy product (minor units), a bank transfer batch the bank code and account.
"""

from __future__ import annotations

import polars as pl

from redress.policy import Policy
from redress.vocabulary import BANK_TRANSFER, VOUCHER

COMMON_COLUMNS = ("payment_id", "customer_id", "amount", "currency", "rail", "attempt")


def payment_files(batch: pl.DataFrame, rail: str, policy: Policy) -> pl.DataFrame:
    """The columns of payments.parquet/.csv: common fields plus the rail's own."""
    frame = batch.with_columns(pl.lit(policy.currency).alias("currency"))
    if rail == VOUCHER:
        return frame.select(*COMMON_COLUMNS, *(f"voucher_{p.id}" for p in policy.voucher_products))
    if rail == BANK_TRANSFER:
        return frame.select(*COMMON_COLUMNS, "bank_code", "bank_account")
    return frame.select(*COMMON_COLUMNS)
