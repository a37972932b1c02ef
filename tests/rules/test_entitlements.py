"""redress/rules/entitlements.py: SPEC "Eligibility and entitlement"."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.rules.entitlements import entitlements, exposure_not_counted, pro_rata
from redress.vocabulary import ENTITLEMENT_REASONS as REASONS

KST = ZoneInfo("Asia/Seoul")
START = datetime(2025, 6, 24, 0, 0, 0, tzinfo=KST)     # the shipped policies' window
END = datetime(2025, 11, 18, 23, 59, 59, tzinfo=KST)
INSIDE = datetime(2025, 8, 1, 12, 0, tzinfo=KST)
US = timedelta(microseconds=1)

EXPOSURE_SCHEMA = {"customer_id": pl.String, "data_category": pl.String,
                   "accessed_at": pl.Datetime("us", "UTC"), "confidence": pl.String}
CUSTOMER_SCHEMA = {"customer_id": pl.String, "status": pl.String, "closed_at": pl.Datetime("us", "UTC"),
                   "is_test": pl.Boolean, "payout_method": pl.String, "bank_valid": pl.Boolean}

TIERED = dict(categories={"name": 1, "email": 1, "shipping_address": 2, "entrance_code": 3},
              tiers={1: 20000, 2: 50000, 3: 100000})


def exposure(cid="c1", category="email", at=INSIDE, confidence="confirmed") -> dict:
    return {"customer_id": cid, "data_category": category, "accessed_at": at, "confidence": confidence}


def customer(cid="c1", status="active", closed_at=None, is_test=False, payout_method="voucher",
             bank_valid=False) -> dict:
    return {"customer_id": cid, "status": status, "closed_at": closed_at, "is_test": is_test,
            "payout_method": payout_method, "bank_valid": bank_valid}


def run(exposures: list[dict], customers: list[dict], policy) -> pl.DataFrame:
    return entitlements(pl.LazyFrame(exposures, schema=EXPOSURE_SCHEMA),
                        pl.LazyFrame(customers, schema=CUSTOMER_SCHEMA), policy)


def one(exposures, cust, policy) -> dict:
    out = run(exposures, [cust], policy)
    assert out.height == 1
    return out.row(0, named=True)


# ----------------------------------------------------------------- reason codes, in order

REASON_CASES = [
    pytest.param([exposure()], customer(), {}, "ELIGIBLE", id="eligible"),
    pytest.param([exposure()], customer(is_test=True), {}, "TEST_ACCOUNT", id="test"),
    pytest.param([exposure(confidence="suspected", at=START - timedelta(days=9))],
                 customer(is_test=True, status="closed", closed_at=START - timedelta(days=30)),
                 {"statuses": ("active",)}, "TEST_ACCOUNT", id="test-beats-everything"),
    pytest.param([exposure(confidence="suspected")], customer(), {}, "UNCONFIRMED_ONLY", id="suspected-only"),
    pytest.param([exposure(confidence="suspected", at=START - timedelta(days=9))],
                 customer(status="closed", closed_at=START - timedelta(days=30)), {"statuses": ("active",)},
                 "UNCONFIRMED_ONLY", id="unconfirmed-before-window-status-closed"),
    pytest.param([exposure(at=START - US), exposure(category="name", confidence="suspected")], customer(), {},
                 "OUTSIDE_WINDOW", id="confirmed-only-before-window"),
    pytest.param([exposure(at=END + US)], customer(), {}, "OUTSIDE_WINDOW", id="just-after-window"),
    pytest.param([exposure(at=START)], customer(), {}, "ELIGIBLE", id="window-start-inclusive"),
    pytest.param([exposure(at=END)], customer(), {}, "ELIGIBLE", id="window-end-inclusive"),
    pytest.param([exposure(at=START - US)], customer(status="closed", closed_at=START - timedelta(days=1)),
                 {"statuses": ("active",)}, "OUTSIDE_WINDOW", id="outside-window-before-status"),
    pytest.param([exposure()], customer(status="dormant"), {"statuses": ("active",)}, "STATUS_NOT_ELIGIBLE",
                 id="status"),
    pytest.param([exposure()], customer(status="closed", closed_at=START - timedelta(days=1)),
                 {"statuses": ("active", "dormant")}, "STATUS_NOT_ELIGIBLE", id="status-before-closed-before"),
    pytest.param([exposure()], customer(status="closed", closed_at=START - US), {}, "CLOSED_BEFORE_BREACH",
                 id="closed-strictly-before-start"),
    pytest.param([exposure()], customer(status="closed", closed_at=START), {}, "ELIGIBLE",
                 id="closed-at-start-is-eligible"),
    pytest.param([exposure()], customer(status="closed", closed_at=INSIDE + timedelta(days=1)), {}, "ELIGIBLE",
                 id="closed-during-window-is-eligible"),
    pytest.param([exposure()], customer(), {"tiers": {1: 999}, "minimum_amount": 1000}, "BELOW_MINIMUM",
                 id="below-minimum"),
    pytest.param([exposure()], customer(), {"tiers": {1: 1000}, "minimum_amount": 1000}, "ELIGIBLE",
                 id="minimum-itself-is-paid"),
    pytest.param([exposure()], customer(status="closed", closed_at=START - US),
                 {"tiers": {1: 999}, "minimum_amount": 1000}, "CLOSED_BEFORE_BREACH", id="closed-before-minimum"),
    pytest.param([exposure(confidence="suspected")], customer(), {"confidence": ("confirmed", "suspected")},
                 "ELIGIBLE", id="policy-counts-suspected"),
]


@pytest.mark.parametrize("exposures, cust, changes, reason", REASON_CASES)
def test_reason_codes_first_rule_wins(exposures, cust, changes, reason, policy):
    p = policy(**changes)
    got = one(exposures, cust, p)
    assert got["reason"] == reason
    expected_amount = p.tiers[1] if reason == "ELIGIBLE" else 0
    assert got["amount"] == expected_amount
    assert got["policy_id"] == "coupang-2025-v1"


def test_every_reason_code_is_covered():
    assert {c.values[3] for c in REASON_CASES} == set(REASONS)


def test_one_row_per_customer_sorted_with_categories(policy):
    out = run(
        [exposure("c2", "name"), exposure("c1", "phone"), exposure("c1", "email"), exposure("c1", "email"),
         exposure("c1", "name", confidence="suspected")],
        [customer("c1"), customer("c2"), customer("c3")],  # c3: no exposure, no entitlement
        policy(),
    )
    assert out["customer_id"].to_list() == ["c1", "c2"]
    assert out.row(0, named=True) == {
        "customer_id": "c1", "policy_id": "coupang-2025-v1", "reason": "ELIGIBLE", "tier": 1,
        "categories": "email,phone", "exposed_categories": "email,name,phone",
        "base_amount": 50000, "amount": 50000, "rail": "voucher",
    }
    assert out["amount"].dtype == pl.Int64 and out["base_amount"].dtype == pl.Int64


def test_customer_missing_from_master_is_an_error(policy):
    with pytest.raises(ValueError, match="not in the customer master"):
        run([exposure("ghost")], [customer("c1")], policy())


# ----------------------------------------------------------------- tiers

def test_highest_tier_among_counted_exposures_only(policy):
    got = one(
        [exposure(category="name"), exposure(category="shipping_address"),
         exposure(category="entrance_code", confidence="suspected"),      # not a counted confidence
         exposure(category="entrance_code", at=END + timedelta(days=1))],  # outside the window
        customer(), policy(**TIERED),
    )
    assert (got["reason"], got["tier"], got["base_amount"], got["amount"]) == ("ELIGIBLE", 2, 50000, 50000)
    assert got["categories"] == "name,shipping_address"
    assert got["exposed_categories"] == "entrance_code,name,shipping_address"


def test_no_counted_exposure_means_no_tier(policy):
    got = one([exposure(confidence="suspected")], customer(), policy(**TIERED))
    assert (got["reason"], got["tier"], got["categories"], got["base_amount"], got["amount"]) == (
        "UNCONFIRMED_ONLY", None, "", 0, 0)


# ----------------------------------------------------------------- pro rata

def _tiered_run(policy, tiers_by_customer: dict[str, str], **changes) -> dict[str, tuple[str, int]]:
    exposures = [exposure(cid, category) for cid, category in tiers_by_customer.items()]
    out = run(exposures, [customer(cid) for cid in tiers_by_customer], policy(**TIERED | changes))
    return {r["customer_id"]: (r["reason"], r["amount"]) for r in out.to_dicts()}


def test_cap_exceeded_floors_every_amount(policy):
    out = run([exposure(c) for c in ("a", "b", "c")], [customer(c) for c in ("a", "b", "c")],
              policy(total_cap=100000))
    assert out["amount"].to_list() == [33333, 33333, 33333]
    assert out["reason"].to_list() == ["ELIGIBLE"] * 3
    assert out["base_amount"].to_list() == [50000] * 3


def test_cap_sum_counts_only_customers_passing_rules_1_to_5(policy):
    people = ["a", "b", "c", "test", "closed"]
    out = run(
        [exposure(c) for c in people],
        [customer("a"), customer("b"), customer("c"), customer("test", is_test=True),
         customer("closed", status="closed", closed_at=START - timedelta(days=1))],
        policy(total_cap=100000),
    )
    amounts = dict(zip(out["customer_id"], out["amount"]))
    assert amounts == {"a": 33333, "b": 33333, "c": 33333, "closed": 0, "test": 0}


def test_pro_rata_with_mixed_tiers(policy):
    got = _tiered_run(policy, {"a": "name", "b": "shipping_address", "c": "entrance_code"}, total_cap=100000)
    # sum of bases 170000: floor(base x 100000 / 170000)
    assert got == {"a": ("ELIGIBLE", 11764), "b": ("ELIGIBLE", 29411), "c": ("ELIGIBLE", 58823)}


@pytest.mark.parametrize("cap", [0, 170000, 10**12])
def test_a_cap_not_exceeded_changes_nothing(policy, cap):
    got = _tiered_run(policy, {"a": "name", "b": "shipping_address", "c": "entrance_code"}, total_cap=cap)
    assert got == {"a": ("ELIGIBLE", 20000), "b": ("ELIGIBLE", 50000), "c": ("ELIGIBLE", 100000)}


def test_money_freed_by_below_minimum_is_not_shared_again(policy):
    # bases 100000 x 3 + 20000 = 320000 over a cap of 100000
    got = _tiered_run(policy, {"a": "entrance_code", "b": "entrance_code", "c": "entrance_code", "d": "name"},
                      total_cap=100000, minimum_amount=10000)
    assert got == {
        "a": ("ELIGIBLE", 31250), "b": ("ELIGIBLE", 31250), "c": ("ELIGIBLE", 31250),  # 100000*100000//320000
        "d": ("BELOW_MINIMUM", 0),                                                     # 6250 < 10000
    }


def test_pro_rata_uses_128_bit_integers():
    frame = pl.DataFrame({"base": [1_000_000_000, 3]})
    out = frame.select(pro_rata(pl.col("base"), 10_000_000_000_000, 20_000_000_000_000).alias("a"))
    assert out["a"].to_list() == [500_000_000, 1]
    assert out["a"].dtype == pl.Int64


@pytest.mark.parametrize("cap, total", [(0, 10**9), (100, 100), (100, 99)])
def test_pro_rata_is_the_base_when_no_cap_applies(cap, total):
    out = pl.DataFrame({"base": [7, 50000]}).select(pro_rata(pl.col("base"), cap, total).alias("a"))
    assert out["a"].to_list() == [7, 50000]


# ----------------------------------------------------------------- money invariants

@settings(max_examples=60, deadline=None)
@given(
    tier_amounts=st.lists(st.integers(1, 2_000_000), min_size=1, max_size=4),
    people=st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.sampled_from(["active", "dormant"])),
                    min_size=1, max_size=40),
    cap=st.integers(0, 50_000_000),
    minimum=st.integers(0, 100_000),
)
def test_money_invariants(policy, tier_amounts, people, cap, minimum):
    tiers = {i + 1: amount for i, amount in enumerate(tier_amounts)}
    categories = {f"cat{t}": t for t in tiers}
    p = policy(tiers=tiers, categories=categories, total_cap=cap, minimum_amount=minimum)
    exposures, customers = [], []
    for i, (tier_index, is_test, status) in enumerate(people):
        cid = f"c{i:03d}"
        tier = tier_index % len(tiers) + 1
        exposures.append(exposure(cid, f"cat{tier}"))
        customers.append(customer(cid, status=status, is_test=is_test))
    out = run(exposures, customers, p)

    assert out.height == len(people)
    assert out["amount"].dtype == pl.Int64
    assert (out["amount"] <= out["base_amount"]).all()
    assert (out["amount"] >= 0).all()
    assert out.filter(pl.col("reason") != "ELIGIBLE")["amount"].sum() == 0
    assert (out.filter(pl.col("reason") == "ELIGIBLE")["amount"] >= minimum).all()
    passing = out.filter(pl.col("reason").is_in(["ELIGIBLE", "BELOW_MINIMUM"]))
    base_sum = int(passing["base_amount"].sum())
    if cap > 0:
        assert int(out["amount"].sum()) <= cap
    if cap == 0 or base_sum <= cap:
        eligible = out.filter(pl.col("reason") == "ELIGIBLE")
        assert eligible["amount"].to_list() == eligible["base_amount"].to_list()
    else:
        # each amount is exactly floor(base x cap / sum) or withheld below the minimum
        for r in passing.to_dicts():
            share = r["base_amount"] * cap // base_sum
            assert (r["reason"], r["amount"]) == (("ELIGIBLE", share) if share >= minimum else ("BELOW_MINIMUM", 0))


# ----------------------------------------------------------------- time zones

def test_timestamps_in_any_zone_are_compared_as_instants(policy):
    """DuckDB hands TIMESTAMPTZ to Polars in the session's zone (Asia/Seoul while loading),
    the warehouse's Parquet export in UTC: the window is the same instants either way."""
    seoul = pl.Datetime("us", "Asia/Seoul")
    exposures = pl.LazyFrame([exposure("a", at=START), exposure("b", at=START - US), exposure("c", at=END),
                              exposure("d")], schema=EXPOSURE_SCHEMA | {"accessed_at": seoul})
    customers = pl.LazyFrame([customer("a"), customer("b"), customer("c"),
                              customer("d", status="closed", closed_at=START - US)],
                             schema=CUSTOMER_SCHEMA | {"closed_at": seoul})
    out = entitlements(exposures, customers, policy())
    assert dict(zip(out["customer_id"], out["reason"])) == {
        "a": "ELIGIBLE", "b": "OUTSIDE_WINDOW", "c": "ELIGIBLE", "d": "CLOSED_BEFORE_BREACH"}


