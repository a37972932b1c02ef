"""A disbursement plan, as finance reads it before approving (SPEC "Approval before
release"), and the rule of which decisions a plan still takes.

Pure: frames and values in, plain values out; the disburse stage stores the summary
with the plan (`plans.summary`) and the reports render it (templates/plan.md.j2).
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from redress.vocabulary import APPROVED, BANK_TRANSFER, CLAIM, EXPIRED, LIVE_STATUSES, PLAN_STATES, WAITING

# What kind of payment each planned one is, in the order the plan lists them.
FIRST, TOP_UP, REISSUE = "first", "top_up", "reissue"
KINDS = {
    FIRST: "first payments",
    TOP_UP: "top-ups after a scope or policy revision",
    REISSUE: "reissues after a return",
    CLAIM: "held on the claim rail",
}


def payment_kinds(planned: pl.DataFrame, ledger: pl.DataFrame) -> pl.Series:
    """The kind of each planned payment (rows of `planned`: customer_id, rail, attempt),
    in its row order: `claim` on the claim rail, else `reissue` for a later attempt,
    else `top_up` when the customer already holds a live payment in `ledger`
    (customer_id, status), else `first`."""
    paid = ledger.filter(pl.col("status").is_in(LIVE_STATUSES)).select("customer_id").unique()
    flagged = planned.select("customer_id", "rail", "attempt").with_columns(
        pl.col("customer_id").is_in(paid["customer_id"].implode()).alias("paid_before"))
    return flagged.select(
        pl.when(pl.col("rail") == CLAIM).then(pl.lit(CLAIM))
        .when(pl.col("attempt") > 1).then(pl.lit(REISSUE))
        .when(pl.col("paid_before")).then(pl.lit(TOP_UP))
        .otherwise(pl.lit(FIRST)).alias("kind")
    )["kind"]


def plan_summary(planned: pl.DataFrame, kinds: pl.Series, released: dict[date, int], daily_cash_cap: int) -> dict:
    """The plan in plain JSON values: `totals` (batches, payments, amount_krw), `days`
    (per rail and value date: batches, payments, amount_krw; for bank transfers also the
    cash already released that day, the cap and what the cap leaves after this plan),
    and `kinds` (payments and amount_krw per kind of KINDS, every kind listed). Money in
    whole won. `planned`: the planned payments (batch_id, rail, value_date, amount)."""
    days = []
    per_day = (planned.group_by("rail", "value_date")
               .agg(pl.col("batch_id").n_unique().alias("batches"), pl.len().alias("payments"),
                    pl.col("amount").sum().alias("amount_krw"))
               .sort("value_date", "rail"))
    for row in per_day.to_dicts():
        day = {"rail": row["rail"], "value_date": row["value_date"].isoformat(), "batches": row["batches"],
               "payments": row["payments"], "amount_krw": int(row["amount_krw"])}
        if row["rail"] == BANK_TRANSFER:
            before = int(released.get(row["value_date"], 0))
            day.update(released_before_krw=before, daily_cash_cap_krw=daily_cash_cap,
                       cap_left_krw=daily_cash_cap - before - day["amount_krw"])
        days.append(day)
    by_kind = pl.DataFrame({"kind": kinds, "amount": planned["amount"]}).group_by("kind").agg(
        pl.len().alias("payments"), pl.col("amount").sum().alias("amount_krw"))
    found = {r["kind"]: r for r in by_kind.to_dicts()}
    return {
        "totals": {"batches": planned["batch_id"].n_unique(), "payments": planned.height,
                   "amount_krw": int(planned["amount"].sum() or 0)},
        "days": days,
        "kinds": {k: {"payments": found.get(k, {}).get("payments", 0),
                      "amount_krw": int(found.get(k, {}).get("amount_krw", 0) or 0)} for k in KINDS},
    }


def refusal(run_id: str, state: str | None, expires_at: datetime | None, now: datetime, decision: str) -> str | None:
    """Why plan `run_id` (its `state`, None when there is no plan) cannot take
    `decision` (approved or rejected) at `now`, as one line; None when it can. Only a
    waiting plan that has not expired can be decided; a waiting plan past `expires_at`
    is refused as expired (the caller records it)."""
    verb = "approve" if decision == APPROVED else "reject"
    if state is None:
        return f"run {run_id} has no disbursement plan: nothing to {verb}"
    if state == WAITING and expires_at is not None and now >= expires_at:
        state = EXPIRED
    if state != WAITING:
        return f"cannot {verb} the plan of run {run_id}: it is {state} ({PLAN_STATES[state]})"
    return None
