"""The figures of one candidate policy (redress/whatif/figures.py), on hand-made frames."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import duckdb

from redress.rules.batches import value_days as batch_days
from redress.rules.entitlements import entitlements
from redress.rules.payments import new_payments, owed_now, payment_history
from redress.whatif import compare as comparing
from redress.whatif.figures import already_paid, bank_amounts, changes, in_force_counts, pro_rata, value_days

RUN_DATE = date(2025, 12, 1)
LEDGER_SCHEMA = {"customer_id": pl.String, "amount": pl.Int64, "status": pl.String, "rail": pl.String,
                 "attempt": pl.Int32}
NO_CLAIMANTS = pl.LazyFrame(schema={"customer_id": pl.String})


def ledger_of(rows: list[tuple[str, int, str, str, int]]) -> pl.LazyFrame:
    """Ledger rows: customer_id, amount, status, rail, attempt."""
    return pl.LazyFrame(rows, schema=LEDGER_SCHEMA, orient="row")


def priced(rows: list[tuple[str, int | None, int | None]]) -> pl.LazyFrame:
    """customer_id, amount (the candidate's), in_force (None: none in force), one
    customer a row."""
    return pl.LazyFrame(rows, schema={"customer_id": pl.String, "amount": pl.Int64, "in_force": pl.Int64},
                        orient="row").with_columns(pl.lit(1).alias("customers"))


def test_changes_counts_gain_lose_and_unchanged_with_a_missing_side_as_zero():
    new = priced([("a", 50000, 50000), ("b", 0, 50000), ("c", 30000, 20000), ("d", 10000, None),
                  ("f", 0, 0)])
    # in force: a, b, c, f and e (5,000), g (0), whom the candidate does not cover
    counts = in_force_counts(pl.LazyFrame({"customer_id": list("abcefg"), "amount": [50000, 50000, 20000, 5000, 0, 0]}))
    assert counts == {"paid": 4, "zero": 2}
    # gain: c (20,000 -> 30,000), d (none -> 10,000); lose: b, e (gone); unchanged: a, f, g
    assert changes(new, counts) == {"gain": 2, "lose": 2, "unchanged": 3}


def test_top_up_is_owed_minus_paid_never_negative_nor_below_minimum(policy):
    p = policy(minimum_amount=1000)
    entitled = pl.LazyFrame({
        "customer_id": ["a", "b", "c", "d", "e", "g"],
        "reason": ["ELIGIBLE", "ELIGIBLE", "ELIGIBLE", "ELIGIBLE", "BELOW_MINIMUM", "ELIGIBLE"],
        "amount": [70000, 30000, 50500, 50000, 0, 40000],
        "rail": ["voucher", "voucher", "bank_transfer", "bank_transfer", "voucher", "bank_transfer"],
    })
    ledger = ledger_of([("a", 50000, "issued", "voucher", 1), ("b", 50000, "settled", "voucher", 1),
                        ("c", 50000, "settled", "bank_transfer", 1), ("d", 50000, "returned", "bank_transfer", 1),
                        ("d", 50000, "issued", "bank_transfer", 2), ("e", 50000, "issued", "voucher", 1)])
    joined = entitled.join(payment_history(ledger, NO_CLAIMANTS), on="customer_id", how="left")
    paid = owed_now(joined, p).collect().sort("customer_id")
    # a: 70,000 - 50,000; b overpaid (no clawback); c owes 500 < minimum; d paid by its
    # reissue; e not eligible; g never paid: all of it
    assert paid.select("customer_id", "amount", "rail").to_dicts() == [
        {"customer_id": "a", "amount": 20000, "rail": "voucher"},
        {"customer_id": "g", "amount": 40000, "rail": "bank_transfer"},
    ]
    assert paid.height == new_payments(entitled, ledger, p).height


def test_already_paid_counts_the_people_holding_an_issued_or_settled_payment_and_their_sum():
    ledger = ledger_of([("a", 50000, "settled", "voucher", 1), ("a", 20000, "issued", "voucher", 1),
                        ("b", 50000, "returned", "bank_transfer", 1), ("c", 50000, "cancelled", "claim", 1),
                        ("c", 50000, "issued", "bank_transfer", 2), ("d", 30000, "returned", "bank_transfer", 1)])
    claimants = pl.LazyFrame({"customer_id": ["e"]})  # a claim, nothing paid yet
    # a (two live payments), c (reissued after a cancelled claim); b and d only returned
    assert already_paid(payment_history(ledger, claimants)) == {"customers": 2, "amount_krw": 120000}


def test_value_days_follow_the_daily_cash_cap_and_what_is_already_released(policy):
    p = policy(daily_cash_cap=100000, max_batch_amount=100000, first_value_date=None)
    # 4 transfers of 50,000: two a day; 50,000 already released on the first day leaves room for one
    out = value_days(np.array([50000] * 4), p, RUN_DATE, {RUN_DATE: 50000})
    assert out == {"payments": 4, "amount_krw": 200000, "value_days": 3,
                   "first_value_date": "2025-12-01", "last_value_date": "2025-12-03"}
    assert value_days(np.zeros(0, dtype=np.int64), p, RUN_DATE, {})["value_days"] == 0


def test_bank_amounts_are_one_per_person_in_customer_order_and_only_read_the_order_when_due():
    paid_now = pl.DataFrame({"class": [0, 2, 3], "amount": [10, 30, 40],
                             "rail": ["bank_transfer", "bank_transfer", "voucher"]})
    asked = []

    def order(classes: np.ndarray) -> np.ndarray:  # customers in customer_id order: classes 2, 0, 1, 2, 3
        asked.append(sorted(classes.tolist()))
        return np.array([c for c in (2, 0, 1, 2, 3) if c in classes])
    assert bank_amounts(paid_now, order).tolist() == [30, 10, 30]
    assert asked == [[0, 2]]  # only the classes paid by transfer

    def never(classes: np.ndarray) -> np.ndarray:
        raise AssertionError("the order is read only when a transfer is due")
    assert bank_amounts(paid_now.filter(pl.col("rail") == "voucher"), never).tolist() == []


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
        # closed before every window, or at the very instant some windows open
        "closed_at": [(WINDOW_OUT, WINDOW_IN)[i % 2] if r[0] == "closed" else None for i, r in enumerate(rows)],
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


EMPTY_IN_FORCE = pl.LazyFrame(schema={"customer_id": pl.String, "amount": pl.Int64})


def compare(exposures, customers, in_force, ledger, claimants, policies, run_date, released, extra=None):
    """redress.whatif.compare.compare over frames: DuckDB reads them as the warehouse's
    scope_exposures, customers, entitlements and ledger."""
    # the ledger as the warehouse holds it, of runs not recorded: the attempts stand for
    # their order (rules.payments.pending)
    ledger = ledger.with_columns(pl.lit(None, pl.String).alias("run_id"), pl.lit(None, pl.String).alias("updated_run_id"))
    runs = pl.DataFrame(schema={"run_id": pl.String, "started_at": pl.Datetime("us", "UTC")})
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for name, frame in (("scope_exposures", exposures), ("customers", customers), ("entitlements", in_force),
                            ("ledger", ledger), ("runs", runs.lazy())):
            con.register(name, frame.collect())
        return comparing.compare(con, policies, run_date, released, claimants, extra)


@settings(max_examples=20)  # each example runs DuckDB over frames: CI's 15 minutes
@given(rows=people, cap=st.sampled_from([0, 60000, 200000, 10**9]))
def test_the_policy_in_force_after_a_run_that_paid_all_changes_nothing(policy, rows, cap):
    p = policy(categories={"name": 1, "email": 1, "shipping_address": 2, "entrance_code": 3},
               tiers={1: 30000, 2: 50000, 3: 90000}, total_cap=cap, minimum_amount=1000)
    exposures, customers = frames(rows)
    in_force = entitlements(exposures, customers, p)
    paid = in_force.filter(pl.col("reason") == "ELIGIBLE").select(
        "customer_id", "amount", pl.lit("issued").alias("status"), "rail", pl.lit(1, pl.Int32).alias("attempt"))
    figs, = compare(exposures, customers, in_force.lazy().select("customer_id", "amount"), paid.lazy(),
                    NO_CLAIMANTS, [p], RUN_DATE, {})
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
    passing = int(in_force.filter(~pl.col("reason").is_in(["TEST_ACCOUNT", "UNCONFIRMED_ONLY", "OUTSIDE_WINDOW",
                                                           "STATUS_NOT_ELIGIBLE", "CLOSED_BEFORE_BREACH"]))
                  ["base_amount"].sum() or 0)
    assert figs["pro_rata"]["base_sum_krw"] == passing
    assert figs["pro_rata"]["binds"] == (0 < cap < passing)


@settings(max_examples=20)  # each example runs DuckDB over frames: CI's 15 minutes
@given(rows=people)
def test_a_first_pledge_tops_up_everyone_eligible_by_their_whole_amount(policy, rows):
    p = policy()
    exposures, customers = frames(rows)
    nothing = pl.LazyFrame(schema=LEDGER_SCHEMA)
    figs, = compare(exposures, customers, EMPTY_IN_FORCE, nothing, NO_CLAIMANTS, [p], RUN_DATE, {})
    assert figs["versus_in_force"]["top_up"] == figs["eligible"]
    assert figs["versus_in_force"]["gain"] == figs["eligible"]["customers"]
    assert figs["bank_transfers"]["amount_krw"] == figs["by_rail"]["bank_transfer"]["amount_krw"]


CATEGORIES = ["name", "email", "shipping_address", "entrance_code"]
candidates = st.lists(st.tuples(
    st.dictionaries(st.sampled_from(CATEGORIES), st.sampled_from([1, 2, 3]), min_size=1),
    st.sampled_from([["confirmed"], ["confirmed", "suspected"]]),
    st.sampled_from([0, 60000, 10**9]),
    st.sampled_from([1000, 40000]),
    st.sampled_from(["default", "wide", "from the exposure", "until the exposure", "the exposure's instant"]),
), min_size=1, max_size=3)


@settings(max_examples=20)  # each example runs DuckDB over frames: CI's 15 minutes
@given(rows=people, specs=candidates, paid_share=st.sampled_from([0, 1]))
def test_one_pass_over_the_exposures_prices_each_policy_as_its_own_run_would(policy, rows, specs, paid_share):
    """What `compare` says of several policies at once equals what each policy's run
    would decide alone: its row rules quarantine exposures in categories it does not
    list, then the entitle stage's rule runs (rules.entitlements.entitlements)."""
    exposures, customers = frames(rows)
    # windows whose edges fall exactly on the instant of the exposures inside (both edges
    # count: SPEC "Eligibility and entitlement"), and one that takes those outside too
    start, end = policy().window_start, policy().window_end
    windows = {"default": (start, end), "wide": (WINDOW_OUT, end), "from the exposure": (WINDOW_IN, end),
               "until the exposure": (start, WINDOW_IN), "the exposure's instant": (WINDOW_IN, WINDOW_IN)}
    policies = [policy(id=f"p{n}", categories=cats, tiers={1: 30000, 2: 50000, 3: 90000},
                       confidence=tuple(conf), total_cap=cap, minimum_amount=minimum,
                       window_start=windows[window][0], window_end=windows[window][1],
                       # a day holds one to three transfers: the value days depend on their order
                       daily_cash_cap=100000, max_batch_amount=100000, first_value_date=None)
                for n, (cats, conf, cap, minimum, window) in enumerate(specs)]
    base = policy(categories={c: 1 for c in CATEGORIES}, tiers={1: 50000})
    in_force = entitlements(exposures, customers, base)
    ledger = in_force.filter((pl.col("reason") == "ELIGIBLE") & (pl.lit(paid_share) == 1)).select(
        "customer_id", "amount", pl.lit("issued").alias("status"), "rail", pl.lit(1, pl.Int32).alias("attempt"))
    got = compare(exposures, customers, in_force.lazy().select("customer_id", "amount"), ledger.lazy(),
                  NO_CLAIMANTS, policies, RUN_DATE, {})
    for p, figs in zip(policies, got):
        alone = entitlements(exposures.filter(pl.col("data_category").is_in(list(p.categories))), customers, p)
        expected = {r: alone.filter(pl.col("reason") == r).height for r in figs["by_reason"]}
        assert {r: v["customers"] for r, v in figs["by_reason"].items()} == expected
        eligible = alone.filter(pl.col("reason") == "ELIGIBLE")
        assert figs["eligible"] == {"customers": eligible.height, "amount_krw": int(eligible["amount"].sum() or 0)}
        owed = new_payments(alone.lazy(), ledger.lazy(), p)
        assert figs["versus_in_force"]["top_up"] == {"customers": owed.height,
                                                     "amount_krw": int(owed["amount"].sum() or 0)}
        bank = owed.filter(pl.col("rail") == "bank_transfer")["amount"].to_numpy()  # in customer_id order
        days = sorted({day for day, _ in batch_days(bank, "bank_transfer", p, RUN_DATE, {})})
        assert figs["bank_transfers"] == {
            "payments": len(bank), "amount_krw": int(bank.sum()), "value_days": len(days),
            "first_value_date": days[0].isoformat() if days else None,
            "last_value_date": days[-1].isoformat() if days else None}
        both = alone.select("customer_id", "amount").join(in_force.select("customer_id", pl.col("amount").alias("old")),
                                                          on="customer_id", how="full", coalesce=True).fill_null(0)
        assert figs["versus_in_force"]["gain"] == both.filter(pl.col("amount") > pl.col("old")).height
        assert figs["versus_in_force"]["lose"] == both.filter(pl.col("amount") < pl.col("old")).height
        assert figs["versus_in_force"]["unchanged"] == both.filter(pl.col("amount") == pl.col("old")).height


def test_no_exposure_at_all_is_a_zero_answer_not_an_error(policy):
    exposures, customers = frames([("active", False, False, False, [("name", True, "confirmed")])])
    figs, = compare(exposures.clear(), customers, EMPTY_IN_FORCE, pl.LazyFrame(schema=LEDGER_SCHEMA), NO_CLAIMANTS,
                    [policy()], RUN_DATE, {})
    assert figs["exposed_customers"] == 0 and figs["eligible"] == {"customers": 0, "amount_krw": 0}
    assert figs["versus_in_force"] == {"gain": 0, "lose": 0, "unchanged": 0, "top_up": {"customers": 0, "amount_krw": 0}}
    assert figs["bank_transfers"]["value_days"] == 0


def test_value_days_split_the_transfers_in_customer_order_as_the_batches_do(policy):
    """30,000 and 90,000 KRW alternating under a 100,000 KRW day: in customer_id order no
    two share a day (4 days); any other order of the same amounts could take 3."""
    p = policy(categories={"name": 1, "entrance_code": 3}, tiers={1: 30000, 3: 90000}, daily_cash_cap=100000,
               max_batch_amount=100000, first_value_date=None)
    rows = [("active", False, True, True, [(cat, True, "confirmed")])
            for cat in ("name", "entrance_code", "name", "entrance_code")]
    exposures, customers = frames(rows)
    figs, = compare(exposures, customers, EMPTY_IN_FORCE, pl.LazyFrame(schema=LEDGER_SCHEMA), NO_CLAIMANTS, [p],
                    RUN_DATE, {})
    assert figs["bank_transfers"] == {"payments": 4, "amount_krw": 240000, "value_days": 4,
                                      "first_value_date": "2025-12-01", "last_value_date": "2025-12-04"}


def test_more_signatures_than_one_mask_word_holds_are_priced_as_each_run_would(policy):
    """40 categories, each inside and outside the window: 80 signatures, two 64-bit
    words per customer, and the exposures in the second word still decide."""
    cats = {f"cat{n:02d}": 1 + n % 3 for n in range(40)}
    p = policy(categories=cats, tiers={1: 30000, 2: 50000, 3: 90000})
    rows = [("active", False, n % 2 == 0, True, [(f"cat{n % 40:02d}", n % 3 != 0, "confirmed"),
                                                  (f"cat{(n * 7) % 40:02d}", n % 5 == 0, "confirmed")])
            for n in range(120)]
    exposures, customers = frames(rows)
    figs, = compare(exposures, customers, EMPTY_IN_FORCE, pl.LazyFrame(schema=LEDGER_SCHEMA), NO_CLAIMANTS, [p],
                    RUN_DATE, {})
    alone = entitlements(exposures, customers, p)
    assert {r: v["customers"] for r, v in figs["by_reason"].items() if v["customers"]} == dict(
        alone.group_by("reason").len().iter_rows())
    tiers = alone.filter(pl.col("reason") == "ELIGIBLE").group_by("tier").agg(pl.len(), pl.col("amount").sum())
    assert {int(t): (v["customers"], v["amount_krw"]) for t, v in figs["by_tier"].items() if v["customers"]} == {
        t: (n, a) for t, n, a in tiers.iter_rows()}


@settings(max_examples=20)  # each example runs DuckDB over frames: CI's 15 minutes
@given(rows=people, history=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=25, max_size=25),
       max_attempts=st.integers(1, 3))
