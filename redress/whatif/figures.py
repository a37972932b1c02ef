"""The figures of one candidate policy, from frames: Polars, no IO but the customer
order `figures` is handed (read only when bank transfers are due).

Each policy is priced by the entitle stage's own rule over classes of alike customers,
each row counting `customers` people (redress/whatif/compare.py); what switching would
newly pay comes from the disburse stage's rule (rules.payments.owed_now) and its value
dates from the batch split (rules.batches.value_days), in customer_id order: a what-if
says what a run of the policy would do. Amounts are whole KRW (ints).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import polars as pl

from redress.policy import Policy
from redress.rules.batches import value_days as split_days
from redress.rules.classify import classified_scope
from redress.rules.fund_cap import over_fund_cap
from redress.rules.payments import owed_now, paying_rail
from redress.vocabulary import (BANK_TRANSFER, BELOW_MINIMUM, ELIGIBLE, ENTITLEMENT_REASONS, EXPOSURE, RAILS)


def _totals(frame: pl.DataFrame, key: str, keys: list) -> dict:
    """{key value: {"customers", "amount_krw"}} for every one of `keys` (0 when absent),
    in that order; `frame` holds key, customers, amount_krw."""
    found = {row[key]: row for row in frame.to_dicts()}
    return {str(k): {"customers": int(found.get(k, {}).get("customers") or 0),
                     "amount_krw": int(found.get(k, {}).get("amount_krw") or 0)} for k in keys}


def in_force_counts(in_force: pl.LazyFrame) -> dict:
    """How many people hold an entitlement in force above 0 KRW ("paid") and of 0 KRW
    ("zero"): what `changes` needs for the people a candidate does not cover."""
    paid, zero = in_force.select((pl.col("amount") > 0).sum().alias("paid"),
                                 (pl.col("amount") == 0).sum().alias("zero")).collect().row(0)
    return {"paid": int(paid or 0), "zero": int(zero or 0)}


def already_paid(history: pl.LazyFrame) -> dict:
    """The live ledger (issued and settled payments) out of the payment history
    (rules.payments.payment_history: paid per customer): {"customers", "amount_krw"}.
    Every payment is of at least 1 KRW (rules.payments.owed_now), so the people holding a
    live payment are those with paid above 0."""
    people, paid = history.filter(pl.col("paid") > 0).select(pl.len(), pl.col("paid").sum()).collect().row(0)
    return {"customers": int(people), "amount_krw": int(paid or 0)}


def changes(priced: pl.LazyFrame, counts: dict) -> dict:
    """How many people gain, lose or keep the same amount when a candidate's
    entitlements (`priced`: customers, how many alike people a row stands for, amount,
    in_force) replace those in force: everyone in either, a missing entitlement counted
    as 0 KRW. `counts` (in_force_counts) covers the people in force whom the candidate
    does not price. Returns {"gain", "lose", "unchanged"} (ints)."""
    new, old = pl.col("amount").fill_null(0), pl.col("in_force").fill_null(0)

    def people(where: pl.Expr) -> pl.Expr:
        return pl.col("customers").filter(where).sum()
    gain, lose, same, old_paid, old_zero = priced.select(
        people(new > old).alias("gain"), people(new < old).alias("lose"), people(new == old).alias("same"),
        people(pl.col("in_force") > 0).alias("old_paid"), people(pl.col("in_force") == 0).alias("old_zero"),
    ).collect().row(0)
    # the others in force now get nothing: those holding more than 0 lose, the rest stay at 0
    return {"gain": int(gain or 0), "lose": int(lose or 0) + counts["paid"] - int(old_paid or 0),
            "unchanged": int(same or 0) + counts["zero"] - int(old_zero or 0)}


def value_days(amounts: np.ndarray, policy: Policy, run_date: date, released: dict[date, int]) -> dict:
    """The bank transfers of `amounts` (KRW, in customer_id order) split as the disburse
    stage would (rules.batches: daily_cash_cap per value date, counting `released`, the
    cash already scheduled per date). Returns payments, amount_krw, value_days and the
    first and last value date (ISO text, None when there is no transfer)."""
    if len(amounts) == 0:
        return {"payments": 0, "amount_krw": 0, "value_days": 0, "first_value_date": None, "last_value_date": None}
    days = sorted({day for day, _ in split_days(amounts, BANK_TRANSFER, policy, run_date, released)})
    return {"payments": len(amounts), "amount_krw": int(amounts.sum()), "value_days": len(days),
            "first_value_date": days[0].isoformat(), "last_value_date": days[-1].isoformat()}


def bank_amounts(paid_now: pl.DataFrame, order: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The bank transfers among `paid_now` (class, amount, rail: one payment per person
    of the class) as one amount per person, in customer_id order: order(classes) gives
    the class of every exposed customer in one of `classes`, in that order; it is not
    called when no transfer is due."""
    bank = paid_now.filter(pl.col("rail") == BANK_TRANSFER)
    if bank.height == 0:
        return np.zeros(0, dtype=np.int64)
    per_class = np.zeros(int(bank["class"].max()) + 1, dtype=np.int64)
    per_class[bank["class"].to_numpy()] = bank["amount"].to_numpy()
    return per_class[order(bank["class"].to_numpy())]


