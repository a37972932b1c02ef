"""What is owed now: SPEC "Ledger: paying exactly once, whatever the scope does".

owed = entitlement amount - the customer's issued and settled payments. A new payment
for owed when it reaches the minimum; nothing when 0 < owed < minimum (it stays owed);
an overpayment exception, never a clawback, when owed < 0 (`overpayments`: what of it
is still held on `claim`, never paid out, apart from what was paid out).

A claim (SPEC "Input: claims from customer service") cancels the person's held claim
payments, so they are owed again, and moves them to the bank rail, whatever the
customer master says later (the SPEC pays the claim's run by transfer to the claimed
account; it is silent on later top-ups, which go to the same account): the claimed
account is paid by transfer, attempt + 1. A claimed transfer returned `max_attempts` times
(counting only transfers issued since the latest cancellation: `bank_returns`) is held on
`claim` again.
"""

from __future__ import annotations

import polars as pl

from redress.policy import Policy
from redress.vocabulary import BANK_TRANSFER, CANCELLED, CLAIM, ELIGIBLE, ISSUED, LIVE_STATUSES, RETURNED, sql_list


# The order runs started in, for telling which payments a later one sent again: SQL over
# the warehouse's `runs` (ours). A run id alone does not say it: a catch-up run given a
# past --run-date has an earlier id than the runs before it.
RUN_ORDER = "SELECT run_id, row_number() OVER (ORDER BY started_at, run_id) AS seq FROM runs"

# The ledger as the rules read it (payment_history, plans.payment_kinds): SQL over the
# warehouse's `ledger` and `runs`, with issued_seq (the order of the run that issued the
# payment) and back_seq (of the run that applied its return or cancellation; NULL for a
# payment that did not come back).
LEDGER_SQL = f"""
WITH run_seq AS ({RUN_ORDER})
SELECT l.customer_id, l.amount, l.status, l.rail, l.attempt, i.seq AS issued_seq,
       CASE WHEN l.status IN ('{RETURNED}', '{CANCELLED}') THEN u.seq END AS back_seq
FROM ledger l LEFT JOIN run_seq i ON i.run_id = l.run_id LEFT JOIN run_seq u ON u.run_id = l.updated_run_id"""


def _with_run_order(ledger: pl.LazyFrame) -> pl.LazyFrame:
    """`ledger` with issued_seq and back_seq (LEDGER_SQL), null when it has none."""
    names = ledger.collect_schema().names()
    return ledger.with_columns(*(pl.lit(None, pl.Int64).alias(c) for c in ("issued_seq", "back_seq")
                                 if c not in names))


def pending(ledger: pl.LazyFrame) -> pl.LazyFrame:
    """The payments that came back (returned or cancelled) whose money no payment has
    sent again yet (customer_id, status, rail, attempt): those whose return or
    cancellation was applied after the last run that issued the person a payment. A run
    applies returns and claims before it pays, and what it pays is all that is owed, so a
    payment issued in that run or later sent that money again. Without the run order
    (issued_seq, back_seq: LEDGER_SQL; a hand-made ledger, or a run not in `runs`) the
    attempts stand for it: a payment that came back is pending while no payment of the
    person has a higher attempt. Found by review: a top-up after a chain of returns that
    then settled took the chain's attempt, and went to claim after one return."""
    ledger = _with_run_order(ledger)
    back = ledger.filter(pl.col("status").is_in((RETURNED, CANCELLED)))
    # only the few people with a payment that came back: no second group_by over every
    # row of a ledger the caller groups already (`_paid`)
    last = (ledger.join(back.select("customer_id").unique(), on="customer_id", how="semi")
            .group_by("customer_id").agg(pl.col("issued_seq").max().alias("_last_issue"),
                                         pl.col("attempt").max().alias("_last_attempt")))
    ordered = pl.col("back_seq").is_not_null() & pl.col("_last_issue").is_not_null()
    return (back.join(last, on="customer_id", how="left")
            .filter(pl.when(ordered).then(pl.col("back_seq") > pl.col("_last_issue"))
                    .otherwise(pl.col("attempt") >= pl.col("_last_attempt")))
            .select("customer_id", "status", "rail", "attempt"))


