"""redress/rules/rails.py: SPEC "Payout rail", one case per row of the table. The last row
(a bank transfer returned max_attempts times) needs the ledger: tests/rules/test_payments.py."""

from __future__ import annotations

import polars as pl
import pytest

from redress.rules.rails import rail
from redress.vocabulary import RAILS


@pytest.mark.parametrize("status, payout_method, bank_valid, expected", [
    # status closed, valid bank details -> bank_transfer (whatever the payout method)
    ("closed", "voucher", True, "bank_transfer"),
    ("closed", "bank_transfer", True, "bank_transfer"),
    ("closed", None, True, "bank_transfer"),
    # status closed, no valid bank details -> claim
    ("closed", "voucher", False, "claim"),
    ("closed", "bank_transfer", False, "claim"),
    ("closed", None, None, "claim"),
    # payout_method bank_transfer, valid bank details -> bank_transfer
    ("active", "bank_transfer", True, "bank_transfer"),
    ("dormant", "bank_transfer", True, "bank_transfer"),
    # otherwise -> voucher
    ("active", "bank_transfer", False, "voucher"),
    ("active", "bank_transfer", None, "voucher"),
    ("active", "voucher", True, "voucher"),
    ("dormant", "voucher", False, "voucher"),
    ("active", None, True, "voucher"),
])
def test_rail_table(status, payout_method, bank_valid, expected):
    frame = pl.DataFrame(
        {"status": [status], "payout_method": [payout_method], "bank_valid": [bank_valid]},
        schema={"status": pl.String, "payout_method": pl.String, "bank_valid": pl.Boolean},
    )
    got = frame.select(rail().alias("rail")).item()
    assert got == expected
    assert got in RAILS
