"""Finance's reconciliation: per rail and value date, every won of the ledger accounted
for (issue 4, "Finance's view"; issue 12: claims).

issued      payments sent and not yet answered by the bank or voucher system (never a
            payment held on `claim`: that money has not been paid out)
settled     payments confirmed
returned    payments that came back (reissued as a new payment on a later run)
held        payments held on `claim`, waiting for the person to claim them, by the
            date they were first held (the batch's value date)
claimed     held payments that a claim replaced (`cancelled`): paid again by bank
            transfer, which shows on the bank rail
unclaimed   after payout.claim_deadline (the run date past it), what is still held:
            never paid automatically, for finance to decide (SPEC "Input: claims")
outstanding what is still owed to eligible customers and not yet in any payment
            (0 < owed < minimum, or an entitlement raised after the last run)
overpaid    paid out (issued + settled off the `claim` rail) above the current
            entitlement: exceptions, never clawed back
held_above_entitlement
            money held on `claim` (issued, never paid out) above the current
            entitlement, e.g. after a policy change lowered it (finance review: it was
            reported as overpaid though nothing left the bank). It still counts as
            issued for what is owed (SPEC "Ledger"); listed on the `claim` row.

A person's excess (issued + settled - entitlement, when above 0) is split with the held
money first: held money is the first to be in excess, since it has not left; only what
remains beyond it was paid out. So held_above_entitlement = min(held, excess) and
overpaid = excess - that, and for every customer and in all:
entitled = issued + settled + held + unclaimed + outstanding - overpaid - held_above_entitlement.

The per-date rows come from the ledger; outstanding, overpaid and held above the
entitlement belong to customers, not to a date, and are reported on a row of their own
per rail (value_date empty).
The totals row equals the ledger's own sums (issued + settled + returned + held +
claimed + unclaimed), which the tests check.

Beside each money column its count (finance review: the SPEC lists unclaimed money
"with their count and amount", and `payments` alone mixed claimed with unclaimed): the
ledger columns count payments (`held_payments`, `unclaimed_payments`, ...; per row they
add up to `payments`), outstanding, overpaid and held above the entitlement count
customers (`outstanding_people`, `overpaid_people`, `held_above_entitlement_people`:
they belong to people, not payments). Every count adds up across
rows, so the TOTAL row is their sum.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from redress.reports.rendering import markdown_environment
from redress.rules.fund_cap import fund_cap
from redress.rules.payments import LEDGER_SQL, bank_returns_sql
from redress.rules.plans import past_claim_deadline
from redress.vocabulary import (BANK_TRANSFER, CANCELLED, CLAIM, ISSUED, LIVE_STATUSES, RETURNED, SETTLED, VOUCHER,
                                sql_list, sql_literal)

# The money columns in order, each with the column counting it (payments or people).
MONEY = (("issued", "issued_payments"), ("settled", "settled_payments"), ("returned", "returned_payments"),
         ("held", "held_payments"), ("claimed", "claimed_payments"), ("unclaimed", "unclaimed_payments"),
         ("outstanding", "outstanding_people"), ("overpaid", "overpaid_people"),
         ("held_above_entitlement", "held_above_entitlement_people"))
COLUMNS = ("rail", "value_date", "payments", *(c for money, count in MONEY for c in (count, money)))

# A ledger row's reconciliation status: the columns above it counts under. An issued
# payment on `claim` is held, or unclaimed once the deadline has passed.
STATUS = f"""
CASE WHEN l.status = {sql_literal(ISSUED)} AND l.rail = {sql_literal(CLAIM)}
          THEN CASE WHEN $past_deadline THEN 'unclaimed' ELSE 'held' END
     WHEN l.status = {sql_literal(ISSUED)} THEN 'issued'
     WHEN l.status = {sql_literal(SETTLED)} THEN 'settled'
     WHEN l.status = {sql_literal(RETURNED)} THEN 'returned'
     WHEN l.status = {sql_literal(CANCELLED)} THEN 'claimed' END"""

PER_DATE = f"""
SELECT rail, value_date, count(*) AS payments,
       {", ".join(f"count(*) FILTER (status = '{m}') AS {n}, sum(amount) FILTER (status = '{m}') AS {m}"
                  for m, n in MONEY[:6])},
       0 AS outstanding_people, 0 AS outstanding, 0 AS overpaid_people, 0 AS overpaid,
       0 AS held_above_entitlement_people, 0 AS held_above_entitlement
FROM (SELECT l.rail, b.value_date::VARCHAR AS value_date, l.amount, {STATUS} AS status
      FROM ledger l JOIN batches b USING (batch_id))
GROUP BY ALL
"""

# Outstanding money under the rail it goes by, as redress/rules/payments.py `owed_now`
# sends it (a property holds the two equal): a claimant's by transfer to the claimed
# account whatever the master's rail; a transfer returned $max_attempts times since the
# latest cancelled payment holds it on claim.
PER_CUSTOMER = f"""
WITH paid AS (
    SELECT customer_id, sum(amount) FILTER (status IN {sql_list(LIVE_STATUSES)}) AS paid,
           sum(amount) FILTER (status = {sql_literal(ISSUED)} AND rail = {sql_literal(CLAIM)}) AS held
    FROM ledger GROUP BY ALL),
