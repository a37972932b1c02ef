"""The figures of one candidate policy, from frames: pure Polars, no IO.

Entitlements come from the entitle stage's rule (redress/entitling.py); what switching
would newly pay from the disburse stage's rule (rules.payments.new_payments) and its
value dates from the batch split (rules.batches.batches), so a what-if says what a run
of the policy would do. Amounts are whole KRW (ints).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from redress.policy import Policy
from redress.rules.batches import batches
from redress.rules.payments import new_payments
from redress.vocabulary import BANK_TRANSFER, BELOW_MINIMUM, ELIGIBLE, ENTITLEMENT_REASONS, LIVE_STATUSES, RAILS


def _totals(frame: pl.DataFrame, key: str, keys: list) -> dict:
    """{key value: {"customers", "amount_krw"}} for every one of `keys` (0 when absent),
    in that order; `frame` holds key, customers, amount_krw."""
    found = {row[key]: row for row in frame.to_dicts()}
    return {str(k): {"customers": int(found.get(k, {}).get("customers") or 0),
                     "amount_krw": int(found.get(k, {}).get("amount_krw") or 0)} for k in keys}


def changes(entitled: pl.LazyFrame, in_force: pl.LazyFrame) -> dict:
    """How many people gain, lose or keep the same amount when `entitled` (customer_id,
    amount) replaces `in_force` (customer_id, amount): everyone in either, a missing
    entitlement counted as 0 KRW. Returns {"gain", "lose", "unchanged"} (ints)."""
    both = entitled.select("customer_id", pl.col("amount").alias("new")).join(
        in_force.select("customer_id", pl.col("amount").alias("old")), on="customer_id", how="full",
        coalesce=True)
    new, old = pl.col("new").fill_null(0), pl.col("old").fill_null(0)
    gain, lose, same = both.select((new > old).sum().alias("gain"), (new < old).sum().alias("lose"),
                                   (new == old).sum().alias("unchanged")).collect().row(0)
    return {"gain": int(gain), "lose": int(lose), "unchanged": int(same)}


def top_up(entitled: pl.LazyFrame, ledger: pl.LazyFrame, claimants: pl.LazyFrame, policy: Policy) -> pl.DataFrame:
    """What a run of `policy` would newly pay now: rules.payments.new_payments (owed =
    entitlement - issued and settled payments, paid when it reaches the minimum, never
    negative), with the disburse stage's inputs. Columns customer_id, amount, rail,
    attempt."""
    return new_payments(entitled.select("customer_id", "reason", "amount", "rail"), ledger, policy, claimants)


def value_days(payments: pl.DataFrame, policy: Policy, run_date: date, released: dict[date, int]) -> dict:
    """The bank transfers among `payments` split as the disburse stage would
    (rules.batches.batches: daily_cash_cap per value date, counting `released`, the cash
    already scheduled per date). Returns payments, amount_krw, value_days and the first
    and last value date (ISO text, None when there is no transfer)."""
    bank = payments.filter(pl.col("rail") == BANK_TRANSFER).select("customer_id", "amount", "rail")
    if bank.height == 0:
        return {"payments": 0, "amount_krw": 0, "value_days": 0, "first_value_date": None, "last_value_date": None}
    days = batches(bank, policy, run_date, released=released)["value_date"]
    return {"payments": bank.height, "amount_krw": int(bank["amount"].sum()), "value_days": days.n_unique(),
            "first_value_date": days.min().isoformat(), "last_value_date": days.max().isoformat()}


def pro_rata(policy: Policy, passing_sum: int) -> dict:
    """The budget cap and the base sum it divides (KRW); factor = cap / sum when the cap
    binds (SPEC "Eligibility and entitlement"), else None."""
    binds = 0 < policy.total_cap < passing_sum
    return {"total_cap_krw": policy.total_cap, "base_sum_krw": int(passing_sum), "binds": binds,
            "factor": policy.total_cap / passing_sum if binds else None}


def paid_in_all(ledger: pl.LazyFrame, top_up_krw: int, policy: Policy) -> dict:
    """What the fund pays in all when switching to `policy`: the live ledger (issued and
    settled payments, never clawed back: SPEC "Ledger: paying exactly once, whatever
    the scope does") plus the top-up.
    Returns already_paid {"customers", "amount_krw"}, after_switching_krw, fund_cap_krw
    (0: no cap) and exceeds_fund_cap_krw (how far after_switching_krw is over the cap,
    0 when within it or there is no cap). KRW ints."""
    people, paid = ledger.filter(pl.col("status").is_in(LIVE_STATUSES)).select(
        pl.col("customer_id").n_unique(), pl.col("amount").sum()).collect().row(0)
    after = int(paid or 0) + top_up_krw
    cap = policy.total_cap
    return {"already_paid": {"customers": int(people), "amount_krw": int(paid or 0)}, "after_switching_krw": after,
            "fund_cap_krw": cap, "exceeds_fund_cap_krw": max(0, after - cap) if cap > 0 else 0}


def figures(entitled: pl.LazyFrame, passing_sum: int, in_force: pl.LazyFrame, ledger: pl.LazyFrame,
            claimants: pl.LazyFrame, policy: Policy, run_date: date, released: dict[date, int]) -> dict:
    """Every figure of one policy as a JSON-ready dict (KRW as ints).

    entitled: the policy's entitlements (rules.entitlements.entitlements_of's columns);
    passing_sum: their base sum passing rules 1-5; in_force: the warehouse's entitlements
    (customer_id, amount); ledger: customer_id, amount, status, rail, attempt; claimants:
    customer_id of each applied claim; released: bank cash already scheduled per date.
    """
    eligible = entitled.filter(pl.col("reason") == ELIGIBLE)
    sums = [pl.len().alias("customers"), pl.col("amount").sum().alias("amount_krw")]
    by_reason, by_tier, by_rail = pl.collect_all([
        entitled.group_by("reason").agg(*sums),
        eligible.group_by("tier").agg(*sums),
        eligible.group_by("rail").agg(*sums),
    ])
    paid_now = top_up(entitled, ledger, claimants, policy)
    top_up_krw = int(paid_now["amount"].sum() or 0)
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
        "bank_transfers": value_days(paid_now, policy, run_date, released),
        "versus_in_force": changes(entitled, in_force) | {
            "top_up": {"customers": paid_now.height, "amount_krw": top_up_krw},
        },
        "paid_in_all": paid_in_all(ledger, top_up_krw, policy),
    }
