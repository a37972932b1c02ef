"""redress/rules/vouchers.py: each product gets floor(amount x share_bp / 10000), the first also
the remainder, so the parts always sum to the amount (SPEC "Payout rail")."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.policy import VoucherProduct
from redress.rules.vouchers import voucher_parts

COUPANG = (VoucherProduct("shopping", 1000), VoucherProduct("food_delivery", 1000),
           VoucherProduct("travel", 4000), VoucherProduct("beauty", 4000))


@pytest.mark.parametrize("amount, parts", [
    (50000, [5000, 5000, 20000, 20000]),
    (33333, [3334, 3333, 13333, 13333]),   # 33332 by shares, the remainder 1 to the first
    (1, [1, 0, 0, 0]),
    (9, [3, 0, 3, 3]),                      # 0+0+3+3 = 6, remainder 3
    (0, [0, 0, 0, 0]),
    (11, [2, 1, 4, 4]),                     # 1+1+4+4 = 10, remainder 1
])
def test_coupang_split(amount, parts):
    out = voucher_parts(pl.DataFrame({"amount": [amount]}), COUPANG)
    assert out.select(f"voucher_{p.id}" for p in COUPANG).row(0) == tuple(parts)
    assert all(out[f"voucher_{p.id}"].dtype == pl.Int64 for p in COUPANG)


def test_other_columns_kept_and_input_untouched():
    frame = pl.DataFrame({"customer_id": ["a", "b"], "amount": [50000, 33333]})
    out = voucher_parts(frame, COUPANG)
    assert frame.columns == ["customer_id", "amount"]
    assert out.columns == ["customer_id", "amount", *(f"voucher_{p.id}" for p in COUPANG)]
    assert out["customer_id"].to_list() == ["a", "b"]


@st.composite
def products(draw):
    n = draw(st.integers(1, 6))
    cuts = sorted(draw(st.lists(st.integers(0, 10000), min_size=n - 1, max_size=n - 1)))
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, 10000])]
    return tuple(VoucherProduct(f"p{i}", s) for i, s in enumerate(shares))


@settings(max_examples=200, deadline=None)
@given(amounts=st.lists(st.integers(0, 10**12), min_size=1, max_size=20), prods=products())
def test_parts_always_sum_to_the_amount(amounts, prods):
    out = voucher_parts(pl.DataFrame({"amount": amounts}), prods)
    cols = [f"voucher_{p.id}" for p in prods]
    for amount, parts in zip(amounts, out.select(cols).rows()):
        assert sum(parts) == amount
        assert all(part >= 0 for part in parts)
        for p, part in zip(prods[1:], parts[1:]):
            assert part == amount * p.share_bp // 10000
        assert 0 <= parts[0] - amount * prods[0].share_bp // 10000 < len(prods)


def test_lazy_frames_split_the_same():
    frame = pl.DataFrame({"amount": [50000, 33333, 1]})
    assert voucher_parts(frame.lazy(), COUPANG).collect().equals(voucher_parts(frame, COUPANG))