ordered_ledger AS ({LEDGER_SQL}),  -- bank_returns_sql reads only the people with a returned transfer
returns AS ({bank_returns_sql("ordered_ledger")}),
moved AS (
    SELECT CASE WHEN customer_id IN (SELECT customer_id FROM claims) THEN {sql_literal(BANK_TRANSFER)}
                ELSE coalesce(e.rail, {sql_literal(VOUCHER)}) END AS rail,
           coalesce(r.bank_returns, 0) AS bank_returns,
           coalesce(e.amount, 0) - coalesce(p.paid, 0) AS owed, coalesce(p.held, 0) AS held
    FROM entitlements e FULL JOIN paid p USING (customer_id) LEFT JOIN returns r USING (customer_id)),
owed AS (
    SELECT CASE WHEN rail = {sql_literal(BANK_TRANSFER)} AND bank_returns >= $max_attempts
                THEN {sql_literal(CLAIM)} ELSE rail END AS rail, owed,
           least(greatest(-owed, 0), held) AS held_above
    FROM moved),
parts AS (  -- the excess held on claim first (it has not left), on the claim row
    SELECT rail, owed, greatest(-owed, 0) - held_above AS paid_above, 0 AS held_above FROM owed
    UNION ALL
    SELECT {sql_literal(CLAIM)}, 0, 0, held_above FROM owed WHERE held_above > 0)
SELECT rail, NULL AS value_date, 0 AS payments,
       {", ".join(f"0 AS {n}, 0 AS {m}" for m, n in MONEY[:6])},
       count(*) FILTER (owed > 0) AS outstanding_people, sum(owed) FILTER (owed > 0) AS outstanding,
       count(*) FILTER (paid_above > 0) AS overpaid_people, sum(paid_above) FILTER (paid_above > 0) AS overpaid,
       count(*) FILTER (held_above > 0) AS held_above_entitlement_people,
       sum(held_above) FILTER (held_above > 0) AS held_above_entitlement
FROM parts GROUP BY ALL
HAVING count(*) FILTER (owed > 0 OR paid_above > 0 OR held_above > 0) > 0
"""


def reconciliation(con: duckdb.DuckDBPyConnection, run_date: date | None = None,
                   claim_deadline: date | None = None, *, max_attempts: int) -> pl.DataFrame:
    """Rows per rail and value date, then per rail for outstanding/overpaid/held above
    the entitlement, then TOTAL;
    amounts in minor units (COLUMNS). Held claim payments are `unclaimed` once
    `run_date` is after `claim_deadline` (the policy's payout.claim_deadline; None: no
    deadline, nothing is ever unclaimed). Outstanding money is under the rail it goes
    by (PER_CUSTOMER), with the policy's payout.max_attempts."""
    past = past_claim_deadline(run_date, claim_deadline)
    frame = con.sql(f"""
        SELECT rail, value_date, payments, {", ".join(f"coalesce({c}, 0) AS {c}" for c in COLUMNS[3:])}
        FROM (({PER_DATE}) UNION ALL ({PER_CUSTOMER}))
        ORDER BY rail, value_date NULLS LAST
    """, params={"past_deadline": past, "max_attempts": max_attempts}).pl()
    frame = frame.cast({c: pl.Int64 for c in COLUMNS[2:]})
    total = frame.select(
        pl.lit("TOTAL").alias("rail"), pl.lit(None, pl.String).alias("value_date"),
        *(pl.col(c).sum() for c in COLUMNS[2:]),
    )
    return pl.concat([frame.select(COLUMNS), total.select(COLUMNS)])


def live_krw(total: dict) -> int:
    """What the ledger holds as issued or settled, held claim money included (it is
    owed: SPEC "Ledger"), from the reconciliation's TOTAL row: the fund cap's paid in all."""
    return sum(int(total[c] or 0) for c in ("issued", "settled", "held", "unclaimed"))


def markdown(frame: pl.DataFrame, currency: str, total_cap: int = 0) -> str:
    """reconciliation.md: the `reconciliation` frame (COLUMNS, its last row TOTAL) as a
    Markdown table under its title, amounts in whole units of `currency`, then what was
    paid out (issued + settled) apart from what is held on claim, unclaimed and claimed,
    each as payments and amount, what is above the entitlement (overpaid, paid out,
    apart from held above it) and, under a fund cap (`total_cap`, the policy's
    budget.total_cap; 0: none, no line), the whole ledger against it
    (redress/rules/fund_cap.py); rendered from templates/reconciliation.md.j2, every
    cell escaped (redress/reports/rendering.py)."""
    total = frame.row(frame.height - 1, named=True) if frame.height else dict.fromkeys(COLUMNS, 0)
    fund = fund_cap(live_krw(total), total_cap, "the whole ledger")
    return markdown_environment().get_template("reconciliation.md.j2").render(
        currency=currency, columns=COLUMNS, rows=list(frame.iter_rows()), total=total,
        paid_out=int(total["issued"] or 0) + int(total["settled"] or 0),
        paid_out_payments=int(total["issued_payments"] or 0) + int(total["settled_payments"] or 0),
        fund=fund.lines() if fund else [])