def pro_rata(policy: Policy, passing_sum: int) -> dict:
    """The budget cap and the base sum it divides (KRW); factor = cap / sum when the cap
    binds (SPEC "Eligibility and entitlement"), else None."""
    binds = 0 < policy.total_cap < passing_sum
    return {"total_cap_krw": policy.total_cap, "base_sum_krw": int(passing_sum), "binds": binds,
            "factor": policy.total_cap / passing_sum if binds else None}


def paid_in_all(paid: dict, top_up_krw: int, policy: Policy) -> dict:
    """What the fund pays in all when switching to `policy`: the live ledger (`paid`,
    already_paid's; never clawed back: SPEC "Ledger: paying exactly once, whatever the
    scope does") plus the top-up.
    Returns already_paid {"customers", "amount_krw"}, after_switching_krw, fund_cap_krw
    (0: no cap) and exceeds_fund_cap_krw (how far after_switching_krw is over the cap,
    0 when within it or there is no cap: rules.fund_cap, the run reports' rule). KRW ints."""
    after = paid["amount_krw"] + top_up_krw
    cap = policy.total_cap
    return {"already_paid": dict(paid), "after_switching_krw": after,
            "fund_cap_krw": cap, "exceeds_fund_cap_krw": over_fund_cap(after, cap)}


def figures(priced: pl.DataFrame, passing_sum: int, counts: dict, paid: dict, policy: Policy,
            run_date: date, released: dict[date, int], order: Callable[[np.ndarray], np.ndarray]) -> dict:
    """Every figure of one policy as a JSON-ready dict (KRW as ints).

    priced: one row per class of alike customers the policy covers (class, customers:
    how many), rules.entitlements.decided's columns (reason, tier, amount, rail) with
    history's (in_force, paid, came_back, bank_returns, claimed); passing_sum: their base
    sum passing rules 1-5; counts: in_force_counts; paid: already_paid; released: bank
    cash already scheduled per date; order: the classes of the people in some classes,
    in customer_id order (for the value days; see bank_amounts).
    """
    frame = priced.lazy()
    eligible = frame.filter(pl.col("reason") == ELIGIBLE)
    sums = [pl.col("customers").sum().alias("customers"),
            (pl.col("amount") * pl.col("customers")).sum().alias("amount_krw")]
    by_reason, by_tier, by_rail, paid_now = pl.collect_all([
        frame.group_by("reason").agg(*sums),
        eligible.group_by("tier").agg(*sums),
        # by the rail the person's money goes by, as a run pays it (a claimant by transfer)
        eligible.with_columns(paying_rail(policy).alias("rail")).group_by("rail").agg(*sums),
        owed_now(frame, policy, ids=("class", "customers")).select("class", "customers", "amount", "rail"),
    ])
    top_up = paid_now.select(sums).row(0, named=True)
    reasons = _totals(by_reason, "reason", list(ENTITLEMENT_REASONS))
    return {
        "policy_id": policy.id,
        "policy_file": policy.path.name if policy.path else "",
        "policy_sha256": policy.sha256,
        "exposed_customers": sum(r["customers"] for r in reasons.values()),
        "eligible": reasons[ELIGIBLE],
        "below_minimum": reasons[BELOW_MINIMUM]["customers"],
        "by_reason": reasons,
        "by_tier": _totals(by_tier, "tier", sorted(policy.tiers)),
        "by_rail": _totals(by_rail, "rail", sorted(RAILS)),
        "pro_rata": pro_rata(policy, passing_sum),
        "bank_transfers": value_days(bank_amounts(paid_now, order), policy, run_date, released),
        "versus_in_force": changes(frame, counts) | {
            "top_up": {"customers": int(top_up["customers"] or 0), "amount_krw": int(top_up["amount_krw"] or 0)},
        },
        "top_up_by_rail": _totals(paid_now.group_by("rail").agg(*sums), "rail", sorted(RAILS)),
        "paid_in_all": paid_in_all(paid, int(top_up["amount_krw"] or 0), policy),
    }


def reclassified(quarantined: pl.LazyFrame, master: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """The scope rows the last run quarantined as unknown_category (scope_rows'
    columns) that `policy`'s own run would take as exposures: its row rules and
    identity resolution (rules.classify.classified_scope) against the master's identity
    keys (customer_id, email_norm, phone_e164, created_at), as the validate stage runs
    them. customer_id, data_category, confidence, accessed_at: one row per exposure."""
    rows = quarantined.filter(pl.col("data_category").is_in(list(policy.categories))).with_columns(
        pl.col("confidence").alias("confidence_raw"))
    return (classified_scope(rows, master, list(policy.categories))
            .filter(pl.col("destination") == EXPOSURE)
            .select(pl.col("resolved_id").alias("customer_id"), "data_category", "confidence", "accessed_at"))