def test_cost_per_rail_is_by_the_rail_a_run_pays_each_person_by(policy, rows, history, max_attempts):
    """A claimant's money goes by transfer to the claimed account whatever the master's
    rail, and money whose transfers came back max_attempts times is held on claim: the
    cost per rail counts each eligible person under the rail the disburse stage's rule
    (rules.payments.owed_now) sends their money by, and still adds up to the cost."""
    p = policy(max_attempts=max_attempts)
    exposures, customers = frames(rows)
    in_force = entitlements(exposures, customers, p)
    ids = in_force["customer_id"].to_list()
    # per person: a claim or not, and that many transfers returned (attempts 1..n)
    ledger = ledger_of([(c, 1000, "returned", "bank_transfer", a + 1)
                        for c, (_, n) in zip(ids, history) for a in range(n)])
    claimants = pl.LazyFrame({"customer_id": [c for c, (claimed, _) in zip(ids, history) if claimed]},
                             schema={"customer_id": pl.String})
    figs, = compare(exposures, customers, in_force.lazy().select("customer_id", "amount"), ledger,
                    claimants, [p], RUN_DATE, {})
    # nothing is paid yet, so everyone eligible is owed their whole amount, by the run's rail
    owed = owed_now(in_force.lazy().join(payment_history(ledger, claimants), on="customer_id", how="left"),
                    p).collect()
    expected = {r: {"customers": 0, "amount_krw": 0} for r in ("bank_transfer", "claim", "voucher")}
    for rail, group in owed.group_by("rail"):
        expected[rail[0]] = {"customers": group.height, "amount_krw": int(group["amount"].sum())}
    assert figs["by_rail"] == expected
    assert sum(r["amount_krw"] for r in figs["by_rail"].values()) == figs["eligible"]["amount_krw"]


def test_a_claimant_on_a_voucher_master_costs_under_bank_transfer_and_a_returned_one_under_claim(policy):
    p = policy(max_attempts=2)
    exposures, customers = frames([("active", False, False, False, [("name", True, "confirmed")]),
                                   ("active", False, True, True, [("name", True, "confirmed")]),
                                   ("active", False, False, False, [("name", True, "confirmed")])])
    in_force = entitlements(exposures, customers, p)
    # C000: a voucher customer who claimed; C001: two transfers returned; C002: voucher
    ledger = ledger_of([("C001", 50000, "returned", "bank_transfer", 1), ("C001", 50000, "returned", "bank_transfer", 2)])
    figs, = compare(exposures, customers, in_force.lazy().select("customer_id", "amount"), ledger,
                    pl.LazyFrame({"customer_id": ["C000"]}), [p], RUN_DATE, {})
    one = {"customers": 1, "amount_krw": 50000}
    assert figs["by_rail"] == {"bank_transfer": one, "claim": one, "voucher": one}
