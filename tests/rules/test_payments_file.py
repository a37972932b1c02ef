"""redress/rules/payments_file.py and the disburse helpers beside their rules: the
columns of payments.parquet/.csv per rail, the voucher parts on the planned payments,
and the batch summary a manifest carries."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from redress.rules.batches import batch_summary
from redress.rules.payments_file import COMMON_COLUMNS, payment_files
from redress.rules.vouchers import with_voucher_parts

DAY = date(2025, 12, 1)
PLANNED = pl.DataFrame({
    "payment_id": ["P1", "P2", "P3"], "customer_id": ["c1", "c2", "c3"], "amount": [50000, 50001, 30000],
    "rail": ["voucher", "voucher", "bank_transfer"], "attempt": [1, 1, 2],
    "batch_id": ["V-1", "V-1", "B-1"], "value_date": [DAY, DAY, DAY],
    "bank_code": [None, None, "020"], "bank_account": [None, None, "1002003004005"],
})


@pytest.mark.parametrize("rail, extra", [
    ("voucher", ["voucher_shopping", "voucher_food_delivery", "voucher_travel", "voucher_beauty"]),
    ("bank_transfer", ["bank_code", "bank_account"]),
    ("claim", []),
])
def test_the_columns_of_payments_csv_per_rail(policy, rail, extra):
    files = payment_files(with_voucher_parts(PLANNED, policy()), rail, policy())
    assert files.columns == [*COMMON_COLUMNS, *extra]
    assert files["currency"].to_list() == ["KRW"] * 3


def test_voucher_parts_sum_to_the_amount_on_vouchers_only(policy):
    parts = with_voucher_parts(PLANNED, policy())
    voucher = parts.filter(pl.col("rail") == "voucher")
    assert voucher.select(pl.sum_horizontal(pl.col("^voucher_.*$"))).to_series().to_list() == [50000, 50001]
    assert parts.row(0, named=True)["voucher_shopping"] == 5000       # 10% of 50000
    assert parts.row(1, named=True)["voucher_shopping"] == 5001       # the first product takes the remainder
    assert parts.filter(pl.col("rail") == "bank_transfer").select(pl.col("^voucher_.*$")).null_count().row(0) \
        == (1, 1, 1, 1)


def test_the_batch_summary_counts_and_sums_each_batch():
    summary = batch_summary(PLANNED)
    assert summary.select("batch_id", "rail", "item_count", "control_sum").rows() == [
        ("B-1", "bank_transfer", 1, 30000), ("V-1", "voucher", 2, 100001)]
