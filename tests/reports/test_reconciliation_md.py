"""reconciliation.md (redress/reports/reconciliation.py, templates/reconciliation.md.j2):
byte for byte the text the string-building renderer wrote (golden/), cells escaped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from redress.reports.reconciliation import COLUMNS, markdown

GOLDEN = Path(__file__).parent / "golden"
FRAME = pl.DataFrame({
    "rail": ["bank_transfer", "bank_transfer", "claim", "voucher", "voucher", "TOTAL"],
    "value_date": [date(2025, 12, 1), None, date(2025, 11, 20), date(2025, 12, 2), None, None],
    "payments": [2, 0, 3, 1200, 0, 1205], "issued": [1, 0, 0, 1_000_000, 0, 1_000_001],
    "settled": [1, 0, 0, 0, 0, 1], "returned": [0, 0, 0, 0, 0, 0], "held": [0, 0, 50_000, 0, 0, 50_000],
    "claimed": [0, 0, 40_000, 0, 0, 40_000], "unclaimed": [0, 0, 10_000, 0, 0, 10_000],
    "outstanding": [0, 5, 0, 0, 3_000, 3_005], "overpaid": [0, 0, 0, 0, 12_345, 12_345]})


def test_reconciliation_is_byte_identical_to_the_golden_file():
    assert markdown(FRAME.select(COLUMNS), "KRW") == (GOLDEN / "reconciliation.md").read_text(encoding="utf-8")


def test_a_cell_cannot_break_the_table():
    odd = FRAME.head(1).with_columns(pl.lit("a|b<i>").alias("rail"))
    assert "\n| a\\|b&lt;i&gt; | 2025-12-01 | 2 | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 |\n" in markdown(odd.select(COLUMNS), "KRW")