# ----------------------------------------------------------------- which exposures counted

@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(sorted(TIERED["categories"])), st.sampled_from(["confirmed", "suspected"]),
                            st.sampled_from([START - US, START, INSIDE, END, END + US])), min_size=1, max_size=6),
    status=st.sampled_from(["active", "dormant", "closed"]),
    closed_days=st.integers(-30, 30),
    is_test=st.booleans(),
    minimum=st.sampled_from([0, 60000]),
)
def test_an_exposure_counts_exactly_when_it_made_the_amount(policy, rows, status, closed_days, is_test, minimum):
    """exposure_not_counted (what `redress explain` shows per exposure) agrees with the
    decision of the same rules: some exposure counts iff the person is paid, and then the
    counted ones are exactly the tier and categories paid for."""
    p = policy(**TIERED, minimum_amount=minimum)
    closed_at = START + timedelta(days=closed_days) if status == "closed" else None
    exposures = [exposure(category=c, at=at, confidence=conf) for c, conf, at in rows]
    decided = one(exposures, customer(status=status, closed_at=closed_at, is_test=is_test), p)
    codes = pl.DataFrame(exposures, schema=EXPOSURE_SCHEMA).select(
        exposure_not_counted(p, decided["reason"]).alias("code"))["code"]
    codes = codes.to_list() * (len(exposures) if len(codes) == 1 else 1)  # a literal is one row
    counted = [e for e, code in zip(exposures, codes) if code is None]
    assert bool(counted) == (decided["amount"] > 0) == (decided["reason"] == "ELIGIBLE")
    assert set(codes) - {None} <= set(REASONS) - {"ELIGIBLE"}
    if counted:
        assert decided["categories"] == ",".join(sorted({e["data_category"] for e in counted}))
        assert decided["tier"] == max(TIERED["categories"][e["data_category"]] for e in counted)
    else:
        assert all(code in (decided["reason"], "UNCONFIRMED_ONLY", "OUTSIDE_WINDOW") for code in codes)


def test_a_category_the_policy_does_not_list_never_counts(policy):
    frame = pl.DataFrame([exposure(category="shoe_size"), exposure()], schema=EXPOSURE_SCHEMA)
    codes = frame.select(exposure_not_counted(policy(), "ELIGIBLE").alias("code"))["code"].to_list()
    assert codes == ["unknown_category", None]