def _paid(ledger: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer: paid (issued + settled), came_back (the highest attempt among their
    `pending` payments, 0 when none: the next payment, which sends that money again, is
    attempt + 1, SPEC "Input: claims") and bank_returns (`bank_returns`, 0 when none).
    Attempts count sendings of the same money: a first payment and a top-up both
    returned came back once, not twice (found by review), and a top-up after money that
    came back was sent again starts at 1 (found by the next review). From the return
    that reaches max_attempts on (the next payment is held on claim) the person's money
    stays on claim until a claim cancels it."""
    status = pl.col("status")
    # Cancellations and returns are few: a plain sum over every row, then these few
    # joined, is what a group_by over tens of millions of rows does fastest.
    came_back = pending(ledger).group_by("customer_id").agg(pl.col("attempt").max().cast(pl.Int64).alias("came_back"))
    per_customer = ledger.group_by("customer_id").agg(
        pl.when(status.is_in(LIVE_STATUSES)).then(pl.col("amount")).otherwise(0).sum().alias("paid"))
    return (per_customer.join(came_back, on="customer_id", how="left")
            .join(bank_returns(ledger), on="customer_id", how="left")
            .with_columns(pl.col("came_back").fill_null(0), pl.col("bank_returns").fill_null(0)))


def bank_returns(ledger: pl.LazyFrame) -> pl.LazyFrame:
    """customer_id, bank_returns (Int64) of each customer with a bank transfer returned
    since their latest cancelled payment: how many times the money they are owed now came
    back by transfer (SPEC "Payout rail": a bank transfer returned max_attempts times goes
    to `claim`). That money is the chain of sendings that `pending` says came back, at
    attempts 1 to k (k: came_back); or, when nothing came back but money is held on
    `claim` (a live claim payment at attempt m), the chain held there, 1 to m - 1, so a
    top-up joins it until a claim. Counting only transfers issued in or after the run
    that applied the latest cancellation (the claim's run pays the claimed account), by
    the run order of LEDGER_SQL, or above the cancelled attempt without it, bank_returns
    is the smaller of two counts that the chain's own returns cannot exceed: the attempts
    at which a transfer came back (a chain sends once per attempt), and the runs that
    applied those returns (a chain's returns come back in runs one after another; a
    return without the run order is its own). Money of several payments that came back
    together and was sent again as one payment counts once either way: a first payment
    and a top-up returned at the same attempt, or a claimed transfer and a top-up sent
    beside it returned in the same run.

    Left as it is: a ledger holds no link from a payment to the one it sends again, so
    a chain is told by attempts and runs, and a return of an earlier chain at an attempt
    and run the chain owed now lacks can still count for it (a transfer returned, sent
    again and settled; then a top-up by voucher returned and sent again by transfer,
    returned once: two). Counting exactly needs each payment to carry its chain's
    returns, a ledger column.

    Found by review: the highest returned attempt counted a returned voucher as a bank
    return (a person with valid bank details held on claim after one transfer return),
    and a claimant's top-up (attempt 1 again) was measured against the cancelled attempt;
    then counting every returned attempt counted an earlier chain that had settled (a
    top-up returned once held on claim because an older transfer at attempt 2 had come
    back); then a claimant's claimed transfer and a top-up returned together counted
    twice.
    ledger: customer_id, status, rail, attempt, and issued_seq, back_seq when known.
    bank_returns_sql is this in SQL."""
    ledger = _with_run_order(ledger)
    status, attempt = pl.col("status"), pl.col("attempt")
    returned = ledger.filter((status == RETURNED) & (pl.col("rail") == BANK_TRANSFER))
    theirs = ledger.join(returned.select("customer_id").unique(), on="customer_id", how="semi")
    per = theirs.group_by("customer_id").agg(
        pl.col("back_seq").filter(status == CANCELLED).max().alias("_cancel_seq"),
        attempt.filter(status == CANCELLED).max().alias("_cancel_attempt"),
        attempt.filter(status.is_in(LIVE_STATUSES) & (pl.col("rail") == CLAIM)).max().alias("_held_attempt"))
    came_back = pending(theirs).group_by("customer_id").agg(attempt.max().alias("_came_back"))
    ordered = pl.col("_cancel_seq").is_not_null() & pl.col("issued_seq").is_not_null()
    chain = pl.max_horizontal(pl.col("_came_back").fill_null(0), pl.col("_held_attempt").fill_null(0) - 1)
    return (returned.join(per, on="customer_id", how="left").join(came_back, on="customer_id", how="left")
            .filter(pl.when(ordered).then(pl.col("issued_seq") >= pl.col("_cancel_seq"))
                    .otherwise(attempt > pl.col("_cancel_attempt").fill_null(0)))
            .filter(attempt <= chain)
            .group_by("customer_id").agg(pl.min_horizontal(
                attempt.n_unique(), pl.col("back_seq").fill_null(-attempt.cast(pl.Int64)).n_unique())
                .cast(pl.Int64).alias("bank_returns")))


def pending_sql(ledger: str) -> str:
    """SQL: customer_id, came_back (the highest attempt among their `pending` payments) of
    each customer with a payment that came back and was not sent again yet, as `pending`
    reads it, over the relation named `ledger` (a table or CTE of ours, never input:
    customer_id, status, attempt, issued_seq, back_seq; back_seq is read only on
    returned and cancelled payments). For the SQL that must not load a 33.7 M ledger."""
    return f"""
        SELECT t.customer_id, max(t.attempt) AS came_back
        FROM {ledger} t JOIN (SELECT customer_id, max(issued_seq) AS last_issue, max(attempt) AS last_attempt
                              FROM {ledger} GROUP BY ALL) p USING (customer_id)
        WHERE t.status IN ('{RETURNED}', '{CANCELLED}')
          AND CASE WHEN t.back_seq IS NOT NULL AND p.last_issue IS NOT NULL THEN t.back_seq > p.last_issue
                   ELSE t.attempt >= p.last_attempt END
        GROUP BY ALL"""


def bank_returns_sql(ledger: str) -> str:
    """SQL: customer_id, bank_returns as `bank_returns` counts them, over the relation
    named `ledger` (a table or CTE of ours, never input: customer_id, rail, status,
    attempt, issued_seq, back_seq: LEDGER_SQL's columns, every payment of each person it
    holds). For the SQL that must not load a 33.7 M ledger (the report's kinds, the
    reconciliation, explain); a property holds it equal to `bank_returns`."""
    return f"""
        WITH returned AS (SELECT * FROM {ledger} WHERE status = '{RETURNED}' AND rail = '{BANK_TRANSFER}'),
        theirs AS (SELECT * FROM {ledger} WHERE customer_id IN (SELECT customer_id FROM returned)),
        per AS (SELECT customer_id,
                       max(back_seq) FILTER (WHERE status = '{CANCELLED}') AS cancel_seq,
                       max(attempt) FILTER (WHERE status = '{CANCELLED}') AS cancel_attempt,
                       max(attempt) FILTER (WHERE status IN {sql_list(LIVE_STATUSES)} AND rail = '{CLAIM}') AS held_attempt
                FROM theirs GROUP BY ALL),
        came_back AS ({pending_sql("theirs")})
        SELECT r.customer_id, least(count(DISTINCT r.attempt), count(DISTINCT coalesce(r.back_seq, -r.attempt)))
                              AS bank_returns
        FROM returned r JOIN per p USING (customer_id) LEFT JOIN came_back c USING (customer_id)
        WHERE CASE WHEN p.cancel_seq IS NOT NULL AND r.issued_seq IS NOT NULL THEN r.issued_seq >= p.cancel_seq
                   ELSE r.attempt > coalesce(p.cancel_attempt, 0) END
          AND r.attempt <= greatest(coalesce(c.came_back, 0), coalesce(p.held_attempt, 0) - 1)
        GROUP BY r.customer_id"""


def payment_history(ledger: pl.LazyFrame, claimants: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Per customer with a ledger row or an applied claim: paid (issued + settled, KRW),
    came_back and bank_returns (`_paid`), and claimed (True when the person has an
    applied claim). ledger: customer_id, amount, status, rail, attempt, and the run
    order (issued_seq, back_seq: LEDGER_SQL; without it, see `pending`).
    What `owed_now` needs beside the entitlement."""
    claimed = (claimants if claimants is not None else pl.LazyFrame(schema={"customer_id": pl.String}))
    claimed = claimed.select("customer_id").unique().with_columns(pl.lit(True).alias("claimed"))
    return _paid(ledger).join(claimed, on="customer_id", how="full", coalesce=True)


def paying_rail(policy: Policy) -> pl.Expr:
    """The rail a person's next payment goes by (SPEC "Payout rail", "Input: claims"),
    over the master's `rail` and payment_history's `claimed` and `bank_returns` (null for
    a customer without history): a claimant is paid by transfer to the claimed account
    whatever the master's rail (the SPEC's claim's run, and every later payment), and a
    transfer returned `max_attempts` times since the latest claim is held on `claim`."""
    rail = (pl.when(pl.col("claimed").fill_null(False)).then(pl.lit(BANK_TRANSFER))
            .otherwise(pl.col("rail")))
    return (pl.when((rail == BANK_TRANSFER) & (pl.col("bank_returns").fill_null(0) >= policy.max_attempts))
            .then(pl.lit(CLAIM)).otherwise(rail))


def owed_now(entitled: pl.LazyFrame, policy: Policy, ids: tuple[str, ...] = ("customer_id",)) -> pl.LazyFrame:
    """`ids`, amount (what is owed now, KRW), rail (paying_rail) and attempt of every
    payment to issue now, in no particular order. entitled: `ids` (customer_id; a
    what-if's class of alike customers and how many: redress/whatif/compare.py), reason,
    amount, rail and payment_history's columns (null for a customer without history).
    See new_payments."""
    owed = entitled.filter(pl.col("reason") == ELIGIBLE).with_columns(
        (pl.col("amount") - pl.col("paid").fill_null(0)).alias("owed"),
        (pl.col("came_back").fill_null(0) + 1).cast(pl.Int32).alias("attempt"),
        paying_rail(policy).alias("rail"),
    )
    return (owed.filter(pl.col("owed") >= max(policy.minimum_amount, 1))
            .select(*ids, pl.col("owed").alias("amount"), "rail", "attempt"))


def payments_due(entitlements: pl.LazyFrame, ledger: pl.LazyFrame, policy: Policy,
                 claimants: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """customer_id, amount, rail, attempt for every payment to issue now, in no
    particular order: new_payments without collecting it (the disburse stage streams it
    to a file)."""
    entitled = entitlements.filter(pl.col("reason") == ELIGIBLE).join(
        payment_history(ledger, claimants), on="customer_id", how="left")
    return owed_now(entitled, policy)


def new_payments(entitlements: pl.LazyFrame, ledger: pl.LazyFrame, policy: Policy,
                 claimants: pl.LazyFrame | None = None) -> pl.DataFrame:
    """customer_id, amount, rail, attempt for every payment to issue now, by customer_id.

    ledger: customer_id, amount, status, rail, attempt. claimants: customer_id of every
    person with an applied claim (none when None). attempt is the highest attempt of
    this customer's returned and cancelled payments + 1; a claimant is paid by bank transfer (to the
    claimed account: the disburse stage), whatever the master's rail; a bank transfer
    returned max_attempts times (since the latest claim) is held as a claim instead.
    """
    return payments_due(entitlements, ledger, policy, claimants).collect().sort("customer_id")


def overpayments(entitlements: pl.LazyFrame, ledger: pl.LazyFrame) -> pl.DataFrame:
    """customer_id, entitled, paid, overpaid, held_above, paid_out_above for every
    customer paid (issued + settled) more than entitled, by customer_id.

    overpaid = paid - entitled is split by where the excess is (finance review: money
    held on `claim` above a lowered entitlement was reported as overpaid, though it never
    left the bank): held_above is the part still held on `claim` (issued there, not paid
    out), paid_out_above the rest, which went out (no clawback). Held money is the first
    to be in excess, since it has not left: held_above = min(held, overpaid). The SPEC's
    owed is unchanged (held money still counts as issued)."""
    held = (ledger.filter((pl.col("status") == ISSUED) & (pl.col("rail") == CLAIM))
            .group_by("customer_id").agg(pl.col("amount").sum().alias("held")))
    return (
        _paid(ledger)
        .join(entitlements.select("customer_id", "amount"), on="customer_id", how="left")
        .join(held, on="customer_id", how="left")
        .with_columns(pl.col("amount").fill_null(0).alias("entitled"))
        .with_columns((pl.col("paid") - pl.col("entitled")).alias("overpaid"))
        .filter(pl.col("overpaid") > 0)
        .with_columns(pl.min_horizontal(pl.col("held").fill_null(0), pl.col("overpaid")).alias("held_above"))
        .with_columns((pl.col("overpaid") - pl.col("held_above")).alias("paid_out_above"))
        .select("customer_id", "entitled", "paid", "overpaid", "held_above", "paid_out_above")
        .collect()
        .sort("customer_id")
    )
