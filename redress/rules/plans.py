"""A disbursement plan, as finance reads it before approving (SPEC "Approval before
release"), and the rule of which decisions a plan still takes.

Pure: frames and values in, plain values out; the disburse stage stores the summary
with the plan (`plans.summary`) and the reports render it (templates/plan.md.j2).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from redress.policy.tables import YEARS
from redress.rules.payments import bank_returns, pending
from redress.vocabulary import (APPROVED, BANK_TRANSFER, CLAIM, EXPIRED, LIVE_STATUSES, PLAN_STATES, REJECTED,
                                WAITING)

# What kind of payment each planned one is, in the order the plan lists them.
FIRST, TOP_UP, REISSUE, CLAIMED = "first", "top_up", "reissue", "claimed"
KINDS = {
    FIRST: "first payments",
    TOP_UP: "top-ups after a scope or policy revision",
    REISSUE: "reissues after a return",
    CLAIMED: "claims paid: transfers to an account the person gave customer service",
    CLAIM: "held on the claim rail",
}


def past_claim_deadline(run_date: date | None, claim_deadline: date | None) -> bool:
    """True when money still held on `claim` is unclaimed: the run date is after the
    policy's payout.claim_deadline (None: no deadline, never). SPEC "Input: claims from
    customer service". The reconciliation, the plan's labels and the notifications' text
    all read it here."""
    return claim_deadline is not None and run_date is not None and run_date > claim_deadline


def kind_labels(past_claim_deadline: bool) -> dict[str, str]:
    """KINDS as the reports label them: past payout.claim_deadline, money put on claim
    cannot be claimed any more, so it is unclaimed, not held (SPEC "Input: claims")."""
    return {**KINDS, CLAIM: "unclaimed on the claim rail (the claim deadline has passed)"} if past_claim_deadline else KINDS


def payment_kinds(planned: pl.LazyFrame, ledger: pl.LazyFrame, claimants: pl.LazyFrame) -> pl.LazyFrame:
    """`planned` (customer_id, rail, ...) with `kind`, each row's kind of payment, rows in
    their order (SPEC "Approval before release": top-ups, reissues, claims), from the
    `ledger` before it (customer_id, rail, status, attempt) and the `claimants`
    (customer_id of every person with an applied claim), the first that holds:
    `claim` on the claim rail (held); when money of theirs came back and is not yet sent
    again (rules.payments.pending), `claimed` for a claimant whose money the claim freed (no bank
    transfer returned since their latest cancelled claim payment, payments.bank_returns: the transfer to the
    account they gave customer service, in the run that applied the claim or the next
    plan after one rejected), else `reissue`; `top_up` when the person holds a live
    payment (more money to someone paid, after a scope or policy revision); else `first`.
    A reissue or a claim's transfer that also carries a top-up of the same run is one
    payment, counted by its first kind."""
    status = pl.col("status")
    latest = ledger.group_by("customer_id").agg(status.is_in(LIVE_STATUSES).any().alias("_live")).join(
        pending(ledger).select("customer_id").unique().with_columns(pl.lit(True).alias("_came_back")),
        on="customer_id", how="full", coalesce=True)
    sent_since = bank_returns(ledger).select("customer_id", pl.lit(True).alias("_sent_since"))
    claimed = claimants.select("customer_id").unique().with_columns(pl.lit(True).alias("_claimant"))
    flags = ("_came_back", "_live", "_sent_since", "_claimant")
    joined = planned
    for frame in (latest, sent_since, claimed):
        joined = joined.join(frame, on="customer_id", how="left", maintain_order="left")
    flag = {f: pl.col(f).fill_null(False) for f in flags}
    return joined.with_columns(
        pl.when(pl.col("rail") == CLAIM).then(pl.lit(CLAIM))
        .when(flag["_came_back"] & flag["_claimant"] & ~flag["_sent_since"]).then(pl.lit(CLAIMED))
        .when(flag["_came_back"]).then(pl.lit(REISSUE))
        .when(flag["_live"]).then(pl.lit(TOP_UP))
        .otherwise(pl.lit(FIRST)).alias("kind")).drop(*flags)


def plan_summary(planned: pl.LazyFrame, released: dict[date, int], daily_cash_cap: int,
                 sharing: pl.DataFrame | None = None) -> dict:
    """The plan in plain JSON values: `totals` (batches, payments, amount_krw), `days`
    (per rail and value date: batches, payments, amount_krw; for bank transfers also the
    cash already released that day, the cap and what the cap leaves after this plan),
    `kinds` (payments and amount_krw per kind of KINDS, every kind listed) and
    `shared_claim_accounts` (payments and amount_krw of the plan's bank transfers to
    `sharing`: the customer_id of each claimant whose latest claim names a bank account
    another's also names, redress/warehouse/claims.py shared_accounts_sql; none when
    None or empty: then the plan, 30 M payments at 33.7 M customers, is not read for it).
    Money in whole won. `planned`: the planned payments (customer_id, batch_id, rail,
    value_date, amount and payment_kinds' `kind`)."""
    shared = pl.LazyFrame({"payments": [0], "amount_krw": [0]})
    if sharing is not None and sharing.height:
        shared = planned.filter(pl.col("rail") == BANK_TRANSFER).join(
            sharing.lazy().select("customer_id").unique(), on="customer_id", how="semi").select(
            pl.len().alias("payments"), pl.col("amount").sum().alias("amount_krw"))
    per_day, by_kind, totals, shared = pl.collect_all([
        planned.group_by("rail", "value_date").agg(
            pl.col("batch_id").n_unique().alias("batches"), pl.len().alias("payments"),
            pl.col("amount").sum().alias("amount_krw")).sort("value_date", "rail"),
        planned.group_by("kind").agg(pl.len().alias("payments"), pl.col("amount").sum().alias("amount_krw")),
        planned.select(pl.col("batch_id").n_unique().alias("batches"), pl.len().alias("payments"),
                       pl.col("amount").sum().alias("amount_krw")),
        shared,
    ])
    days = []
    for row in per_day.to_dicts():
        day = {"rail": row["rail"], "value_date": row["value_date"].isoformat(), "batches": row["batches"],
               "payments": row["payments"], "amount_krw": int(row["amount_krw"])}
        if row["rail"] == BANK_TRANSFER:
            before = int(released.get(row["value_date"], 0))
            day.update(released_before_krw=before, daily_cash_cap_krw=daily_cash_cap,
                       cap_left_krw=daily_cash_cap - before - day["amount_krw"])
        days.append(day)
    found = {r["kind"]: r for r in by_kind.to_dicts()}
    return {
        "totals": {"batches": int(totals["batches"][0]), "payments": int(totals["payments"][0]),
                   "amount_krw": int(totals["amount_krw"][0] or 0)},
        "days": days,
        "kinds": {k: {"payments": found.get(k, {}).get("payments", 0),
                      "amount_krw": int(found.get(k, {}).get("amount_krw", 0) or 0)} for k in KINDS},
        "shared_claim_accounts": {"payments": int(shared["payments"][0]),
                                  "amount_krw": int(shared["amount_krw"][0] or 0)},
    }


def bank_days_from(run_date: date, started_on: date, today: date) -> date | None:
    """The earliest value date a run's bank transfers may take, beside its run date and the
    policy's first_value_date (redress/rules/batches.py): `today` (where the policy pays)
    for a run dated the day it started or later, so that one started before midnight and
    planned after it dates its files from the new day (found by the time review: a run
    started at 23:50 without approval released files dated the day before, which a bank
    refuses or moves to a day whose cash cap never counted them); None for a catch-up
    (`run_date` before `started_on`, the day the run started), which plans for its date
    (SPEC "Disbursement batches": value dates start at the run date;
    `dated_before_today` says what of it a bank will not take as dated)."""
    return None if run_date < started_on else today


def dated_in_the_past(run_id: str, run_date: date, started_on: date, today: date, first_bank_day: date | None,
                      timezone: str, *, approving: bool = True) -> str | None:
    """Why plan `run_id` may not be approved (or, `approving` False, released by its own
    run) `today` (the policy's `timezone`), as one line; None when it may. A plan of a run
    dated the day it started or later (not a catch-up: `bank_days_from`; the start, not
    the planning, which a long run may do after midnight: found by the next review) whose
    first bank value date is before today would release bank files dated in the past,
    which a bank refuses or moves (and the cash cap of the day they move to does not
    count them). Found by review: a plan made in the evening and approved next morning;
    and by the time review, a run dated tomorrow approved two days later. A run given a
    past --run-date on purpose (a catch-up) plans for that date and is not refused."""
    if first_bank_day is None or run_date < started_on or first_bank_day >= today:
        return None
    if approving:
        return (f"cannot approve the plan of run {run_id} today: its bank transfers are dated from "
                f"{first_bank_day.isoformat()}, and today is {today.isoformat()} in {timezone}; "
                "a bank refuses or moves a file dated in the past: reject it and run again to plan afresh")
    return (f"cannot release the plan of run {run_id}: its bank transfers are dated from {first_bank_day.isoformat()}, "
            f"and today is {today.isoformat()} in {timezone} (midnight passed while it was checked); a bank refuses "
            "or moves a file dated in the past, so nothing of it is issued: run again to plan afresh")


def dated_before_today(planned_batches: pl.DataFrame, today: date) -> dict:
    """What of a plan's bank transfers is dated before `today` (where the policy pays), as a
    catch-up run dates them (SPEC: value dates start at the run date): payments,
    amount_krw (whole won), first and last (value dates, ISO text; None without any) and
    today (ISO text). A bank refuses such a file or moves it to a later day, whose daily
    cash cap never counted it (found by the time review: a catch-up of four days put four
    caps on one day, with nothing said). `planned_batches`: batch_summary's rows (rail,
    value_date, item_count, control_sum)."""
    past = planned_batches.filter((pl.col("rail") == BANK_TRANSFER) & (pl.col("value_date") < today))
    return {"payments": int(past["item_count"].sum() or 0), "amount_krw": int(past["control_sum"].sum() or 0),
            "first": past["value_date"].min().isoformat() if past.height else None,
            "last": past["value_date"].max().isoformat() if past.height else None,
            "today": today.isoformat()}


# How far ahead of today (where the policy pays) a run may be dated: tomorrow, for the
# files of a run made the evening before; no further.
RUN_DATE_AHEAD = timedelta(days=1)


def run_date_refusal(run_date: date, latest: tuple[str, date] | None, today: date, timezone: str) -> str | None:
    """Why a run may not be dated `run_date`, as one line; None when it may. `latest`:
    the run id and date of the latest-dated run the warehouse records (any outcome),
    None for the first run; `today`: today in the policy's `timezone`. Runs go forward in
    time: a run dated before one already made would plan reissues and top-ups dated
    before the payments they follow, and its claim deadline and reconciliation would
    read the ledger as of a day it had already passed (found by review: `--run-date
    2025-12-01` typed after a run of 2025-12-05 was accepted). A date more than
    RUN_DATE_AHEAD after today is refused too: it is a typo (2026 for 2025), and every
    later run would otherwise be refused until that day. The same date as the latest
    run's, or a past date with no later run (a catch-up), is accepted."""
    # "run date", not "--run-date": a run given none is dated today (found by review).
    if run_date > today + RUN_DATE_AHEAD:
        return (f"run date {run_date.isoformat()} is after tomorrow ({(today + RUN_DATE_AHEAD).isoformat()} in "
                f"{timezone}): a run is dated the day it pays, at most a day ahead")
    return switch_date_refusal(run_date, latest)


def switch_date_refusal(run_date: date, latest: tuple[str, date] | None) -> str | None:
    """Why no run could ever be dated `run_date`, as one line; None when one could (any
    day ahead: `redress whatif` prices a switch on a later day). `latest` as for
    `run_date_refusal`. Refused: a year outside the policies' YEARS, and a day before
    the latest run's (found by review: `whatif --run-date 0001-01-01` and `9999-12-31`
    were priced, dates no run may take)."""
    if not YEARS[0] <= run_date.year <= YEARS[1]:  # found by review: `0001-01-01` ran, a batch check failed
        return (f"run date {run_date.isoformat()} is not in the years {YEARS[0]} to {YEARS[1]}: a run is dated "
                f"the day it pays (a catch-up of a missed day takes that day)")
    if latest is not None and run_date < latest[1]:
        return (f"run date {run_date.isoformat()} is before {latest[1].isoformat()}, the date of run {latest[0]}: "
                f"runs go forward in time (--run-date {latest[1].isoformat()} or later)")
    return None


def refusal(run_id: str, state: str | None, expires_at: datetime | None, now: datetime, decision: str,
            completed: bool = True) -> str | None:
    """Why plan `run_id` (its `state`, None when there is no plan) cannot take
    `decision` (approved or rejected) at `now`, as one line; None when it can. Only a
    waiting plan that has not expired can be decided; a waiting plan past `expires_at`
    is refused as expired (the caller records it). An approved or rejected plan whose
    decision did not finish (`completed` False: plans.completed_at unset) is refused
    with the way to finish it: that decision, given again."""
    verb = "approve" if decision == APPROVED else "reject"
    if state is None:
        return f"run {run_id} has no disbursement plan: nothing to {verb}"
    if state == WAITING and expires_at is not None and now >= expires_at:
        state = EXPIRED
    if state == WAITING:
        return None
    why = f"cannot {verb} the plan of run {run_id}: it is {state} ({PLAN_STATES[state]})"
    if not completed and state in (APPROVED, REJECTED):
        why += f"; that decision did not finish: `{'approve' if state == APPROVED else 'reject'}` it again to finish it"
    return why
