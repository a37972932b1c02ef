"""Voucher split: SPEC "Payout rail". Each product gets floor(amount x share_bp / 10000)
and the first product also gets the remainder, so the parts always sum to the amount."""

from __future__ import annotations

from typing import TypeVar

import polars as pl

from redress.policy import Policy, VoucherProduct
from redress.vocabulary import VOUCHER

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def voucher_parts(payments: Frame, products: tuple[VoucherProduct, ...]) -> Frame:
    """Adds voucher_<product> columns (minor units) to payments with an `amount`."""
    parts = {p.id: pl.col("amount") * p.share_bp // 10000 for p in products}
    rest = pl.col("amount") - pl.sum_horizontal(parts.values())
    first = products[0].id
    parts[first] = parts[first] + rest
    return payments.with_columns(expr.cast(pl.Int64).alias(f"voucher_{pid}") for pid, expr in parts.items())


def with_voucher_parts(planned: Frame, policy: Policy) -> Frame:
    """voucher_<product> columns on every planned payment, null off the voucher rail:
    computed once, so the parts the emission suites check are the parts written."""
    columns = [f"voucher_{p.id}" for p in policy.voucher_products]
    return voucher_parts(planned, policy.voucher_products).with_columns(
        pl.when(pl.col("rail") == VOUCHER).then(pl.col(c)).alias(c) for c in columns
    )
