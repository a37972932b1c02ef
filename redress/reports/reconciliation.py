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
overpaid    paid (issued + settled) above the current entitlement: exceptions, never
            clawed back

The per-date rows come from the ledger; outstanding and overpaid belong to customers,
not to a date, and are reported on a row of their own per rail (value_date empty).
The totals row equals the ledger's own sums (issued + settled + returned + held +
claimed + unclaimed), which the tests check.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from redress.reports.rendering import markdown_environment
from redress.rules.payments import bank_returns_sql
from redress.vocabulary import (BANK_TRANSFER, CANCELLED, CLAIM, ISSUED, LIVE_STATUSES, RETURNED, SETTLED, VOUCHER,
                                sql_list, sql_literal)

COLUMNS = ("rail", "value_date", "payments", "issued", "settled", "returned", "held", "claimed", "unclaimed",
           "outstanding", "overpaid")

PER_DATE = f"""
SELECT l.rail, b.value_date::VARCHAR AS value_date, count(*) AS payments,
       sum(l.amount) FILTER (l.status = {sql_literal(ISSUED)} AND l.rail <> {sql_literal(CLAIM)}) AS issued,
       sum(l.amount) FILTER (l.status = {sql_literal(SETTLED)}) AS settled,
       sum(l.amount) FILTER (l.status = {sql_literal(RETURNED)}) AS returned,
       sum(l.amount) FILTER (l.status = {sql_literal(ISSUED)} AND l.rail = {sql_literal(CLAIM)}
                             AND NOT $past_deadline) AS held,
       sum(l.amount) FILTER (l.status = {sql_literal(CANCELLED)}) AS claimed,
       sum(l.amount) FILTER (l.status = {sql_literal(ISSUED)} AND l.rail = {sql_literal(CLAIM)}
                             AND $past_deadline) AS unclaimed,
       0 AS outstanding, 0 AS overpaid
FROM ledger l JOIN batches b USING (batch_id)
GROUP BY ALL
"""

# Outstanding money under the rail it goes by, as redress/rules/payments.py `owed_now`
# sends it (a property holds the two equal): a claimant's by transfer to the claimed
# account whatever the master's rail; a transfer returned $max_attempts times since the
# latest cancelled payment holds it on claim.
PER_CUSTOMER = f"""
WITH paid AS (
    SELECT customer_id, sum(amount) FILTER (status IN {sql_list(LIVE_STATUSES)}) AS paid
    FROM ledger GROUP BY ALL),
returns AS ({bank_returns_sql("ledger")}),
moved AS (
    SELECT CASE WHEN customer_id IN (SELECT customer_id FROM claims) THEN {sql_literal(BANK_TRANSFER)}
                ELSE coalesce(e.rail, {sql_literal(VOUCHER)}) END AS rail,
           coalesce(r.bank_returns, 0) AS bank_returns,
           coalesce(e.amount, 0) - coalesce(p.paid, 0) AS owed
    FROM entitlements e FULL JOIN paid p USING (customer_id) LEFT JOIN returns r USING (customer_id)),
owed AS (
    SELECT CASE WHEN rail = {sql_literal(BANK_TRANSFER)} AND bank_returns >= $max_attempts
                THEN {sql_literal(CLAIM)} ELSE rail END AS rail, owed
    FROM moved)
SELECT rail, NULL AS value_date, 0 AS payments, 0 AS issued, 0 AS settled, 0 AS returned,
       0 AS held, 0 AS claimed, 0 AS unclaimed, sum(owed) FILTER (owed > 0) AS outstanding, sum(-owed) FILTER (owed < 0) AS overpaid
FROM owed GROUP BY ALL
HAVING sum(owed) FILTER (owed > 0) IS NOT NULL OR sum(-owed) FILTER (owed < 0) IS NOT NULL
"""


def reconciliation(con: duckdb.DuckDBPyConnection, run_date: date | None = None,
                   claim_deadline: date | None = None, *, max_attempts: int) -> pl.DataFrame:
    """Rows per rail and value date, then per rail for outstanding/overpaid, then TOTAL;
    amounts in minor units (COLUMNS). Held claim payments are `unclaimed` once
    `run_date` is after `claim_deadline` (the policy's payout.claim_deadline; None: no
    deadline, nothing is ever unclaimed). Outstanding money is under the rail it goes
    by (PER_CUSTOMER), with the policy's payout.max_attempts."""
    past = claim_deadline is not None and run_date is not None and run_date > claim_deadline
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


def markdown(frame: pl.DataFrame, currency: str) -> str:
    """reconciliation.md: the `reconciliation` frame (COLUMNS, its last row TOTAL) as a
    Markdown table under its title, amounts in whole units of `currency`, then what was
    paid out (issued + settled) apart from what is held on claim and not paid out; rendered from
    templates/reconciliation.md.j2, every cell escaped (redress/reports/rendering.py)."""
    total = frame.row(frame.height - 1, named=True) if frame.height else dict.fromkeys(COLUMNS, 0)
    return markdown_environment().get_template("reconciliation.md.j2").render(
        currency=currency, columns=COLUMNS, rows=list(frame.iter_rows()),
        paid_out=int(total["issued"] or 0) + int(total["settled"] or 0), total=total)
