"""The figures of one candidate policy (redress/whatif/figures.py), on hand-made frames."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from redress.rules.entitlements import entitlements, passing_base_sum, exposure_summary
from redress.whatif.figures import changes, figures, pro_rata, top_up, value_days

RUN_DATE = date(2025, 12, 1)
LEDGER_SCHEMA = {"customer_id": pl.String, "amount": pl.Int64, "status": pl.String, "rail": pl.String,
                 "attempt": pl.Int32}
NO_CLAIMANTS = pl.LazyFrame(schema={"customer_id": pl.String})


def amounts(rows: dict[str, int]) -> pl.LazyFrame:
    return pl.LazyFrame({"customer_id": list(rows), "amount": list(rows.values())},
                        schema={"customer_id": pl.String, "amount": pl.Int64})


def test_changes_counts_gain_lose_and_unchanged_with_a_missing_side_as_zero():
    new = amounts({"a": 50000, "b": 0, "c": 30000, "d": 10000, "f": 0})
    old = amounts({"a": 50000, "b": 50000, "c": 20000, "e": 5000, "f": 0})
    # gain: c (20,000 -> 30,000), d (none -> 10,000); lose: b, e (gone); unchanged: a, f
    assert changes(new, old) == {"gain": 2, "lose": 2, "unchanged": 2}


def test_top_up_is_owed_minus_paid_never_negative_nor_below_minimum(policy):
    p = policy(minimum_amount=1000)
    entitled = pl.LazyFrame({
        "customer_id": ["a", "b", "c", "d", "e", "g"],
        "reason": ["ELIGIBLE", "ELIGIBLE", "ELIGIBLE", "ELIGIBLE", "BELOW_MINIMUM", "ELIGIBLE"],
        "amount": [70000, 30000, 50500, 50000, 0, 40000],
        "rail": ["voucher", "voucher", "bank_transfer", "bank_transfer", "voucher", "bank_transfer"],
    })
    ledger = pl.LazyFrame({
        "customer_id": ["a", "b", "c", "d", "d", "e"],
        "amount": [50000, 50000, 50000, 50000, 50000, 50000],
        "status": ["issued", "settled", "settled", "returned", "issued", "issued"],
        "rail": ["voucher", "voucher", "bank_transfer", "bank_transfer", "bank_transfer", "voucher"],
        "attempt": [1, 1, 1, 1, 2, 1],
    }, schema=LEDGER_SCHEMA)
    paid = top_up(entitled, ledger, NO_CLAIMANTS, p)
    # a: 70,000 - 50,000; b overpaid (no clawback); c owes 500 < minimum; d paid by its
    # reissue; e not eligible; g never paid: all of it
    assert paid.select("customer_id", "amount", "rail").to_dicts() == [
        {"customer_id": "a", "amount": 20000, "rail": "voucher"},
        {"customer_id": "g", "amount": 40000, "rail": "bank_transfer"},
    ]


def test_value_days_follow_the_daily_cash_cap_and_what_is_already_released(policy):
    p = policy(daily_cash_cap=100000, max_batch_amount=100000, first_value_date=None)
    payments = pl.DataFrame({"customer_id": [f"c{i}" for i in range(5)], "amount": [50000] * 5,
                             "rail": ["bank_transfer"] * 4 + ["voucher"]})
    # 4 transfers of 50,000: two a day; 50,000 already released on the first day leaves room for one
    out = value_days(payments, p, RUN_DATE, {RUN_DATE: 50000})
    assert out == {"payments": 4, "amount_krw": 200000, "value_days": 3,
                   "first_value_date": "2025-12-01", "last_value_date": "2025-12-03"}
    assert value_days(payments.filter(pl.col("rail") == "voucher"), p, RUN_DATE, {})["value_days"] == 0


def test_pro_rata_factor_only_when_the_cap_binds(policy):
    assert pro_rata(policy(total_cap=80), 100) == {"total_cap_krw": 80, "base_sum_krw": 100, "binds": True, "factor": 0.8}
    assert pro_rata(policy(total_cap=100), 100)["factor"] is None
    assert pro_rata(policy(total_cap=0), 100)["binds"] is False


# --------------------------------------------------------------------------- properties

WINDOW_IN = datetime(2025, 7, 1, tzinfo=timezone.utc)
WINDOW_OUT = datetime(2025, 1, 1, tzinfo=timezone.utc)
people = st.lists(st.tuples(
    st.sampled_from(["active", "dormant", "closed"]), st.booleans(), st.booleans(), st.booleans(),
    st.lists(st.tuples(st.sampled_from(["name", "email", "shipping_address", "entrance_code"]),
                       st.booleans(), st.sampled_from(["confirmed", "suspected"])), min_size=1, max_size=3),
), min_size=1, max_size=25)


def frames(rows):
    customers = pl.LazyFrame({
        "customer_id": [f"C{i:03d}" for i in range(len(rows))],
        "status": [r[0] for r in rows],
        "closed_at": [WINDOW_OUT if r[0] == "closed" else None for r in rows],
        "is_test": [r[1] for r in rows],
        "payout_method": ["bank_transfer" if r[2] else "voucher" for r in rows],
        "bank_valid": [r[3] for r in rows],
    }, schema_overrides={"closed_at": pl.Datetime("us", "UTC")})
    exp = [(f"C{i:03d}", cat, WINDOW_IN if inside else WINDOW_OUT, conf)
           for i, r in enumerate(rows) for cat, inside, conf in r[4]]
    exposures = pl.LazyFrame(exp, schema={"customer_id": pl.String, "data_category": pl.String,
                                          "accessed_at": pl.Datetime("us", "UTC"), "confidence": pl.String},
                             orient="row")
    return exposures, customers


@given(rows=people, cap=st.sampled_from([0, 60000, 200000, 10**9]))
def test_the_policy_in_force_after_a_run_that_paid_all_changes_nothing(policy, rows, cap):
    p = policy(categories={"name": 1, "email": 1, "shipping_address": 2, "entrance_code": 3},
               tiers={1: 30000, 2: 50000, 3: 90000}, total_cap=cap, minimum_amount=1000)
    exposures, customers = frames(rows)
    in_force = entitlements(exposures, customers, p)
    paid = in_force.filter(pl.col("reason") == "ELIGIBLE").select(
        "customer_id", "amount", pl.lit("issued").alias("status"), "rail", pl.lit(1, pl.Int32).alias("attempt"))
    passing = passing_base_sum(exposure_summary(exposures, customers, p), p)
    figs = figures(in_force.lazy(), passing, in_force.lazy().select("customer_id", "amount"), paid.lazy(),
                   NO_CLAIMANTS, p, RUN_DATE, {})
    exposed = in_force.height
    assert figs["versus_in_force"] == {"gain": 0, "lose": 0, "unchanged": exposed,
                                      "top_up": {"customers": 0, "amount_krw": 0}}
    assert figs["bank_transfers"]["payments"] == 0
    # every total is the sum of its parts, and each is the entitlements' own
    assert figs["exposed_customers"] == exposed == sum(r["customers"] for r in figs["by_reason"].values())
    eligible = in_force.filter(pl.col("reason") == "ELIGIBLE")
    assert figs["eligible"] == {"customers": eligible.height, "amount_krw": int(eligible["amount"].sum() or 0)}
    assert sum(r["amount_krw"] for r in figs["by_rail"].values()) == figs["eligible"]["amount_krw"]
    assert sum(t["amount_krw"] for t in figs["by_tier"].values()) == figs["eligible"]["amount_krw"]
    assert figs["below_minimum"] == in_force.filter(pl.col("reason") == "BELOW_MINIMUM").height
    assert figs["pro_rata"]["binds"] == (0 < cap < passing)


@given(rows=people)
def test_a_first_pledge_tops_up_everyone_eligible_by_their_whole_amount(policy, rows):
    p = policy()
    exposures, customers = frames(rows)
    ent = entitlements(exposures, customers, p)
    nothing = pl.LazyFrame(schema=LEDGER_SCHEMA)
    figs = figures(ent.lazy(), passing_base_sum(exposure_summary(exposures, customers, p), p),
                   pl.LazyFrame(schema={"customer_id": pl.String, "amount": pl.Int64}), nothing, NO_CLAIMANTS,
                   p, RUN_DATE, {})
    assert figs["versus_in_force"]["top_up"] == figs["eligible"]
    assert figs["versus_in_force"]["gain"] == figs["eligible"]["customers"]
    assert figs["bank_transfers"]["amount_krw"] == figs["by_rail"]["bank_transfer"]["amount_krw"]
