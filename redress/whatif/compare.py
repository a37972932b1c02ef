"""Every candidate policy priced over one warehouse, classifying each exposure once.

Tens of millions of exposures are far more than the distinct things the policies ask of
them: rules 2 and 3 read an exposure's category, its confidence and which side of each
candidate's window edges its time lies on (rules.entitlements.window_edges). DuckDB
groups the exposures by that signature (a few dozen), and then every exposed customer by
the set of signatures they have, as a bit mask (one bit per signature), joined with the
customer fields and the entitlement in force: one row per exposed customer, in DuckDB,
which spills to disk rather than fail. The rules themselves run in Polars on one
representative exposure per signature (rules.entitlements.signature_sets); each policy is
then priced over the masks by the entitle stage's own rule (rules.entitlements.decided),
with the payment history (rules.payments.payment_history) joined once. Figures in
redress/whatif/figures.py. Reads only.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from redress.policy import Policy
from redress.rules.entitlements import (decided, passing_base_sum, signature_sets, summary_from_signatures,
                                        window_edges)
from redress.rules.payments import payment_history
from redress.warehouse import memory_limit
from redress.whatif.figures import already_paid, figures, in_force_counts

# What `figures` reads of a priced frame: the decision and the payment history.
_PRICED = ("customer_id", "reason", "tier", "amount", "rail", "in_force", "paid", "returns", "bank_returns",
           "claimed")

# Every exposure: the warehouse's (evidence under every policy, only_for = -1) and the
# candidates' own (rows a candidate's row rules would accept: only_for = its position).
_EXPOSURES = """
    SELECT customer_id, data_category, confidence, accessed_at, -1::BIGINT AS only_for FROM scope_exposures
    UNION ALL
    SELECT customer_id, data_category, confidence, accessed_at, only_for FROM whatif_extra_exposures"""

RELEASED_MEMORY = "256MB"
EXTRA_SCHEMA = {"customer_id": pl.String, "data_category": pl.String, "confidence": pl.String,
                "accessed_at": pl.Datetime("us", "UTC"), "only_for": pl.Int64}


def _side(starts: list, ends: list) -> str:
    """SQL: the number of window edges an exposure's accessed_at has passed (t >= start,
    t > end). Every edge is a step that turns on once, so the count tells the sides of
    all of them. Edges are bound parameters $s0.., $e0.."""
    terms = [f"(accessed_at >= $s{i})::INTEGER" for i in range(len(starts))]
    terms += [f"(accessed_at > $e{i})::INTEGER" for i in range(len(ends))]
    return " + ".join(terms) or "0"


def _masks(words: int) -> str:
    return ", ".join(f"bit_or(CASE WHEN s.sig // 64 = {w} THEN 1::UBIGINT << (s.sig % 64)::UBIGINT "
                     f"ELSE 0::UBIGINT END) AS mask{w}" for w in range(words))


def exposed_customers(con: duckdb.DuckDBPyConnection, policies: list[Policy],
                      extra: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(signatures, one row per exposed customer, mask words) over `con`'s tables
    scope_exposures, customers and entitlements and the `extra` exposures (EXTRA_SCHEMA).
    signatures: sig, data_category, confidence, accessed_at (the earliest of the
    signature), only_for. Per customer: customer_id, mask0.., the customer fields the
    rules read (status, closed_at in UTC, is_test, payout_method, bank_valid) and
    in_force (the entitlement in force, KRW; null when none)."""
    starts, ends = window_edges(policies)
    edges = {f"s{i}": t for i, t in enumerate(starts)} | {f"e{i}": t for i, t in enumerate(ends)}
    side = _side(starts, ends)
    con.register("whatif_extra_exposures", extra)
    try:
        found = con.sql(f"""
            SELECT data_category, confidence, {side} AS side, only_for, min(accessed_at) AS accessed_at
            FROM ({_EXPOSURES}) GROUP BY ALL""", params=edges).pl()
        # numbered in a fixed order, so the same warehouse gives the same masks
        signatures = found.sort("data_category", "confidence", "side", "only_for").with_row_index("sig").with_columns(
            pl.col("sig").cast(pl.Int64), pl.col("accessed_at").dt.convert_time_zone("UTC"))
        words = max(1, -(-signatures.height // 64))
        con.register("whatif_signatures", signatures.select("sig", "data_category", "confidence", "side", "only_for"))
        per_customer = con.sql(f"""
            SELECT g.*, c.status, c.closed_at, c.is_test, c.payout_method, c.bank_valid, f.amount AS in_force
            FROM (SELECT e.customer_id, {_masks(words)}
                  FROM (SELECT *, {side} AS side FROM ({_EXPOSURES})) e
                  JOIN whatif_signatures s USING (data_category, confidence, side, only_for)
                  GROUP BY e.customer_id) g
            LEFT JOIN customers c USING (customer_id)
            LEFT JOIN entitlements f USING (customer_id)""", params=edges).pl(lazy=True).collect()
    finally:
        for name in ("whatif_extra_exposures", "whatif_signatures"):
            con.unregister(name)
    # status and payout method take a handful of values: 4 bytes a row, not 16
    return signatures, per_customer.with_columns(pl.col("closed_at").dt.convert_time_zone("UTC"),
                                                 pl.col("status", "payout_method").cast(pl.Categorical)), words


def compare(con: duckdb.DuckDBPyConnection, policies: list[Policy], run_date: date, released: dict[date, int],
            claimants: pl.LazyFrame, extra: list[pl.DataFrame] | None = None) -> list[dict]:
    """The figures (redress/whatif/figures.py) of each policy, in the order given, over
    `con`'s scope_exposures, customers, entitlements and ledger (the evidence, the
    master, what is in force, what is paid), the applied claims' customer_id and the
    bank cash released per date. extra[n]: exposures that only policy n's own row rules
    accept (customer_id, data_category, confidence, accessed_at), counted under it
    alone (figure `exposures_from_quarantine`).

    Raises ValueError when an exposed customer is not in the customer master."""
    extra = extra or [pl.DataFrame(schema=EXTRA_SCHEMA)] * len(policies)
    rows = pl.concat([e.select(*(c for c in EXTRA_SCHEMA if c != "only_for")).with_columns(pl.lit(n).alias("only_for"))
                      .cast(EXTRA_SCHEMA) for n, e in enumerate(extra)] or [pl.DataFrame(schema=EXTRA_SCHEMA)])
    # Half of what a run lets DuckDB take: whatif's own frames live beside it.
    con.execute("SET memory_limit = ?", [memory_limit(0.2)])
    signatures, people, words = exposed_customers(con, policies, rows)
    # DuckDB keeps the memory the grouping took, up to its limit: a low limit for a
    # moment makes it hand that back before Polars reads the ledger and prices.
    con.execute("SET memory_limit = ?", [RELEASED_MEMORY])
    con.execute("SET memory_limit = ?", [memory_limit(0.2)])
    sets = signature_sets(signatures, policies)
    ledger = con.sql("SELECT customer_id, amount, status, rail, attempt FROM ledger").pl().lazy()
    people = people.join(payment_history(ledger, claimants).collect(), on="customer_id", how="left")
    paid = already_paid(ledger)
    del ledger  # tens of millions of rows, summed per customer: let them go before pricing
    counts = in_force_counts(con.sql("SELECT amount FROM entitlements").pl().lazy())
    out = []
    for n, policy in enumerate(policies):
        summary = summary_from_signatures(people.lazy(), sets[n], words)
        passing_sum = passing_base_sum(summary, policy)
        priced = decided(summary, policy, passing_sum).select(_PRICED).collect()
        out.append(figures(priced, passing_sum, counts, paid, policy, run_date, released)
                   | {"exposures_from_quarantine": extra[n].height})
    return out
